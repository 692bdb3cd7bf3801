"""Choose (and check) the relevance gate's threshold: `python -m eval.relevance_gate`.

For every query of each set, against a running gateway's collection (`/v1/retrieve`, the server's
default mode, top_k as grounded answers use it): the question's similarity to the closest passage
sentence (service/rag/relevance.py, same embedder as the collection) twice, once with the normal
passages and once with the query's relevant documents withheld (the `rag.filters` negative-rejection
setting of `ragserve eval qa`).

- positives: normal retrievals whose passages hold a gold answer (the gate must let them through);
- negatives: withheld retrievals whose passages hold no gold answer (the gate should stop them).

`choose` (tuning sets only) picks the largest threshold on a 0.01 grid whose false-abstention rate on
the positives stays within `--max-false-abstention` (default 0.10, fixed before measuring), and reports
the negatives it stops. `check` applies a given threshold to other (held-out) sets and reports the same
two rates with Wilson intervals. Sets: `QUERIES.jsonl=COLLECTION`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from eval.data import Query, load_queries
from eval.metrics import contains_answer, wilson


def measure(
    url: str, collection: str, queries: Sequence[Query], top_k: int, embedder: Any
) -> list[dict[str, Any]]:
    from service.rag.relevance import best_sentence_similarity

    rows: list[dict[str, Any]] = []
    with httpx.Client(base_url=url, timeout=120) as http:
        docs = http.get(f"/v1/collections/{collection}/documents").json()["data"]
        ids = [d["document_id"] for d in docs]
        for q in queries:
            for withheld in (False, True):
                body: dict[str, Any] = {"query": q.query, "collection": collection, "top_k": top_k}
                if withheld:
                    body["filters"] = {"document_id": [d for d in ids if d not in set(q.relevant)]}
                r = http.post("/v1/retrieve", json=body)
                r.raise_for_status()
                texts = [h["text"] for h in r.json()["results"]]
                has = any(contains_answer(t, q.answers) for t in texts) if q.answers else None
                sim = best_sentence_similarity(embedder, q.query, texts)
                rows.append({"id": q.id, "withheld": withheld, "answer_in_passages": has, "similarity": sim})
    return rows


def split_rows(rows: Sequence[dict[str, Any]]) -> tuple[list[float], list[float]]:
    pos = [
        r["similarity"]
        for r in rows
        if not r["withheld"] and r["answer_in_passages"] and r["similarity"] is not None
    ]
    neg = [
        r["similarity"]
        for r in rows
        if r["withheld"] and r["answer_in_passages"] is False and r["similarity"] is not None
    ]
    return pos, neg


def rates(pos: Sequence[float], neg: Sequence[float], threshold: float) -> dict[str, Any]:
    fa = sum(s < threshold for s in pos)
    stopped = sum(s < threshold for s in neg)
    return {
        "threshold": threshold,
        "positives": len(pos),
        "negatives": len(neg),
        "false_abstention": round(fa / len(pos), 3) if pos else None,
        "false_abstention_ci": wilson(fa, len(pos)),
        "negatives_stopped": round(stopped / len(neg), 3) if neg else None,
        "negatives_stopped_ci": wilson(stopped, len(neg)),
    }


def choose(pos: Sequence[float], neg: Sequence[float], max_false_abstention: float) -> dict[str, Any]:
    best = 0.0
    for i in range(0, 101):
        t = i / 100
        if pos and sum(s < t for s in pos) / len(pos) <= max_false_abstention:
            best = t
    return rates(pos, neg, best)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.relevance_gate", description=__doc__.split("\n")[0])
    p.add_argument("action", choices=["choose", "check"])
    p.add_argument("sets", nargs="+", help="QUERIES.jsonl=COLLECTION")
    p.add_argument("--url", required=True, help="root of a running ragserve")
    p.add_argument("--top-k", type=int, default=3)
    p.add_argument("--threshold", type=float, help="check: the threshold to apply")
    p.add_argument("--max-false-abstention", type=float, default=0.10)
    p.add_argument("--embedder", default="universal-sentence-encoder-multilingual-3")
    p.add_argument("--out", type=Path, help="write the rows and the result as JSON")
    args = p.parse_args(argv)
    if args.action == "check" and args.threshold is None:
        p.error("check needs --threshold")
    from ingest.embedding import Embedder

    emb = Embedder.load(args.embedder)
    all_rows: dict[str, list[dict[str, Any]]] = {}
    for spec in args.sets:
        qfile, _, coll = spec.partition("=")
        if not coll:
            p.error(f"{spec}: give QUERIES.jsonl=COLLECTION")
        all_rows[qfile] = measure(args.url, coll, load_queries(Path(qfile)), args.top_k, emb)
        print(f"measured {qfile}: {len(all_rows[qfile])} retrievals", file=sys.stderr)
    result: dict[str, Any] = {"per_set": {}}
    pooled_pos: list[float] = []
    pooled_neg: list[float] = []
    for qfile, rows in all_rows.items():
        pos, neg = split_rows(rows)
        pooled_pos += pos
        pooled_neg += neg
        if args.action == "check":
            result["per_set"][qfile] = rates(pos, neg, args.threshold)
    if args.action == "choose":
        result["chosen"] = choose(pooled_pos, pooled_neg, args.max_false_abstention)
        for qfile, rows in all_rows.items():
            result["per_set"][qfile] = rates(*split_rows(rows), result["chosen"]["threshold"])
    else:
        result["pooled"] = rates(pooled_pos, pooled_neg, args.threshold)
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps({"result": result, "rows": all_rows}, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
