"""Repetition controls for grounded answers, measured through a running gateway.

    .venv/bin/python -m eval.penalty_study --url http://127.0.0.1:8000 --out F.json \
        [--cmrc-queries FILE --cmrc-collection cmrc --cmrc-limit 40]

Greedy decoding on a small model loops ("... due to a kernel kernel kernel ..."). This asks the same
grounded questions with each repetition control set explicitly (OpenAI's frequency_penalty, which
counts output tokens only, and vLLM's repetition_penalty, which also penalizes every prompt token, so
also the words of the passages) and reports per setting:
- degenerate: answers with a word or a 2-3 word group repeated 4 times in a row;
- finish_length: answers cut off by max_tokens (a loop runs until the limit);
- keyword_hit: answers containing a word that a grounded answer to the question needs (English
  questions over the project's sample corpus, `deploy/sample_corpus`, collection `default`);
- distinct2: distinct word bigrams / bigrams; cited_any: answers citing a passage;
- with --cmrc-queries (from `ragserve eval convert cmrc`, ingested as --cmrc-collection): token F1
  and answer containment against CMRC 2018's reference answers (Chinese).
The gateway's default (`rag.default_frequency_penalty`) was chosen from this (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from eval import metrics as m
from eval.metrics import degenerate
from eval.report import machine

# (question over deploy/sample_corpus, words any of which a grounded answer contains)
QUESTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("What does exit code 137 mean for a pod?", ("memory", "oom")),
    ("How do I confirm that a container was OOMKilled?", ("describe", "oomkilled", "last state")),
    ("Why does a pod show CrashLoopBackOff?", ("crash", "restart")),
    ("How long does Kubernetes wait between restarts of a crashing container?", ("5 minutes", "seconds")),
    ("How do I find what is filling the disk on a node?", ("du ", "/var")),
    ("How do I free disk space used by container images?", ("crictl", "rmi", "prune")),
    ("What happens when a node's disk is full?", ("evict", "diskpressure", "pull")),
    ("When does the HighErrorRate alert fire?", ("5%", "5xx", "five")),
    ("Which PromQL query shows the failing routes?", ("http_requests_total", "rate")),
    ("What is the most common cause of a high error rate?", ("deploy", "release", "change")),
    ("What caused the payment API outage?", ("pool", "connection", "db_pool_size")),
    ("How long did the payment outage last?", ("09:12", "09:58", "46")),
    ("How was the payment outage fixed?", ("rolled back", "roll")),
    ("How do I ingest a PDF into ragserve?", ("ingest", "ragserve")),
    ("How do I get citations with the openai Python client?", ("citations", "model_extra", "rag/default")),
    ("What is ragserve?", ("rag", "answer", "retriev")),
    ("How do I compare memory usage with the container limit?", ("working_set", "limit")),
    ("What is the impact of pods being OOMKilled?", ("fail", "unavailable", "restart")),
    ("What should I check first when errors start after a release?", ("rollout", "deploy", "release")),
    ("How do I read the logs of the crashed container run?", ("--previous", "logs")),
)  # fmt: skip

SETTINGS: dict[str, dict[str, float]] = {
    "frequency_penalty=0": {"frequency_penalty": 0.0},
    "frequency_penalty=0.5": {"frequency_penalty": 0.5},
    "frequency_penalty=1.0": {"frequency_penalty": 1.0},
    "repetition_penalty=1.1": {"repetition_penalty": 1.1},
    "repetition_penalty=1.2": {"repetition_penalty": 1.2},
}


def _distinct2(text: str) -> float:
    toks = text.lower().split()
    return len(set(itertools.pairwise(toks))) / max(1, len(toks) - 1)


def _ask(client: Any, model: str, question: str, extra: dict[str, float], max_tokens: int) -> tuple[str, Any]:
    r = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": question}],
        max_tokens=max_tokens,
        temperature=0,
        extra_body=extra,
    )
    return r.choices[0].message.content or "", r


def _mean(rows: list[dict[str, Any]], key: str) -> float:
    return round(sum(float(r[key]) for r in rows) / max(1, len(rows)), 3)


def _run(rows_of: Callable[[dict[str, float]], list[dict[str, Any]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, extra in SETTINGS.items():
        t0 = time.perf_counter()
        rows = rows_of(extra)
        out[name] = {k: _mean(rows, k) for k in rows[0] if k != "answer"}
        out[name]["seconds"] = round(time.perf_counter() - t0, 1)
        out[name]["examples"] = [r["answer"][:200] for r in rows[:3]]
        print(name, {k: v for k, v in out[name].items() if k != "examples"}, file=sys.stderr, flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8000", help="gateway root (without /v1)")
    ap.add_argument("--api-key", default="unused")
    ap.add_argument("--collection", default="default")
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--cmrc-queries", type=Path)
    ap.add_argument("--cmrc-collection", default="cmrc")
    ap.add_argument("--cmrc-limit", type=int, default=40)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    from openai import OpenAI

    client = OpenAI(base_url=args.url.rstrip("/") + "/v1", api_key=args.api_key, timeout=600)

    def english(extra: dict[str, float]) -> list[dict[str, Any]]:
        rows = []
        for question, words in QUESTIONS:
            answer, r = _ask(client, f"rag/{args.collection}", question, extra, args.max_tokens)
            rows.append(
                {
                    "answer": answer,
                    "degenerate": degenerate(answer),
                    "finish_length": r.choices[0].finish_reason == "length",
                    "keyword_hit": any(w in answer.lower() for w in words),
                    "distinct2": _distinct2(answer),
                    "cited_any": any(c["cited"] for c in (r.model_extra or {}).get("citations", [])),
                }
            )
        return rows

    report: dict[str, Any] = {"english": _run(english), "questions": len(QUESTIONS)}
    if args.cmrc_queries:
        lines = args.cmrc_queries.read_text(encoding="utf-8").splitlines()
        queries = [json.loads(line) for line in lines if line.strip()]
        random.Random(0).shuffle(queries)
        queries = queries[: args.cmrc_limit]

        def cmrc(extra: dict[str, float]) -> list[dict[str, Any]]:
            def one(q: dict[str, Any]) -> dict[str, Any]:
                answer, r = _ask(client, f"rag/{args.cmrc_collection}", q["query"], extra, 64)
                return {
                    "answer": answer,
                    "f1": m.token_f1(answer, q["answers"]),
                    "contains_answer": m.contains_answer(answer, q["answers"]),
                    "degenerate": degenerate(answer),
                    "cited_any": any(c["cited"] for c in (r.model_extra or {}).get("citations", [])),
                }

            with ThreadPoolExecutor(4) as pool:
                return list(pool.map(one, queries))

        report["cmrc"] = _run(cmrc)
        report["cmrc_questions"] = len(queries)
    report["machine"] = machine()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
