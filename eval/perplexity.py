"""`ragserve eval perplexity`: perplexity of served models on text the project wrote itself.

The text is the English sample corpus (deploy/sample_corpus: runbooks, guides, a post-mortem), one
document per prompt. vLLM scores every prompt token (`prompt_logprobs`), so the number comes from
the real serving path (same kernels, same quantized weights) rather than from a separate
transformers run. Perplexity = exp(mean negative log-likelihood over all scored tokens); the
first token of each document has no context and is not scored.

    ragserve eval perplexity --url http://127.0.0.1:8000 --models smollm2-135m-instruct --out DIR
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import httpx

from eval import report

CORPUS = Path(__file__).resolve().parent.parent / "deploy" / "sample_corpus"


def project_texts() -> list[tuple[str, str]]:
    return [
        (p.relative_to(CORPUS).as_posix(), p.read_text(encoding="utf-8"))
        for p in sorted(CORPUS.rglob("*.md"))
        if not p.stem.endswith("-zh")
    ]


def token_logprobs(client: httpx.Client, model: str, text: str) -> list[float]:
    body = {"model": model, "prompt": text, "max_tokens": 1, "temperature": 0, "prompt_logprobs": 0}
    r = client.post("/v1/completions", json=body)
    r.raise_for_status()
    scored = r.json()["choices"][0].get("prompt_logprobs") or []
    out = []
    for entry in scored[1:]:  # the first token has no context
        if not entry:
            continue
        # {token_id: {"logprob", "rank", "decoded_token"}}; with prompt_logprobs=0 vLLM returns only
        # the prompt's own token.
        actual = next(iter(entry.values()))
        out.append(float(actual["logprob"]))
    return out


def perplexity(url: str, model: str, *, api_key: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    nll: list[float] = []
    per_doc = {}
    with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=300) as client:
        for doc_id, text in project_texts():
            lps = token_logprobs(client, model, text)
            nll += [-x for x in lps]
            per_doc[doc_id] = round(math.exp(-sum(lps) / max(1, len(lps))), 3)
    return {"model": model, "tokens": len(nll), "perplexity": round(math.exp(sum(nll) / len(nll)), 4),
            "per_document": per_doc}  # fmt: skip


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", required=True, help="server root without /v1 (gateway or vLLM)")
    p.add_argument("--models", default=None, help="comma-separated model ids (default: the first listed)")
    p.add_argument("--api-key", default=None)
    p.add_argument("--out", required=True)


def cmd(args: argparse.Namespace) -> int:
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    if args.models:
        models = [m.strip() for m in args.models.split(",") if m.strip()]
    else:
        listed = httpx.get(args.url.rstrip("/") + "/v1/models", headers=headers, timeout=30).json()["data"]
        models = [next(c["id"] for c in listed if not str(c["id"]).startswith("rag/"))]
    results = [perplexity(args.url, mo, api_key=args.api_key) for mo in models]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report.write_json(
        out / "metrics.json", {"url": args.url, "machine": report.machine(), "results": results}
    )
    table = report.md_table(["model", "tokens", "perplexity"], [[r["model"], r["tokens"], r["perplexity"]]
                                                                for r in results])  # fmt: skip
    (out / "report.md").write_text(f"# Perplexity on the sample corpus\n\n{table}\n", encoding="utf-8")
    print(table)
    return 0
