"""Offline study of hybrid fusion: every ranker's score for every chunk, cached, then fusions compared.

    .venv/bin/python -m eval.fusion_study --data-dir DIR --collection NAME --queries FILE... [--cache F.npz]
        [--stemmer english|none]

For each query it computes the dense score (cosine) and the BM25 score of every chunk of the
collection once, then replays candidate selection and fusion exactly as `ingest.search` does (the
same `fuse` function), for the production fusion and for alternatives, and prints first-hit
(hit@1, document level) per query file. This is how the fusion in `ingest.search` was chosen: on the
`*_tune` query files, then reported on the held-out ones with `ragserve eval retrieval`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ingest import search as S
from ingest.store import lexical
from ingest.store.collection import Snapshot, live_positions
from ingest.store.versions import read_manifest


def load_matrix(
    data_dir: Path,
    collection: str,
    queries: list[dict[str, Any]],
    cache: Path | None,
    analyzer: lexical.Analyzer | None = None,
) -> dict[str, Any]:
    """Dense and BM25 score matrices (queries x chunks), chunk -> document, cached in an .npz file.

    BM25 uses the collection's own analyzer unless `analyzer` is given (then it is rebuilt in memory).
    """
    if cache is not None and cache.is_file():
        z = np.load(cache, allow_pickle=True)
        same_analyzer = analyzer is None or (
            "analyzer" in z.files and json.loads(str(z["analyzer"])) == analyzer.to_json()
        )
        if list(z["qids"]) == [q["id"] for q in queries] and "coverage" in z.files and same_analyzer:
            return {k: z[k] for k in z.files}
    from ingest.embedding import Embedder

    coll = data_dir / "collections" / collection
    manifest = read_manifest(coll)
    if manifest is None:
        raise SystemExit(f"no collection {collection!r} under {data_dir}")
    snap = Snapshot.load(coll, manifest)
    n = len(snap.rowids)
    vecs = snap.index.reconstruct_n(0, n)
    rows = snap.docs.chunk_rows([int(r) for r in snap.rowids])
    # Tombstoned positions (a carried-forward HNSW graph) have no row: no document, never ranked.
    doc_of = np.array([rows.get(int(r), {}).get("document_id", "") for r in snap.rowids], dtype=object)
    emb = Embedder.load(str(manifest["embedding_model"]))  # the model the collection was built with
    qv = emb.encode([q["query"] for q in queries])
    dense = (qv @ vecs.T).astype(np.float32)
    dense[:, snap.dead] = -np.inf
    assert snap.bm25 is not None
    lex = snap.bm25
    if analyzer is not None and analyzer != lex.analyzer:  # rebuild from the stored surface tokens
        live = live_positions(n, snap.dead)
        lex = lexical.build(snap.docs.token_lists(), analyzer, positions=live, size=n)
    tokens = [lex.query_tokens(q["query"]) for q in queries]
    bm25 = np.stack([lex.scores(t) for t in tokens]).astype(np.float32)
    # The fusion needs the lexical coverage of BM25's best chunk only (not a second matrix).
    coverage = np.zeros(len(queries), np.float32)
    for i, (t, b) in enumerate(zip(tokens, bm25, strict=True)):
        if b.max() > 0:
            coverage[i] = lex.coverage(t, int(np.argmax(b)))
    out = {
        "qids": np.array([q["id"] for q in queries], dtype=object),
        "analyzer": np.array(json.dumps(lex.analyzer.to_json())),
        "dense": dense,
        "bm25": bm25,
        "coverage": coverage,
        "doc_of": doc_of,
    }
    if cache is not None:
        np.savez(cache, **out)
    return out


Fusion = Callable[[str, np.ndarray, np.ndarray], np.ndarray]


def replay(
    query: str, dense_all: np.ndarray, bm25_all: np.ndarray, candidates: int = 50
) -> tuple[np.ndarray, ...]:
    """Candidate lists as ingest.search builds them: (pool, dense at pool, bm25 at pool, d_top, b_top)."""
    k = candidates
    d_pos = np.argsort(-dense_all, kind="stable")[:k]
    d_scores = dense_all[d_pos]
    hit = np.flatnonzero(bm25_all > 0)
    b_pos = hit[np.argsort(-bm25_all[hit], kind="stable")[:k]]
    b_scores = bm25_all[b_pos]
    pool = np.unique(np.concatenate([d_pos, b_pos]))
    return pool, dense_all[pool], bm25_all[pool], d_scores, b_scores


def first_doc(
    fusion: str,
    query: str,
    dense_all: np.ndarray,
    bm25_all: np.ndarray,
    doc_of: np.ndarray,
    coverage: float = 0.0,
) -> str:
    """Document of the top chunk for one mode/fusion."""
    if fusion == "dense":
        return str(doc_of[int(np.argmax(dense_all))])
    if fusion == "bm25":
        return str(doc_of[int(np.argmax(bm25_all))]) if bm25_all.max() > 0 else ""
    pool, dp, bp, d_ref, b_ref = replay(query, dense_all, bm25_all)
    fused = S.fuse(
        query,
        dp,
        bp,
        d_ref,
        b_ref,
        multilingual_embedder=False,
        lexical_coverage=coverage,
        method=fusion,
        bm25_ref_size=min(50, int(np.isfinite(dense_all).sum())),
    )
    return str(doc_of[int(pool[int(np.argmax(fused))])])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--collection", required=True)
    ap.add_argument("--queries", type=Path, nargs="+", required=True)
    ap.add_argument("--cache", type=Path)
    ap.add_argument("--fusions", default="dense,bm25," + ",".join(S.FUSION_METHODS))
    ap.add_argument(
        "--stemmer",
        help="BM25 analyzer to study instead of the collection's own: a Snowball language, or 'none'",
    )
    args = ap.parse_args(argv)
    analyzer = None
    if args.stemmer:
        analyzer = lexical.Analyzer(stemmer=None if args.stemmer == "none" else args.stemmer)
    sets = {
        p.stem: [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
        for p in args.queries
    }
    allq = [q for qs in sets.values() for q in qs]
    mat = load_matrix(args.data_dir, args.collection, allq, args.cache, analyzer)
    at = {q["id"]: i for i, q in enumerate(allq)}
    fusions = args.fusions.split(",")
    print(f"{'queries':<28} {'n':>5} " + " ".join(f"{f:>12}" for f in fusions))
    for name, qs in sets.items():
        row = []
        for f in fusions:
            hits = 0
            for q in qs:
                i = at[q["id"]]
                top = first_doc(
                    f, q["query"], mat["dense"][i], mat["bm25"][i], mat["doc_of"], float(mat["coverage"][i])
                )
                hits += top in q["relevant"]
            row.append(hits / len(qs))
        print(f"{name:<28} {len(qs):>5} " + " ".join(f"{x:>12.3f}" for x in row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
