"""Search queries for follow-up questions, measured: `python -m eval.condense`.

For each conversation of `eval.datasets.followups` (against a running gateway whose `default`
collection holds the sample corpus), the follow-up's search query is built three ways and sent to
`/v1/retrieve`; hit@1 / hit@3 say whether the document answering the follow-up comes first / in
the top 3 (the passages a grounded answer gets by default):

- `last`: the last user message alone (what the gateway did before);
- `history`: the earlier user questions + the follow-up (service/rag/condense.py, no model call);
- `model`: the chat model's standalone rewrite (the gateway's own prompt, through its
  `/v1/chat/completions` with a plain model), with its latency.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from service.rag.condense import clean_condensed, condense_request, history_query


def retrieve(http: httpx.Client, query: str, collection: str, top_k: int) -> list[str]:
    r = http.post("/v1/retrieve", json={"query": query, "collection": collection, "top_k": top_k})
    r.raise_for_status()
    return [h["document_id"] for h in r.json()["results"]]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.condense", description=__doc__.split("\n")[0])
    p.add_argument("conversations", type=Path)
    p.add_argument("--url", required=True)
    p.add_argument("--collection", default="default")
    p.add_argument("--model", help="served model for the `model` method (default: the gateway's first)")
    p.add_argument("--turns", type=int, default=2)
    p.add_argument("--methods", default="last,history,model")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    methods = args.methods.split(",")
    convs = [json.loads(line) for line in args.conversations.read_text(encoding="utf-8").splitlines() if line]
    rows: list[dict[str, Any]] = []
    with httpx.Client(base_url=args.url, timeout=300) as http:
        model = args.model or http.get("/v1/models").json()["data"][0]["id"]
        for c in convs:
            msgs, question = c["messages"], c["messages"][-1]["content"]
            row: dict[str, Any] = {"id": c["id"], "language": c["language"]}
            queries: dict[str, str] = {}
            if "last" in methods:
                queries["last"] = question
            if "history" in methods:
                queries["history"] = history_query(msgs, question, turns=args.turns)
            if "model" in methods:
                t0 = time.perf_counter()
                r = http.post(
                    "/v1/chat/completions",
                    json={
                        "model": model,
                        "messages": condense_request(msgs, question, c["language"]),
                        "max_tokens": 64,
                        "temperature": 0,
                    },
                )
                r.raise_for_status()
                row["model_seconds"] = round(time.perf_counter() - t0, 3)
                queries["model"] = clean_condensed(
                    r.json()["choices"][0]["message"]["content"] or "", question
                )
            for name, q in queries.items():
                ids = retrieve(http, q, args.collection, 3)
                row[name] = {
                    "query": q,
                    "hit1": ids[:1] == c["relevant"][:1],
                    "hit3": c["relevant"][0] in ids,
                }
            rows.append(row)
            print(json.dumps(row, ensure_ascii=False), file=sys.stderr)
    result: dict[str, Any] = {"conversations": len(rows), "file": str(args.conversations)}
    for name in methods:
        result[name] = {
            "hit@1": round(sum(r[name]["hit1"] for r in rows) / len(rows), 3),
            "hit@3": round(sum(r[name]["hit3"] for r in rows) / len(rows), 3),
        }
    if "model" in methods:
        secs = [r["model_seconds"] for r in rows]
        result["model"]["seconds_p50"] = round(statistics.median(secs), 2)
        result["model"]["seconds_max"] = round(max(secs), 2)
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(
            json.dumps({"result": result, "rows": rows}, ensure_ascii=False, indent=1), encoding="utf-8"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
