"""Offline study of second-stage reranking by sentence-level similarity (issue 21, item 3).

    .venv/bin/python -m eval.rerank_study --data-dir DIR --collection NAME --queries FILE... \
        --cache-dir /work/cache/vec [--top-n 10] [--weights 0,0.25,0.5,1,2] [--json OUT]

No cross-encoder ships with its weights in a package (issue 21), so the candidate reranker here
uses the collection's own embedder at a finer grain: each of the hybrid ranking's first `top-n`
chunks is split into sentences (each embedded with the chunk's title/heading prefix), and the
chunk's best sentence similarity to the query ("maxsim", late interaction at sentence grain)
is added to its fused score, both standardized over the `top-n` candidates, with weight w.
Sentence vectors are embedded once per collection version and cached in --cache-dir, so the
study measures quality; `--latency` times the reranker as serving would run it (sentences of
the candidates embedded at query time). Choose on `*_tune` files only.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from eval import metrics as m
from eval.embedder_study import hybrid_pool, load_collection, load_query_sets, query_vectors, rank_metrics
from ingest.chunking import index_text
from ingest.embedding import Embedder
from ingest.store.collection import Snapshot

_SENTENCE_END = re.compile(r"(?<=[.!?。！？；;])\s+|(?<=[。！？；])|\n+")
MIN_SENTENCE_CHARS = 8


def sentences(text: str) -> list[str]:
    """A chunk's sentences (lines and sentence ends, tiny fragments dropped)."""
    parts = [p.strip() for p in _SENTENCE_END.split(text)]
    out = [p for p in parts if len(p) >= MIN_SENTENCE_CHARS]
    return out or [text.strip()]


def _z(values: np.ndarray) -> np.ndarray:
    sd = float(values.std())
    return (values - float(values.mean())) / max(sd, 1e-6)


def sentence_vectors(
    snap: Snapshot, coll: str, emb: Embedder, rows: dict[int, dict[str, Any]], cache_dir: Path
) -> tuple[np.ndarray, np.ndarray]:
    """(vectors of every chunk's sentences, owner position of each), cached per version and model."""
    path = cache_dir / f"{coll}-v{snap.version}-{emb.model_id}-sentences.npz"
    if path.is_file():
        z = np.load(path)
        return np.asarray(z["vecs"], dtype=np.float32), np.asarray(z["owner"])
    texts: list[str] = []
    owner: list[int] = []
    for pos, rid in enumerate(snap.rowids):
        row = rows.get(int(rid))
        if row is None:
            continue
        for s in sentences(str(row["text"])):
            texts.append(index_text({"text": s, "metadata": row.get("metadata")}))  # with its heading
            owner.append(pos)
    t0 = time.perf_counter()
    vecs = emb.encode(texts)
    print(f"  {len(texts)} sentences in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.savez(path, vecs=vecs, owner=np.asarray(owner))
    return vecs, np.asarray(owner)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--collection", required=True)
    ap.add_argument("--queries", type=Path, nargs="+", required=True)
    ap.add_argument("--cache-dir", type=Path, required=True, help="outside the repository")
    ap.add_argument("--top-n", default="10", help="candidates reranked (comma-separated to compare)")
    ap.add_argument("--weights", default="0,0.25,0.5,1,2,1000", help="maxsim weights (0 = hybrid as is)")
    ap.add_argument("--latency", type=int, default=0, help="time the reranker on this many queries")
    ap.add_argument("--json", type=Path, help="also write the table as JSON")
    args = ap.parse_args(argv)
    study = load_collection(args.data_dir, args.collection, "eval.rerank_study")
    if study is None:
        return 1
    snap, rows, doc_of, texts = study.snap, study.rows, study.doc_of, study.texts
    assert snap.bm25 is not None
    emb = Embedder.load(str(snap.manifest["embedding_model"]), device="cpu", threads=1)
    svecs, owner = sentence_vectors(snap, args.collection, emb, rows, args.cache_dir)
    by_owner: dict[int, np.ndarray] = {}
    for pos in np.unique(owner):
        by_owner[int(pos)] = np.flatnonzero(owner == pos)
    cvecs = np.asarray(snap.index.reconstruct_n(0, len(snap.rowids)), dtype=np.float32)
    heads: list[list[int]] = []  # each query's candidates, for the latency run
    sets = load_query_sets(args.queries)
    table: list[dict[str, Any]] = []
    weights = [float(w) for w in args.weights.split(",")]
    top_ns = [int(n) for n in args.top_n.split(",")]
    for set_name, qs in sets.items():
        qv = query_vectors(qs, emb, args.cache_dir)
        ranks: dict[tuple[int, float], list[int | None]] = {(n, w): [] for n in top_ns for w in weights}
        for i, q in enumerate(qs):
            tokens = snap.bm25.query_tokens(q["query"])
            b = snap.bm25.scores(tokens).astype(np.float32)
            b[snap.dead] = 0.0
            cov = snap.bm25.coverage(tokens, int(np.argmax(b))) if b.max() > 0 else 0.0
            d = cvecs @ qv[i]
            d[snap.dead] = -np.inf
            order, fused = hybrid_pool(q["query"], d, b, texts, float(cov))
            heads.append([int(p) for p in order[: max(top_ns)]])
            for n in top_ns:
                head, rest = order[:n], order[n:]
                maxsim = np.array([float((svecs[by_owner[int(p)]] @ qv[i]).max()) for p in head])
                zf, zs = _z(fused[:n]), _z(maxsim)
                for w in weights:
                    score = zs if w >= 1000 else zf + w * zs
                    new = np.concatenate([head[np.argsort(-score, kind="stable")], rest])
                    docs = m.dedupe(str(doc_of[int(p)]) for p in new if doc_of[int(p)])[:10]
                    ranks[(n, w)].append(m.first_relevant_rank(docs, q["relevant"]))
        for (n, w), rs in ranks.items():
            table.append(
                {
                    "queries": set_name,
                    "n": len(qs),
                    "top_n": n,
                    "weight": w,
                    **rank_metrics(rs, len(qs), (1, 3)),
                }
            )
    print(f"{'queries':<24} {'n':>4} {'top_n':>5} {'weight':>6} {'hit@1':>6} {'hit@3':>6} {'mrr':>6}")
    for r in table:
        label = "only" if r["weight"] >= 1000 else f"{r['weight']:g}"
        print(
            f"{r['queries']:<24} {r['n']:>4} {r['top_n']:>5} {label:>6} "
            f"{r['hit@1']:>6.3f} {r['hit@3']:>6.3f} {r['mrr@10']:>6.3f}"
        )
    if args.latency:
        # As serving would run it: the candidates' sentences embedded at query time (process CPU time,
        # which contention inflates less than wall time).
        per: list[float] = []
        for candidates in heads[: args.latency]:
            units: list[str] = []
            for p in candidates:
                row = rows.get(int(snap.rowids[p])) or {"text": "", "metadata": {}}
                units += [
                    index_text({"text": s, "metadata": row.get("metadata")})
                    for s in sentences(str(row["text"]))
                ]
            t0 = time.process_time()
            emb.encode(units)
            per.append((time.process_time() - t0) * 1000)
        per.sort()
        print(
            f"rerank cost (embed the sentences of the first {max(top_ns)} candidates): CPU p50 "
            f"{statistics.median(per):.1f} ms, max {per[-1]:.1f} ms per query over {len(per)} queries"
        )
    if args.json:
        args.json.write_text(json.dumps(table, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
