"""`ragserve eval lora`: does the adapter change behaviour the intended way? Base vs adapter, held out.

Asks a running server (the gateway or vLLM itself, `--url`, with the adapter loaded) every held-out
example of deploy/lora/make_dataset.py (`test.jsonl`: services and documents training never saw),
once with the base model and once with the adapter, greedy, and scores each answer:

- `format_ok`: the answer is exactly `Answer: ...` then `Sources: [n]` (or `Sources: none`);
- `sources_correct`: the `Sources:` line names exactly the passage holding the answer (`none`
  when no passage does); `cites_right_passage`: the right `[n]` appears anywhere (fair to a base
  model that cites inline without the sections);
- `answer_f1`: token F1 of the answer text (the `Answer:` section when present, else the whole
  reply, `[n]` markers removed) against the reference sentence;
- `idk_correct`: on the unanswerable examples, the reply says it does not know.

Writes metrics.json (per model and the per-example answers) and report.md to `--out`.
"""

from __future__ import annotations

import argparse
import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from eval import metrics as m
from eval import report

FORMAT = re.compile(
    r"^\s*Answer:\s*(?P<answer>.+?)\s*\n+\s*Sources:\s*(?P<sources>none|\[\d+\](?:\s*,?\s*\[\d+\])*)\s*$",
    re.S,
)
CITE = re.compile(r"\[(\d{1,2})\]")
IDK_RE = re.compile(r"(don't|do not|cannot|can't) (know|find|answer)", re.I)


def score(reply: str, row: dict[str, Any]) -> dict[str, Any]:
    expected = row["source_index"]
    fm = FORMAT.match(reply)
    answer_text = fm.group("answer") if fm else reply
    sources = fm.group("sources") if fm else None
    if sources is None:
        sources_correct = False
    elif expected is None:
        sources_correct = sources == "none"
    else:
        sources_correct = [int(x) for x in CITE.findall(sources)] == [expected]
    cites = {int(x) for x in CITE.findall(reply)}
    clean = CITE.sub("", answer_text).strip()
    out: dict[str, Any] = {
        "format_ok": bool(fm),
        "sources_correct": sources_correct,
        "cites_right_passage": expected is not None and expected in cites,
        "answer_f1": m.token_f1(clean, [row["answer"]]) if expected is not None else None,
        "idk_correct": bool(IDK_RE.search(reply)) if expected is None else None,
    }
    return out


def _ask(client: httpx.Client, model: str, row: dict[str, Any], max_tokens: int) -> str:
    body = {"model": model, "messages": row["messages"], "max_tokens": max_tokens, "temperature": 0}
    r = client.post("/v1/chat/completions", json=body)
    r.raise_for_status()
    return str(r.json()["choices"][0]["message"]["content"] or "")


def _mean(values: list[Any]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return round(sum(vals) / len(vals), 4) if vals else None


def evaluate(
    url: str, rows: list[dict[str, Any]], models: list[str], *, max_tokens: int = 64,
    api_key: str | None = None, concurrency: int = 4,
) -> dict[str, Any]:  # fmt: skip
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    results: dict[str, Any] = {}
    with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=300) as client:
        for model in models:
            with ThreadPoolExecutor(concurrency) as pool:
                replies = list(pool.map(lambda r, mo=model: _ask(client, mo, r, max_tokens), rows))
            scored = [
                {"id": r["id"], "reply": rep, **score(rep, r)} for r, rep in zip(rows, replies, strict=True)
            ]
            results[model] = {
                "examples": len(scored),
                **{k: _mean([s[k] for s in scored]) for k in
                   ("format_ok", "sources_correct", "cites_right_passage", "answer_f1", "idk_correct")},
                "answers": scored,
            }  # fmt: skip
    return results


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", required=True, help="server root without /v1 (gateway or vLLM), adapter loaded")
    p.add_argument("--adapter", default="ops-format", help="adapter model name (default ops-format)")
    p.add_argument("--base", default=None, help="base model name (default: the adapter's parent)")
    p.add_argument("--data", default="var/lora/data/test.jsonl", help="held-out examples (make_dataset.py)")
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--limit", type=int, default=None, help="first N examples only")
    p.add_argument("--api-key", default=None)
    p.add_argument("--out", required=True, help="output directory")


def cmd(args: argparse.Namespace) -> int:
    rows = [json.loads(x) for x in Path(args.data).read_text(encoding="utf-8").splitlines() if x.strip()]
    rows = rows[: args.limit] if args.limit else rows
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    listed = httpx.get(args.url.rstrip("/") + "/v1/models", headers=headers, timeout=30).json()["data"]
    card = next((c for c in listed if c["id"] == args.adapter), None)
    if card is None:
        raise RuntimeError(f"the server does not list adapter {args.adapter!r}; load it first")
    base = args.base or card.get("parent")
    if not base:
        raise RuntimeError("cannot tell the base model; pass --base")
    results = evaluate(args.url, rows, [base, args.adapter], max_tokens=args.max_tokens, api_key=args.api_key)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    keys = ("format_ok", "sources_correct", "cites_right_passage", "answer_f1", "idk_correct")
    doc = {"data": args.data, "base": base, "adapter": args.adapter, "machine": report.machine(),
           "summary": {mo: {k: results[mo][k] for k in ("examples", *keys)} for mo in results},
           "results": results}  # fmt: skip
    report.write_json(out / "metrics.json", doc)
    rows_md = [[mo, results[mo]["examples"], *(results[mo][k] for k in keys)] for mo in results]
    table = report.md_table(["model", "n", *keys], rows_md)
    samples = "\n".join(
        f"- `{a['id']}` base: {report.md_cell(b['reply'], 120)} | adapter: {report.md_cell(a['reply'], 120)}"
        for b, a in list(zip(results[base]["answers"], results[args.adapter]["answers"], strict=True))[:5]
    )
    (out / "report.md").write_text(
        f"# LoRA evaluation: {args.adapter} vs {base}\n\nHeld-out examples: {args.data}\n\n{table}\n\n"
        f"## First answers\n\n{samples}\n",
        encoding="utf-8",
    )
    print(table)
    return 0
