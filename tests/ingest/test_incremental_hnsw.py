"""An HNSW collection carries its graph forward: new chunks added, replaced ones tombstoned.

Every check compares against a twin collection built from scratch with an exact index: the carried
version must answer exactly as a fresh build of the same files, in every mode.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ingest.embedding import Embedder
from ingest.knowledge_base import KnowledgeBase
from ingest.store import lexical, vectors
from ingest.store.collection import TOMBSTONES
from ingest.store.versions import read_manifest

TOPICS = [
    "etcd database quota", "pod crash loop", "DNS resolution failures", "certificate expiry",
    "disk pressure on nodes", "image registry storage", "ingress controller errors", "node not ready",
    "persistent volume full", "alertmanager notifications", "prometheus scrape failures", "OVN leader",
    "virt-launcher eviction", "ceph monitor quorum", "kube-apiserver latency", "machine config drift",
    "log forwarder backlog", "operator upgrade blocked", "cluster version stuck", "MAC address collision",
    "route timeouts", "network policy denies", "cron job missed", "memory leak in sidecar",
    "kernel panic on VMs", "thanos compaction halted", "object bucket quota", "hostpath pool on root disk",
]  # fmt: skip
QUERIES = [
    "etcd quota exceeded",
    "pods restarting",
    "name lookups failing",
    "bucket is full",
    "VM kernel crash",
]


def _write(root: Path, i: int, version: int = 0) -> None:
    topic = TOPICS[i]
    extra = f" Revision {version}: after the change, also check the {topic} dashboard." if version else ""
    (root / f"doc{i:02d}.md").write_text(
        f"# {topic.title()}\n\n## Meaning\n\nThe {topic} alert fires when the {topic} condition holds "
        f"for ten minutes on cluster {i}.{extra}\n\n## Mitigation\n\nFollow the {topic} procedure {i}.\n",
        encoding="utf-8",
    )


def _same_answers(carried: KnowledgeBase, fresh: KnowledgeBase) -> None:
    for mode in ("dense", "bm25", "hybrid"):
        for q in QUERIES:
            got = carried.search("c", q, mode=mode, top_k=6)
            want = fresh.search("c", q, mode=mode, top_k=6)
            assert [h.chunk_id for h in got] == [h.chunk_id for h in want], (mode, q)
            assert [h.text for h in got] == [h.text for h in want]
            assert np.allclose([h.score for h in got], [h.score for h in want], atol=1e-4), (mode, q)
    filt = {"document_id": "doc03.md"}
    got = carried.search("c", "procedure", mode="hybrid", top_k=5, filters=filt)
    assert got and [h.chunk_id for h in got] == [
        h.chunk_id for h in fresh.search("c", "procedure", mode="hybrid", top_k=5, filters=filt)
    ]
    assert carried.chunk_count("c") == fresh.chunk_count("c")


def test_hnsw_graph_is_carried_forward_and_answers_like_a_fresh_build(
    tmp_path: Path, embedder: Embedder
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(len(TOPICS)):
        _write(src, i)
    carried = KnowledgeBase(tmp_path / "carried", embedder, hnsw_threshold=10)
    carried.ingest_paths("c", [src])
    first = read_manifest(carried.root / "c")
    assert first is not None and first["index"] == "hnsw" and first["tombstones"] == 0

    # Two changed files, one gone (pruned), one new: a few positions change, the graph is kept.
    _write(src, 2, version=1)
    _write(src, 5, version=1)
    (src / "doc07.md").unlink()
    (src / "doc90.md").write_text(
        "# Bucket full\n\nThe object bucket is full; raise its quota.\n", encoding="utf-8"
    )
    s = carried.ingest_paths("c", [src], prune=True)
    assert (s.added, s.updated, s.deleted) == (1, 2, 1)
    m = read_manifest(carried.root / "c")
    assert m is not None and m["index"] == "hnsw" and m["tombstones"] > 0
    vdir = carried.root / "c" / str(m["dir"])
    dead = np.load(vdir / TOMBSTONES)
    index = vectors.load_index(vdir / vectors.FILENAME)
    assert index.ntotal == m["chunks"] + len(dead)  # the old positions are still in the graph
    assert m["chunks"] == carried.chunk_count("c")

    fresh = KnowledgeBase(tmp_path / "fresh", embedder)  # exact index, built once from the same files
    fresh.ingest_paths("c", [src])
    _same_answers(carried, fresh)
    texts = {h.text for q in QUERIES for h in carried.search("c", q, mode="dense", top_k=40)}
    assert not any("cluster 7." in t for t in texts)  # the pruned document's chunks never come back
    assert any("Revision 1" in t for t in texts)

    # A document deleted on its own also becomes a tombstone; still the same answers as a fresh build.
    carried.delete_document("c", "doc11.md")
    fresh.delete_document("c", "doc11.md")
    m2 = read_manifest(carried.root / "c")
    assert m2 is not None and m2["tombstones"] > m["tombstones"]
    _same_answers(carried, fresh)

    # Past the tombstone share the next version rebuilds the graph from the live chunks only.
    (src / "doc11.md").unlink()
    for i in range(0, len(TOPICS), 2):
        if i != 7:
            _write(src, i, version=2)
    carried.ingest_paths("c", [src])
    fresh.ingest_paths("c", [src])
    m3 = read_manifest(carried.root / "c")
    assert m3 is not None and m3["index"] == "hnsw" and m3["tombstones"] == 0
    assert not (carried.root / "c" / str(m3["dir"]) / TOMBSTONES).exists()
    assert vectors.load_index(carried.root / "c" / str(m3["dir"]) / vectors.FILENAME).ntotal == m3["chunks"]
    _same_answers(carried, fresh)


def test_reused_ids_force_a_rebuild(tmp_path: Path, embedder: Embedder) -> None:
    """SQLite hands a deleted largest id out again: the graph is then rebuilt, never served stale."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(12):
        _write(src, i)
    kb = KnowledgeBase(tmp_path / "kb", embedder, hnsw_threshold=5)
    kb.ingest_paths("c", [src])
    _write(src, 11, version=1)  # the last document ingested holds the largest chunk ids
    kb.ingest_paths("c", [src])
    m = read_manifest(kb.root / "c")
    assert m is not None and m["index"] == "hnsw" and m["tombstones"] == 0
    hits = kb.search("c", "OVN leader dashboard revision", mode="hybrid", top_k=3)
    assert hits[0].document_id == "doc11.md" and "Revision 1" in hits[0].text


@pytest.mark.parametrize("dead", [[0], [1, 3], [4]])
def test_bm25_over_live_positions_equals_a_fresh_build(dead: list[int]) -> None:
    docs = [
        ["etcd", "quota"],
        ["pod", "crash", "loop"],
        ["etcd", "leader"],
        ["dns", "fail"],
        ["quota", "bucket"],
    ]
    live = np.array([p for p in range(len(docs)) if p not in dead])
    positioned = lexical.build([docs[p] for p in live], positions=live, size=len(docs))
    fresh = lexical.build([docs[p] for p in live])
    for query in (["etcd"], ["quota", "bucket"], ["crash"], ["dns", "etcd"]):
        toks = [t for t in positioned.analyzer.apply(query) if t in positioned.bm25.vocab_dict]
        got = positioned.scores(toks)
        assert got.shape == (len(docs),) and not got[dead].any()
        assert np.allclose(got[live], fresh.scores(toks))
        best = int(np.argmax(got))
        if got[best] > 0:
            assert positioned.coverage(toks, best) == pytest.approx(
                fresh.coverage(toks, int(np.flatnonzero(live == best)[0]))
            )


def test_batch_analysis_equals_per_chunk_analysis() -> None:
    """BM25 builds analyze each distinct token once; the result must be what analyzing each chunk gives."""
    lists = [["forwarders", "dropped", "数据库", "pods"], [], ["forwarding", "drops", "备份", "running"]]
    for analyzer in (lexical.DEFAULT, lexical.LEGACY):
        assert lexical._analyze_all(lists, analyzer) == [analyzer.apply(t) for t in lists]
