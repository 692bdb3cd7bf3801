"""KnowledgeBase: collections, incremental ingest, deletes, ids, failures, mismatch, search, hot reload."""

from __future__ import annotations

import copy
import json
import threading
from pathlib import Path

import pytest

from ingest.embedding import MINILM_MODEL, Embedder
from ingest.errors import (
    CollectionExists,
    CollectionNotFound,
    DocumentNotFound,
    EmbeddingMismatch,
    InvalidName,
    StoreBusy,
)
from ingest.knowledge_base import KnowledgeBase, normalize_document_id
from ingest.store.versions import read_manifest, version_dirs, writer_lock

from .pdfgen import make_pdf


def test_collections_lifecycle(kb: KnowledgeBase, embedder: Embedder) -> None:
    assert kb.list_collections() == []
    info = kb.create_collection("ops-1.0")
    assert (info.name, info.documents, info.chunks, info.embedding_model, info.dimension) == (
        "ops-1.0",
        0,
        0,
        embedder.model_id,
        embedder.dimension,
    )
    assert kb.exists("ops-1.0") and not kb.exists("nope") and not kb.exists("../x")
    assert kb.search("ops-1.0", "anything") == []
    with pytest.raises(CollectionExists):
        kb.create_collection("ops-1.0")
    for bad in ("", "../x", ".hidden", "a/b", "x" * 65, "sp ace"):
        with pytest.raises(InvalidName):
            kb.create_collection(bad)
    kb.delete_collection("ops-1.0")
    assert not kb.exists("ops-1.0")
    with pytest.raises(CollectionNotFound):
        kb.delete_collection("ops-1.0")
    with pytest.raises(CollectionNotFound):
        kb.search("ops-1.0", "q")


def test_ingest_directory_then_incremental(kb: KnowledgeBase, corpus: Path) -> None:
    seen: list[tuple[str, int, int]] = []
    s = kb.ingest_paths("c", [corpus], progress=lambda d, i, n: seen.append((d, i, n)))
    assert (s.added, s.failed, s.unchanged) == (5, 0, 0), s.failures
    assert seen[-1][1:] == (5, 5)
    docs = {d.document_id: d for d in kb.list_documents("c")}
    assert set(docs) == {"guide.html", "network.txt", "runbooks/etcd.md", "runbooks/pods.md", "zh.md"}
    assert docs["runbooks/pods.md"].chunks >= 2 and len(docs["zh.md"].sha256) == 64
    assert docs["zh.md"].ingested_at.endswith("Z")
    total = kb.chunk_count("c")
    assert total == sum(d.chunks for d in docs.values())
    version = kb.list_collections()[0].version

    # Re-ingest with nothing changed: all skipped, no new version is written.
    s = kb.ingest_paths("c", [corpus])
    assert (s.added, s.updated, s.unchanged, s.chunks) == (0, 0, 5, 0)
    assert kb.list_collections()[0].version == version

    # A changed file is replaced (old chunks gone), a removed one is pruned only with prune=True.
    (corpus / "network.txt").write_text("Ingress routers drop connections when the HAProxy reload storms.\n")
    (corpus / "guide.html").unlink()
    s = kb.ingest_paths("c", [corpus])
    assert (s.updated, s.unchanged, s.deleted) == (1, 3, 0)
    assert "guide.html" in {d.document_id for d in kb.list_documents("c")}
    hits = kb.search("c", "HAProxy reload", mode="bm25", filters={"document_id": "network.txt"})
    assert hits and all("CoreDNS" not in h.text for h in hits)
    assert kb.search("c", "CoreDNS daemonset", mode="bm25", filters={"document_id": "network.txt"}) == []
    s = kb.ingest_paths("c", [corpus], prune=True)
    assert (s.deleted, s.unchanged) == (1, 4)
    assert "guide.html" not in {d.document_id for d in kb.list_documents("c")}
    # Published versions are kept to the current and the previous one.
    coll_dir = kb.root / "c"
    current = read_manifest(coll_dir)
    assert current is not None
    assert set(version_dirs(coll_dir)) == {current["version"], current["version"] - 1}


def test_include_exclude_and_base_dir(kb: KnowledgeBase, corpus: Path) -> None:
    s = kb.ingest_paths("c", [corpus / "runbooks"], include=["*.md"], exclude=["etcd*"], base_dir=corpus)
    assert s.added == 1
    assert [d.document_id for d in kb.list_documents("c")] == ["runbooks/pods.md"]


def test_delete_document(kb: KnowledgeBase, corpus: Path) -> None:
    kb.ingest_paths("c", [corpus])
    kb.delete_document("c", "runbooks/etcd.md")
    assert "runbooks/etcd.md" not in {d.document_id for d in kb.list_documents("c")}
    assert all(h.document_id != "runbooks/etcd.md" for h in kb.search("c", "etcd quota defragment", top_k=10))
    with pytest.raises(DocumentNotFound):
        kb.delete_document("c", "runbooks/etcd.md")


def test_traversal_ids_are_rejected_or_normalized(kb: KnowledgeBase, tmp_path: Path) -> None:
    f = tmp_path / "up.txt"
    f.write_text("uploaded text about kernel panics")
    s = kb.ingest_files(
        "c", [("../x.txt", f), ("/etc/passwd", f), ("a/./b/../ok.txt", f), ("dir\\win.txt", f)]
    )
    assert s.added == 2 and s.failed == 2
    assert {x.source for x in s.failures} == {"../x.txt", "/etc/passwd"}
    assert [d.document_id for d in kb.list_documents("c")] == ["a/ok.txt", "dir/win.txt"]
    assert sorted(p.name for p in (kb.root / "c").iterdir() if not p.name.startswith(".")) == [
        "manifest.json",
        "v000001",
    ]
    assert normalize_document_id("runbooks//a.md") == "runbooks/a.md"
    with pytest.raises(InvalidName):
        normalize_document_id("a/../../b")


def test_broken_files_do_not_abort_the_batch(kb: KnowledgeBase, corpus: Path) -> None:
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 9 0 R >>\n%%EOF")
    make_pdf(corpus / "manual.pdf", [["Scale the ingress controller to three replicas."]], title="Manual")
    (corpus / "empty.txt").write_text("   \n")
    s = kb.ingest_paths("c", [corpus, corpus / "missing.md"])
    assert s.added == 6
    assert {f.source for f in s.failures} == {"broken.pdf", "empty.txt", str(corpus / "missing.md")}
    assert s.failed == 3 and all(f.reason and "\n" not in f.reason for f in s.failures)
    [hit] = kb.search("c", "ingress controller replicas", top_k=1)
    assert (hit.document_id, hit.page, hit.metadata["title"]) == ("manual.pdf", 1, "Manual")
    # A failed file keeps its previous version on prune (a parse error is not a deletion).
    kb.ingest_paths("c", [corpus])
    s = kb.ingest_paths("c", [corpus], prune=True)
    assert s.deleted == 0


def test_jsonl_documents_are_records(kb: KnowledgeBase, tmp_path: Path) -> None:
    f = tmp_path / "export.jsonl"
    f.write_text(
        json.dumps(
            {
                "id": "kb-1",
                "text": "Reset a user password from the admin console.",
                "metadata": {"team": "iam"},
            }
        )
        + "\n"
        + json.dumps(
            {
                "id": "kb-2",
                "text": "Rotate database credentials every ninety days.",
                "metadata": {"team": "db"},
            }
        )
    )
    s = kb.ingest_paths("j", [f])
    assert s.added == 2
    hits = kb.search("j", "password", top_k=5, filters={"team": ["iam", "hr"]})
    assert [h.document_id for h in hits] == ["kb-1"]
    assert kb.search("j", "password", filters={"team": "nobody"}) == []
    f.write_text(f.read_text().splitlines()[0] + "\n")
    s = kb.ingest_paths("j", [f], prune=True)
    assert (s.unchanged, s.deleted) == (1, 1)


def _renamed(embedder: Embedder, model_id: str) -> Embedder:
    """The same weights under another id: stands in for "a different model was configured"."""
    other = copy.copy(embedder)
    other.model_id = model_id
    return other


def test_collection_of_another_bundled_model_is_served_with_it(
    kb: KnowledgeBase, corpus: Path, embedder: Embedder
) -> None:
    kb.ingest_paths("c", [corpus / "network.txt"])
    loaded: list[str] = []

    def load(model: str) -> Embedder:
        loaded.append(model)
        return embedder

    kb2 = KnowledgeBase(kb.root, _renamed(embedder, "some-other-model"), load_embedder=load)
    hits = kb2.search("c", "name resolution is broken", mode="dense")
    assert hits and hits[0].document_id == "network.txt"
    kb2.ingest_paths("c", [corpus / "zh.md"])  # new chunks embedded with the collection's model too
    assert kb2.info("c").embedding_model == embedder.model_id
    kb2.search("c", "dns")
    assert loaded == [embedder.model_id]  # loaded once, then kept


def test_collection_of_an_unloadable_model_is_a_clear_error(
    tmp_path: Path, corpus: Path, embedder: Embedder
) -> None:
    kb = KnowledgeBase(tmp_path / "collections", _renamed(embedder, "some-other-model"))
    kb.ingest_paths("c", [corpus / "network.txt"])
    kb2 = KnowledgeBase(kb.root, embedder)
    with pytest.raises(EmbeddingMismatch, match=r"some-other-model .*ragserve reembed --collection c"):
        kb2.search("c", "dns")
    with pytest.raises(EmbeddingMismatch):
        kb2.ingest_paths("c", [corpus / "zh.md"])
    assert kb2.search("c", "CoreDNS", mode="bm25")  # lexical search needs no embedder


def test_reembed_moves_a_collection_to_the_configured_model(
    tmp_path: Path, corpus: Path, embedder: Embedder, minilm_embedder: Embedder
) -> None:
    old = minilm_embedder  # the default before issue 21
    assert old.model_id != embedder.model_id
    kb_old = KnowledgeBase(tmp_path / "collections", old)
    kb_old.ingest_paths("c", [corpus])
    before = kb_old.info("c")
    chunk_ids = {h.chunk_id for h in kb_old.search("c", "etcd quota", top_k=50, mode="bm25")}
    kb = KnowledgeBase(kb_old.root, embedder)
    seen: list[tuple[int, int]] = []
    summary = kb.reembed("c", progress=lambda done, total: seen.append((done, total)))
    assert (summary.previous_model, summary.model) == (MINILM_MODEL, embedder.model_id)
    assert summary.chunks == before.chunks and seen[-1] == (before.chunks, before.chunks)
    after = kb.info("c")
    assert (after.embedding_model, after.dimension) == (embedder.model_id, embedder.dimension)
    assert after.version == before.version + 1 and after.documents == before.documents
    hits = kb.search("c", "the etcd storage quota is almost full", mode="dense", top_k=1)
    assert hits[0].document_id == "runbooks/etcd.md"
    assert {h.chunk_id for h in kb.search("c", "etcd quota", top_k=50, mode="bm25")} == chunk_ids
    assert kb.reembed("c").chunks == 0  # already on the configured model
    with pytest.raises(CollectionNotFound):
        kb.reembed("missing")


def test_search_english_and_chinese(kb: KnowledgeBase, corpus: Path) -> None:
    kb.ingest_paths("c", [corpus])
    cases = {
        "how do I read the logs of a crashed container": "runbooks/pods.md",
        "the etcd storage quota is almost full": "runbooks/etcd.md",
        "name resolution is broken in the cluster": "network.txt",
        "磁盘使用率太高怎么办": "zh.md",
        "数据库备份保留多久": "zh.md",
    }
    for query, expected in cases.items():
        for mode in ("hybrid", "dense", "bm25") if expected != "zh.md" else ("hybrid", "bm25"):
            hits = kb.search("c", query, top_k=3, mode=mode)
            assert hits, (query, mode)
            assert hits[0].document_id == expected, (query, mode, [h.chunk_id for h in hits])
            assert hits == sorted(hits, key=lambda h: -h.score)
    zh = kb.search("c", "磁盘使用率太高怎么办", top_k=1)[0]
    assert "扩容" in zh.text and zh.metadata["heading"] == "磁盘告警"
    dense = kb.search("c", "crashed container logs", mode="dense", top_k=1)[0]
    assert 0.0 < dense.score <= 1.0  # cosine similarity
    hit = kb.search("c", "crashed container logs", top_k=1, filters={"source": "runbooks/pods.md"})[0]
    assert hit.metadata["heading"] == "Pod crash loop > Diagnosis > Check pod logs"
    assert {"start", "end", "scores"} <= set(hit.metadata)
    with pytest.raises(Exception, match="unknown search mode"):
        kb.search("c", "x", mode="fuzzy")


def test_hot_reload_and_concurrent_reads(kb: KnowledgeBase, corpus: Path, embedder: Embedder) -> None:
    kb.ingest_paths("c", [corpus / "network.txt"])
    reader = KnowledgeBase(kb.root, lambda: embedder)  # e.g. the server, while the CLI writes
    assert [d.document_id for d in reader.list_documents("c")] == ["network.txt"]
    errors: list[BaseException] = []
    stop = threading.Event()

    def read_loop() -> None:
        while not stop.is_set():
            try:
                assert reader.search("c", "CoreDNS pods", top_k=1)[0].document_id == "network.txt"
            except BaseException as exc:  # collected and re-raised in the test thread
                errors.append(exc)
                return

    threads = [threading.Thread(target=read_loop) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        kb.ingest_paths("c", [corpus / "runbooks"], base_dir=corpus)
        kb.delete_document("c", "runbooks/etcd.md")
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors
    assert {d.document_id for d in reader.list_documents("c")} == {"network.txt", "runbooks/pods.md"}
    assert reader.search("c", "crashed container logs", top_k=1)[0].document_id == "runbooks/pods.md"
    kb.delete_collection("c")
    with pytest.raises(CollectionNotFound):
        reader.list_documents("c")


def test_one_writer_at_a_time(kb: KnowledgeBase, corpus: Path) -> None:
    kb.create_collection("c")
    with writer_lock(kb.root / "c"), pytest.raises(StoreBusy, match="another job"):
        kb.ingest_paths("c", [corpus / "network.txt"])
    assert kb.ingest_paths("c", [corpus / "network.txt"]).added == 1


def test_approximate_index_above_threshold(tmp_path: Path, corpus: Path, embedder: Embedder) -> None:
    exact = KnowledgeBase(tmp_path / "exact", embedder)
    approx = KnowledgeBase(tmp_path / "approx", embedder, hnsw_threshold=1)
    for kb_ in (exact, approx):
        kb_.ingest_paths("c", [corpus])
    manifest = read_manifest(approx.root / "c")
    assert manifest is not None and manifest["index"] == "hnsw"
    for query in ("crashed container logs", "etcd quota", "certificate rotation"):
        want = [h.chunk_id for h in exact.search("c", query, mode="dense", top_k=3)]
        assert [h.chunk_id for h in approx.search("c", query, mode="dense", top_k=3)] == want
    hits = approx.search("c", "logs", mode="dense", top_k=5, filters={"document_id": "zh.md"})
    assert hits and {h.document_id for h in hits} == {"zh.md"}
