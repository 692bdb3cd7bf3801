"""Ingestion and index benchmarks (issue 3, "Performance"); results as JSON on stdout and in --out.

    .venv/bin/python -m eval.ingest_bench throughput --corpus DIR [--limit-chunks N] --out F.json
    .venv/bin/python -m eval.ingest_bench noop --files 1000 --out F.json
    .venv/bin/python -m eval.ingest_bench query --chunks 10000,100000 --queries 200 [--torch-threads 1,2] \
        --out F.json
    .venv/bin/python -m eval.ingest_bench chunking --chars 1000000 --out F.json
    .venv/bin/python -m eval.ingest_bench stores --chunks 100000 --queries 200 --out F.json
    .venv/bin/python -m eval.ingest_bench update --chunks 100000 --out F.json

- throughput: ingest a corpus into a temporary collection (load, chunk, embed, write, publish) and
  encode the very same chunk texts (`Chunk.index_text`) with the raw `SentenceTransformer.encode`
  (batch 32, normalized); reports chunks/s for both and their ratio (goal: >= 0.8).
- noop: write N small synthetic Markdown files, ingest them, ingest again unchanged; reports both
  times and their ratio (goal: < 5%); then changes one file and re-ingests, five times (median
  seconds, and of it the publish: docstore copy done, FAISS + BM25 rebuilt, fsync, manifest).
- query: synthetic collections of N chunks (vectors with low-rank structure plus noise, so they
  have neighbours as real embeddings do; Zipf-distributed words for BM25), written with the real
  store (`VersionWriter`: docstore, FAISS, BM25; HNSW above `HNSW_THRESHOLD`); queries are noisy
  copies of stored vectors plus words of the same chunk. Reports `ingest.search` latency p50/p99
  per mode, query embedding excluded (measured apart on real text), and recall@10 of the index
  against exact inner-product search. `--torch-threads 1,2` adds the whole retrieval path per
  thread count (a real query embedding, then the hybrid search), as the gateway runs it.
- update: one document (50 chunks) replaced in a synthetic HNSW collection of --chunks chunks, published
  twice from the same state: with the previous graph carried forward (new chunks added, replaced
  ones tombstoned) and with the graph rebuilt; reports both publish times (and the docstore copy
  that precedes either) and the carried index's recall@10 against exact search over the live chunks.
- stores: the same synthetic collection (as in query) written through each store backend's writer
  (FAISS directories; Milvus Lite in a temporary file), then per backend: write time (chunks/s,
  embedding excluded), dense recall@10 against exact inner-product search, and search latency
  p50/p99 per mode (query embedding excluded) through the backend's own `search`.
- chunking: `Chunker.split` alone (the embedding model's tokenizer, 200-token chunks) on four kinds
  of synthetic text of about --chars characters each: prose with sentence ends, words with spaces
  only, a run with no separator at all (a blob), Chinese without punctuation; reports seconds,
  characters per second, chunks, tokenizer calls, and the largest chunk's real token count.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from eval import metrics as m
from eval.report import machine


def _embedder(model: str | None = None) -> Any:
    from ingest.embedding import DEFAULT_MODEL, Embedder

    return Embedder.load(model or DEFAULT_MODEL, threads=1)


def bench_throughput(corpus: Path, limit_chunks: int, model: str | None = None) -> dict[str, Any]:
    """Ingest vs raw encode on the same chunks."""
    from ingest.knowledge_base import KnowledgeBase
    from ingest.loaders import Limits, load_file
    from ingest.sources import walk

    emb = _embedder(model)
    with tempfile.TemporaryDirectory(prefix="ragserve-bench-") as tmp:
        # Pick files until the chunk budget is reached, so both sides see exactly the same chunks.
        kb = KnowledgeBase(Path(tmp) / "collections", emb)
        files: list[tuple[str, Path]] = []
        texts: list[str] = []
        paths = [corpus] if corpus.is_file() else list(walk(corpus))
        for p in paths:
            rel = p.name if corpus.is_file() else p.relative_to(corpus).as_posix()
            chunks = [c.index_text for d in load_file(p, rel, Limits()) for c in kb.chunker.split(d)]
            if limit_chunks and texts and len(texts) + len(chunks) > limit_chunks:
                break
            files.append((rel, p))
            texts += chunks
        emb.encode(texts[:64])  # warm-up for both sides
        summary = kb.ingest_files("bench", files)
        t0 = time.perf_counter()
        for i in range(0, len(texts), 32):  # the model's own batch call, in input order
            emb._encode_batch(texts[i : i + 32])
        raw_s = time.perf_counter() - t0
    ingest_rate = summary.chunks / summary.seconds
    raw_rate = len(texts) / raw_s
    return {
        "embedder": emb.model_id,
        "files": len(files),
        "chunks": summary.chunks,
        "ingest_seconds": round(summary.seconds, 2),
        "ingest_chunks_per_s": round(ingest_rate, 2),
        "raw_encode_seconds": round(raw_s, 2),
        "raw_encode_chunks_per_s": round(raw_rate, 2),
        "ratio": round(ingest_rate / raw_rate, 3),
    }


_WORDS = [
    "pod",
    "node",
    "disk",
    "memory",
    "cpu",
    "network",
    "latency",
    "error",
    "restart",
    "volume",
    "certificate",
    "etcd",
    "leader",
    "quorum",
    "alert",
    "storage",
    "bucket",
    "quota",
    "replica",
    "scheduler",
    "kubelet",
    "image",
    "registry",
    "route",
    "ingress",
    "dns",
    "timeout",
]


def bench_noop(n_files: int, emb: Any = None) -> dict[str, Any]:
    """Full ingest of n small files, the same files again unchanged, then one file changed (5 times)."""
    from ingest.knowledge_base import KnowledgeBase
    from ingest.store.collection import VersionWriter

    emb = emb or _embedder()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="ragserve-bench-") as tmp:
        root = Path(tmp) / "files"
        root.mkdir()
        for i in range(n_files):
            body = " ".join(rng.choice(_WORDS, 60))
            (root / f"doc{i:05d}.md").write_text(
                f"# Runbook {i}\n\n## Meaning\n\n{body}.\n", encoding="utf-8"
            )
        kb = KnowledgeBase(Path(tmp) / "collections", emb)
        first = kb.ingest_paths("bench", [root])
        again = kb.ingest_paths("bench", [root])
        # One changed file, five times: what a small edit costs (publish rebuilds FAISS and BM25).
        publish_s: list[float] = []
        original = VersionWriter.publish

        def timed_publish(self: VersionWriter, hnsw_threshold: int) -> dict[str, Any]:
            t0 = time.perf_counter()
            try:
                return original(self, hnsw_threshold)
            finally:
                publish_s.append(time.perf_counter() - t0)

        changed: list[float] = []
        VersionWriter.publish = timed_publish  # type: ignore[method-assign]
        try:
            for k in range(5):
                body = " ".join(rng.choice(_WORDS, 60))
                (root / "doc00000.md").write_text(
                    f"# Runbook 0 v{k}\n\n## Meaning\n\n{body}.\n", encoding="utf-8"
                )
                res = kb.ingest_paths("bench", [root])
                assert res.updated == 1 and res.unchanged == n_files - 1, res
                changed.append(res.seconds)
        finally:
            VersionWriter.publish = original  # type: ignore[method-assign]
    return {
        "files": n_files,
        "full_seconds": round(first.seconds, 2),
        "full_chunks": first.chunks,
        "noop_seconds": round(again.seconds, 3),
        "noop_unchanged": again.unchanged,
        "ratio": round(again.seconds / first.seconds, 4),
        "one_changed_seconds_median": round(float(np.median(changed)), 3),
        "one_changed_publish_seconds_median": round(float(np.median(publish_s)), 3),
    }


def _synthetic_collection(
    coll: Path, n: int, dim: int, rng: np.random.Generator
) -> tuple[np.ndarray, list[list[str]]]:
    """Write a collection of n synthetic chunks through the real store; returns (vectors, tokens)."""
    from ingest.chunking import Chunk
    from ingest.loaders.base import LoadedDocument, Section
    from ingest.store.collection import VersionWriter
    from ingest.store.vectors import HNSW_THRESHOLD

    basis = rng.standard_normal((48, dim)).astype(np.float32)
    vecs = rng.standard_normal((n, 48)).astype(np.float32) @ basis
    vecs += 0.5 * rng.standard_normal((n, dim)).astype(np.float32) * float(np.abs(basis).mean())
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    vocab = np.array([f"w{i}" for i in range(20000)])
    zipf = np.minimum(rng.zipf(1.3, size=(n, 40)), 20000) - 1
    tokens = [list(vocab[row]) for row in zipf]
    writer = VersionWriter(coll, None, {"embedding_model": "synthetic", "dimension": dim, "created_at": "-"})
    per_doc = 50
    for d in range(0, n, per_doc):
        doc_id = f"doc{d // per_doc:06d}"
        rows = range(d, min(n, d + per_doc))
        chunks = [
            Chunk(f"{doc_id}#{i - d}", doc_id, doc_id, None, " ".join(tokens[i]), " ".join(tokens[i]), 0, 1)
            for i in rows
        ]
        doc = LoadedDocument(doc_id, doc_id, doc_id, [Section("")], {})
        writer.put_document(doc, doc_id, chunks, vecs[d : d + len(chunks)], [tokens[i] for i in rows])
    writer.publish(HNSW_THRESHOLD)
    return vecs, tokens


def _fixed(vec: np.ndarray) -> Callable[[str], np.ndarray]:
    """An `embed` function that returns a precomputed query vector."""
    return lambda _query: vec


def _retrieval_latency(
    snap: Any, emb: Any, texts: list[str], qvecs: np.ndarray, qtexts: list[str], threads: int
) -> dict[str, float]:
    """Whole retrieval path per query with `threads` torch threads: embed a real query, hybrid search.

    The real embedding is computed and timed, then the synthetic collection is searched with the
    synthetic query vector (the real one would not fit its vectors); `torch.set_num_threads` is what
    the gateway's RAGSERVE_EMBEDDING__TORCH_THREADS does.
    """
    import torch

    from ingest.search import search

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        lat, emb_lat = [], []
        for i, (qv, qt) in enumerate(zip(qvecs, qtexts, strict=True)):
            text = f"{texts[i % len(texts)]} {qt}"
            t0 = time.perf_counter()
            emb.encode_query(text)
            t1 = time.perf_counter()
            search(snap, qt, embed=_fixed(qv), top_k=10, mode="hybrid")
            t2 = time.perf_counter()
            emb_lat.append((t1 - t0) * 1000)
            lat.append((t2 - t0) * 1000)
    finally:
        torch.set_num_threads(before)
    return {
        f"t{threads}_embed_ms_p50": round(m.percentile(emb_lat, 50), 2),
        f"t{threads}_embed_ms_p99": round(m.percentile(emb_lat, 99), 2),
        f"t{threads}_retrieval_ms_p50": round(m.percentile(lat, 50), 2),
        f"t{threads}_retrieval_ms_p99": round(m.percentile(lat, 99), 2),
    }


def bench_query(
    sizes: list[int], n_queries: int, emb: Any = None, torch_threads: list[int] | None = None
) -> dict[str, Any]:
    """Search latency per mode and the index's recall@10 against exact search, per collection size.

    With `torch_threads`, also the whole retrieval path (query embedding + hybrid search) per thread count.
    """
    import faiss

    from ingest.search import search
    from ingest.store.collection import Snapshot
    from ingest.store.versions import read_manifest

    emb = emb or _embedder()
    real_queries = [
        "pod keeps restarting with exit code 137",
        "etcd has no leader",
        "disk almost full on node",
    ]
    emb.encode_query(real_queries[0])
    t_embed = []
    for i in range(30):
        t0 = time.perf_counter()
        emb.encode_query(real_queries[i % 3] + f" {i}")
        t_embed.append((time.perf_counter() - t0) * 1000)
    out: dict[str, Any] = {
        "embed_query_ms_p50": round(m.percentile(t_embed, 50), 2),
        "embed_query_ms_p99": round(m.percentile(t_embed, 99), 2),
        "sizes": [],
    }
    rng = np.random.default_rng(0)
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="ragserve-bench-") as tmp:
            coll = Path(tmp) / "synthetic"
            coll.mkdir()
            t0 = time.perf_counter()
            vecs, tokens = _synthetic_collection(coll, n, emb.dimension, rng)
            build_s = time.perf_counter() - t0
            manifest = read_manifest(coll)
            assert manifest is not None
            snap = Snapshot.load(coll, manifest)
            exact = faiss.IndexFlatIP(vecs.shape[1])
            exact.add(vecs)
            picks = rng.choice(n, n_queries, replace=False)
            qvecs = vecs[picks] + 0.6 * rng.standard_normal(vecs[picks].shape).astype(np.float32) / np.sqrt(
                vecs.shape[1]
            )
            qvecs /= np.linalg.norm(qvecs, axis=1, keepdims=True)
            qtexts = [" ".join(rng.choice(tokens[p], 6)) for p in picks]
            _, truth = exact.search(qvecs, 10)
            recalls = []
            for qv, want in zip(qvecs, truth, strict=True):
                from ingest.store import vectors

                _, got = vectors.search(snap.index, qv, 10)
                recalls.append(len(set(got.tolist()) & set(want.tolist())) / 10)
            row: dict[str, Any] = {
                "chunks": n,
                "index": manifest["index"],
                "build_seconds": round(build_s, 1),
                "recall_at_10_vs_exact": round(float(np.mean(recalls)), 4),
            }
            for mode in ("dense", "bm25", "hybrid"):
                for qv, qt in list(zip(qvecs, qtexts, strict=True))[:10]:  # warm-up: page in the index
                    search(snap, qt, embed=_fixed(qv), top_k=10, mode=mode)
                lat = []
                for qv, qt in zip(qvecs, qtexts, strict=True):
                    t0 = time.perf_counter()
                    search(snap, qt, embed=_fixed(qv), top_k=10, mode=mode)
                    lat.append((time.perf_counter() - t0) * 1000)
                row[f"{mode}_ms_p50"] = round(m.percentile(lat, 50), 2)
                row[f"{mode}_ms_p99"] = round(m.percentile(lat, 99), 2)
            for threads in torch_threads or []:
                row[f"load_before_t{threads}"] = round(os.getloadavg()[0], 2)
                row.update(_retrieval_latency(snap, emb, real_queries, qvecs, qtexts, threads))
            out["sizes"].append(row)
            print(json.dumps(row), file=sys.stderr)
    return out


def bench_stores(n: int, n_queries: int, dim: int = 512) -> dict[str, Any]:
    """Both store backends on one synthetic collection: write time, dense recall@10, latency per mode."""
    import faiss

    from ingest.chunking import Chunk
    from ingest.loaders.base import LoadedDocument, Section
    from ingest.store.backend import QueryEncoder
    from ingest.store.factory import open_backend

    rng = np.random.default_rng(0)
    basis = rng.standard_normal((48, dim)).astype(np.float32)
    vecs = rng.standard_normal((n, 48)).astype(np.float32) @ basis
    vecs += 0.5 * rng.standard_normal((n, dim)).astype(np.float32) * float(np.abs(basis).mean())
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    vocab = np.array([f"w{i}" for i in range(20000)])
    tokens = [list(vocab[row]) for row in np.minimum(rng.zipf(1.3, size=(n, 40)), 20000) - 1]
    exact = faiss.IndexFlatIP(dim)
    exact.add(vecs)
    picks = rng.choice(n, n_queries, replace=False)
    qvecs = vecs[picks] + 0.6 * rng.standard_normal((n_queries, dim)).astype(np.float32) / np.sqrt(dim)
    qvecs /= np.linalg.norm(qvecs, axis=1, keepdims=True)
    qtexts = [" ".join(rng.choice(tokens[p], 6)) for p in picks]
    _, truth = exact.search(qvecs, 10)
    chunk_ids = [f"doc{i // 50:06d}#{i % 50}" for i in range(n)]
    out: dict[str, Any] = {"chunks": n, "dimension": dim, "queries": n_queries, "backends": []}
    base = {"embedding_model": "synthetic", "dimension": dim, "created_at": "-"}
    for kind in ("faiss", "milvus"):
        with tempfile.TemporaryDirectory(prefix="ragserve-bench-") as tmp:
            backend = open_backend(kind, collections_dir=Path(tmp) / "collections")
            t0 = time.perf_counter()
            with backend.writing("synthetic", create=True, base=lambda: dict(base)) as writer:
                for d in range(0, n, 50):
                    doc_id = f"doc{d // 50:06d}"
                    rows = range(d, min(n, d + 50))
                    chunks = [
                        Chunk(
                            chunk_ids[i], doc_id, doc_id, None, " ".join(tokens[i]), " ".join(tokens[i]), 0, 1
                        )
                        for i in rows
                    ]
                    doc = LoadedDocument(doc_id, doc_id, doc_id, [Section("")], {})
                    writer.put_document(
                        doc,
                        doc_id,
                        chunks,
                        vecs[d : d + len(chunks)],
                        root=None,
                        tokens=[tokens[i] for i in rows],
                    )
                writer.commit()
            write_s = time.perf_counter() - t0
            row: dict[str, Any] = {"backend": kind, "write_seconds": round(write_s, 1)}
            row["write_chunks_per_s"] = round(n / write_s, 1)
            recalls = []
            for qv, want in zip(qvecs, truth, strict=True):
                enc = QueryEncoder(_fixed(qv), False)
                hits = backend.search(
                    "synthetic", "x", encoder=enc, top_k=10, mode="dense", filters=None, timings=None
                )
                got = {h.chunk_id for h in hits}
                recalls.append(len(got & {chunk_ids[int(i)] for i in want}) / 10)
            row["dense_recall_at_10_vs_exact"] = round(float(np.mean(recalls)), 4)
            for mode in ("dense", "bm25", "hybrid"):
                lat = []
                for i, (qv, qt) in enumerate(zip(qvecs, qtexts, strict=True)):
                    enc = QueryEncoder(_fixed(qv), False)
                    t0 = time.perf_counter()
                    backend.search(
                        "synthetic", qt, encoder=enc, top_k=10, mode=mode, filters=None, timings=None
                    )
                    if i >= 10:  # the first ten warm caches up
                        lat.append((time.perf_counter() - t0) * 1000)
                row[f"{mode}_ms_p50"] = round(m.percentile(lat, 50), 2)
                row[f"{mode}_ms_p99"] = round(m.percentile(lat, 99), 2)
            backend.close()
            out["backends"].append(row)
            print(json.dumps(row), file=sys.stderr)
    return out


def bench_update(n: int, n_queries: int = 200) -> dict[str, Any]:
    """Publishing a one-document change in an HNSW collection: graph carried forward vs rebuilt."""
    import faiss

    from ingest.chunking import Chunk
    from ingest.loaders.base import LoadedDocument, Section
    from ingest.store import collection, vectors
    from ingest.store.collection import Snapshot, VersionWriter
    from ingest.store.vectors import HNSW_THRESHOLD
    from ingest.store.versions import read_manifest

    if n < HNSW_THRESHOLD:
        raise SystemExit(f"--chunks must be at least the HNSW threshold ({HNSW_THRESHOLD})")
    rng = np.random.default_rng(1)
    out: dict[str, Any] = {"chunks": n}
    with tempfile.TemporaryDirectory(prefix="ragserve-bench-") as tmp:
        coll = Path(tmp) / "synthetic"
        coll.mkdir()
        t0 = time.perf_counter()
        vecs, _ = _synthetic_collection(coll, n, 384, rng)
        out["initial_build_seconds"] = round(time.perf_counter() - t0, 1)
        base = read_manifest(coll)
        assert base is not None
        doc_id = f"doc{(n // 50) // 2:06d}"  # a document in the middle
        new = vecs[:50] + 0.3 * rng.standard_normal((50, vecs.shape[1])).astype(np.float32) / 20
        new /= np.linalg.norm(new, axis=1, keepdims=True)
        chunks = [
            Chunk(f"{doc_id}#{i}", doc_id, doc_id, None, f"new {i}", f"new {i}", 0, 1) for i in range(50)
        ]
        doc = LoadedDocument(doc_id, doc_id, doc_id + "-v2", [Section("")], {})
        share = collection.MAX_TOMBSTONE_SHARE
        for how in ("rebuilt", "carried"):  # both from the same published version
            collection.MAX_TOMBSTONE_SHARE = share if how == "carried" else -1.0
            try:
                t0 = time.perf_counter()
                writer = VersionWriter(
                    coll, base, {k: base[k] for k in ("embedding_model", "dimension", "created_at")}
                )
                writer.put_document(doc, doc_id, chunks, new, [["new", str(i)] for i in range(50)])
                t1 = time.perf_counter()
                manifest = writer.publish(HNSW_THRESHOLD)
                t2 = time.perf_counter()
            finally:
                collection.MAX_TOMBSTONE_SHARE = share
            out[how] = {
                "copy_and_write_seconds": round(t1 - t0, 2),
                "publish_seconds": round(t2 - t1, 2),
                "tombstones": manifest["tombstones"],
            }
            print(f"{how}: {out[how]}", file=sys.stderr)
            if how == "rebuilt":
                # roll the manifest back so the carried run starts from the same version
                from ingest.store.versions import write_manifest

                write_manifest(coll, base)
        snap = Snapshot.load(coll, manifest)
        live = np.setdiff1d(np.arange(len(snap.rowids)), snap.dead)
        live_vecs = vectors.vectors_at(snap.index, live)
        exact = faiss.IndexFlatIP(live_vecs.shape[1])
        exact.add(live_vecs)
        picks = rng.choice(len(live), n_queries, replace=False)
        q = live_vecs[picks] + 0.6 * rng.standard_normal(live_vecs[picks].shape).astype(np.float32) / np.sqrt(
            384
        )
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        _, truth = exact.search(q, 10)
        recalls = []
        for qv, want in zip(q, truth, strict=True):
            _, got = vectors.search(snap.index, qv, 10, excluded=snap.dead)
            assert not np.isin(got, snap.dead).any()
            recalls.append(len(set(got.tolist()) & set(live[want].tolist())) / 10)
        out["carried_recall_at_10_vs_exact"] = round(float(np.mean(recalls)), 4)
    return out


def bench_chunking(chars: int) -> dict[str, Any]:
    """Chunker.split on texts that exercise each level of the splitter's separators."""
    import random

    from ingest.chunking import Chunker
    from ingest.embedding import Embedder
    from ingest.loaders.base import LoadedDocument, Section

    emb = Embedder.load()
    calls = 0

    def counted(text: str) -> int:
        nonlocal calls
        calls += 1
        return emb.count_tokens(text)

    rng = random.Random(0)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 9))) for _ in range(5000)]
    kinds: dict[str, Callable[[], str]] = {
        "prose": lambda: ". ".join(" ".join(rng.choices(words, k=12)) for _ in range(chars // 80)),
        "spaces_only": lambda: " ".join(rng.choice(words) for _ in range(chars // 6)),
        "no_separator": lambda: "".join(rng.choice("abcdefghij0123456789") for _ in range(chars)),
        "cjk_no_punctuation": lambda: "".join(chr(0x4E00 + rng.randint(0, 2000)) for _ in range(chars // 3)),
    }
    out: dict[str, Any] = {}
    for kind, make in kinds.items():
        text = make()
        chunker = Chunker(counted, 200, 30, emb.max_seq_length)
        calls = 0
        t0 = time.perf_counter()
        chunks = chunker.split(LoadedDocument("d", "d", "0", [Section(text)]))
        seconds = time.perf_counter() - t0
        out[kind] = {
            "chars": len(text),
            "seconds": round(seconds, 3),
            "chars_per_s": round(len(text) / seconds),
            "chunks": len(chunks),
            "tokenizer_calls": calls,
            "max_chunk_tokens": max(emb.count_tokens(c.text) for c in chunks),
            "chunk_tokens": chunker.chunk_tokens,
        }
        print(f"{kind}: {out[kind]}", file=sys.stderr)
    return {"kinds": out}


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    p = sub.add_parser("throughput")
    p.add_argument("--corpus", type=Path, required=True)
    p.add_argument("--limit-chunks", type=int, default=600)
    p.add_argument("--embedder", help="embedding model (default: the default embedder)")
    p = sub.add_parser("noop")
    p.add_argument("--files", type=int, default=1000)
    p = sub.add_parser("query")
    p.add_argument("--chunks", default="10000,100000")
    p.add_argument("--queries", type=int, default=200)
    p.add_argument(
        "--torch-threads",
        default="",
        help="comma-separated torch thread counts (e.g. 1,2): also time query embedding + hybrid search",
    )
    p.add_argument("--embedder", help="embedding model (default: the default embedder)")
    p = sub.add_parser("update")
    p.add_argument("--chunks", type=int, default=100_000)
    p = sub.add_parser("chunking")
    p.add_argument("--chars", type=int, default=1_000_000)
    p = sub.add_parser("stores")
    p.add_argument("--chunks", type=int, default=100_000)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--dim", type=int, default=512)
    for p in sub.choices.values():
        p.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    if args.what == "throughput":
        res = bench_throughput(args.corpus, args.limit_chunks, args.embedder)
    elif args.what == "noop":
        res = bench_noop(args.files)
    elif args.what == "update":
        res = bench_update(args.chunks)
    elif args.what == "chunking":
        res = bench_chunking(args.chars)
    elif args.what == "stores":
        res = bench_stores(args.chunks, args.queries, args.dim)
    else:
        threads = [int(x) for x in args.torch_threads.split(",") if x]
        emb = _embedder(args.embedder) if args.embedder else None
        res = bench_query(
            [int(x) for x in args.chunks.split(",")], args.queries, emb=emb, torch_threads=threads
        )
    doc = {"benchmark": args.what, **res, "machine": machine()}
    text = json.dumps(doc, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
