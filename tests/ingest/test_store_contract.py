"""The store contract, run on both backends: FAISS directories and Milvus (Milvus Lite on a file).

Everything here goes through `KnowledgeBase`, as the gateway, the jobs API, `ragserve ingest`,
`ragserve eval retrieval` and RCA do, so a test that passes on both backends is a promise that
nothing outside the backend needs to know which one runs.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.embedding import Embedder
from ingest.errors import (
    CollectionExists,
    CollectionNotFound,
    DocumentNotFound,
    EmbeddingMismatch,
    InvalidFilter,
    SourceMissing,
)
from ingest.knowledge_base import KnowledgeBase
from ingest.store.backend import StoreBackend
from ingest.store.faiss_backend import FaissBackend
from tests.ingest.pdfgen import make_pdf

REPO = Path(__file__).resolve().parents[2]
BACKENDS = ("faiss", "milvus")


def open_backend(kind: str, where: Path) -> StoreBackend:
    if kind == "faiss":
        return FaissBackend(where / "collections", lock_wait_s=0.5)
    from ingest.store.milvus_backend import MilvusBackend

    return MilvusBackend(str(where / "milvus.db"))


@pytest.fixture(params=BACKENDS)
def backend_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(tmp_path: Path, embedder: Embedder, backend_kind: str) -> Iterator[KnowledgeBase]:
    """An empty knowledge base on one backend."""
    backend = open_backend(backend_kind, tmp_path)
    yield KnowledgeBase(tmp_path / "collections", embedder, backend=backend)
    backend.close()  # Milvus Lite: stops its in-process server, freeing the file


def _docs(kb: KnowledgeBase, name: str = "c") -> set[str]:
    return {d.document_id for d in kb.list_documents(name)}


def test_collections_lifecycle(store: KnowledgeBase) -> None:
    assert store.list_collections() == [] and not store.exists("a")
    info = store.create_collection("a.b-c_1")  # every character of the name rule survives the mapping
    assert (info.name, info.documents, info.chunks) == ("a.b-c_1", 0, 0)
    assert info.embedding_model == store.embedder.model_id
    assert info.dimension == store.embedder.dimension
    with pytest.raises(CollectionExists):
        store.create_collection("a.b-c_1")
    store.create_collection("a_b-c.1")
    assert [c.name for c in store.list_collections()] == ["a.b-c_1", "a_b-c.1"]
    assert store.exists("a.b-c_1") and store.search("a.b-c_1", "anything") == []
    store.delete_collection("a.b-c_1")
    assert [c.name for c in store.list_collections()] == ["a_b-c.1"]
    for call in (store.list_documents, store.chunk_count, store.delete_collection):
        with pytest.raises(CollectionNotFound):
            call("a.b-c_1")
    with pytest.raises(CollectionNotFound):
        store.search("a.b-c_1", "x")


def test_incremental_ingest_skip_replace_delete_prune(store: KnowledgeBase, corpus: Path) -> None:
    s = store.ingest_paths("c", [corpus])
    assert (s.added, s.failed) == (5, 0) and s.chunks > 5
    info = store.info("c")
    assert (info.documents, info.chunks) == (5, s.chunks) and store.chunk_count("c") == s.chunks
    again = store.ingest_paths("c", [corpus])
    assert (again.added, again.updated, again.unchanged, again.chunks) == (0, 0, 5, 0)
    assert store.info("c").version == info.version  # nothing changed: no new version
    (corpus / "network.txt").write_text("DNS lookups time out when the upstream resolver is down.\n")
    (corpus / "runbooks" / "etcd.md").unlink()
    s = store.ingest_paths("c", [corpus], prune=True)
    assert (s.updated, s.unchanged, s.deleted) == (1, 3, 1)
    assert _docs(store) == {"guide.html", "network.txt", "runbooks/pods.md", "zh.md"}
    hit = store.search("c", "upstream resolver down", top_k=1)[0]
    assert hit.document_id == "network.txt" and "time out" in hit.text
    assert not [h for h in store.search("c", "CoreDNS daemonset", top_k=10) if "CoreDNS" in h.text]
    store.delete_document("c", "zh.md")
    with pytest.raises(DocumentNotFound):
        store.delete_document("c", "zh.md")
    assert "zh.md" not in _docs(store)
    assert store.info("c").chunks == sum(d.chunks for d in store.list_documents("c"))


def test_prune_only_touches_its_own_source_root(store: KnowledgeBase, corpus: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "faq.md").write_text("# FAQ\n\nThe VPN needs a hardware token.\n")
    store.ingest_paths("c", [corpus])
    store.ingest_paths("c", [other])
    upload = tmp_path / "staging" / "upload.txt"
    upload.parent.mkdir()
    upload.write_text("Uploaded over HTTP: the on-call rota is in the wiki.\n")
    store.ingest_files("c", [("upload.txt", upload)])
    (corpus / "network.txt").unlink()
    assert store.ingest_paths("c", [corpus], prune=True).deleted == 1
    assert {"faq.md", "upload.txt", "zh.md"} <= _docs(store) and "network.txt" not in _docs(store)
    # The other root prunes its own documents only.
    (other / "faq.md").unlink()
    (other / "new.md").write_text("# New\n\nRotate the TLS certificates.\n")
    s = store.ingest_paths("c", [other], prune=True)
    assert (s.added, s.deleted) == (1, 1)
    assert {"upload.txt", "zh.md", "new.md"} <= _docs(store) and "faq.md" not in _docs(store)
    before = _docs(store)
    with pytest.raises(SourceMissing, match="nothing was ingested or deleted"):
        store.ingest_paths("c", [tmp_path / "unmounted"], prune=True)
    assert _docs(store) == before


def test_search_modes_languages_pages_and_chunk_ids(store: KnowledgeBase, corpus: Path) -> None:
    make_pdf(
        corpus / "manual.pdf",
        [["Installing the agent needs root access."], ["The agent rotates its log files nightly at 02:00."]],
    )
    store.ingest_paths("c", [corpus])
    cases = {
        "how do I read the logs of a crashed container": "runbooks/pods.md",
        "the etcd storage quota is almost full": "runbooks/etcd.md",
        "磁盘使用率太高怎么办": "zh.md",
    }
    for query, expected in cases.items():
        for mode in ("hybrid", "dense", "bm25") if expected != "zh.md" else ("hybrid", "bm25"):
            hits = store.search("c", query, top_k=3, mode=mode)
            assert hits and hits[0].document_id == expected, (query, mode, [h.chunk_id for h in hits])
            assert hits == sorted(hits, key=lambda h: -h.score)
    dense = store.search("c", "crashed container logs", mode="dense", top_k=1)[0]
    assert 0.0 < dense.score <= 1.0
    hybrid = store.search("c", "crashed container logs", top_k=1)[0]
    assert {"start", "end", "scores"} <= set(hybrid.metadata)
    assert set(hybrid.metadata["scores"]) >= {"dense", "bm25", "lexical_coverage", "dense_weight"}
    page = store.search("c", "when are the agent log files rotated", top_k=1)[0]
    assert (page.document_id, page.page) == ("manual.pdf", 2)
    assert page.chunk_id.startswith("manual.pdf#")
    assert store.search("c", "zzzzqqq", mode="bm25") == []
    with pytest.raises(Exception, match="unknown search mode"):
        store.search("c", "x", mode="fuzzy")


def test_metadata_filters(store: KnowledgeBase, tmp_path: Path) -> None:
    f = tmp_path / "records.jsonl"
    f.write_text(
        '{"id": "a", "text": "Reset the VPN password in the portal.", '
        '"metadata": {"team": "net", "tier": 1}}\n'
        '{"id": "b", "text": "Reset the database password with the admin tool.", '
        '"metadata": {"team": "db", "tier": 2, "quote": "it\'s \\"x\\""}}\n'
        '{"id": "c", "text": "Rotate the password of the service account.", "metadata": {"team": "sec"}}\n',
        encoding="utf-8",
    )
    store.ingest_paths("j", [f])

    def ids(filters: dict[str, object], mode: str = "hybrid") -> set[str]:
        return {
            h.document_id for h in store.search("j", "reset password", top_k=10, mode=mode, filters=filters)
        }

    for mode in ("hybrid", "dense", "bm25"):
        assert ids({"team": "db"}, mode) == {"b"}
        assert ids({"team": ["db", "net"]}, mode) == {"a", "b"}
        assert ids({"tier": 1}, mode) == {"a"}
        assert ids({"document_id": ["a", "c"], "team": "sec"}, mode) == {"c"}
        assert ids({"source": ["a", "b"]}, mode) == {"a", "b"}  # a record's source is its id
        assert ids({"quote": 'it\'s "x"'}, mode) == {"b"}  # quotes reach the store as data
        assert ids({"team": []}, mode) == set() and ids({"team": None}, mode) == set()
        assert ids({"team": "nobody"}, mode) == set()
    for bad in ({"te am": "x"}, {"team": {"$ne": 1}}, {"x') or 1=1 --": 1}):
        with pytest.raises(InvalidFilter):
            store.search("j", "password", filters=bad)


def test_embedder_recorded_and_checked(store: KnowledgeBase, corpus: Path, embedder: Embedder) -> None:
    # Built with a model this process cannot load (the same weights under another id) ...
    renamed = copy.copy(embedder)
    renamed.model_id = "some-other-model"
    KnowledgeBase(None, renamed, backend=store.backend).ingest_paths("c", [corpus / "network.txt"])
    assert store.info("c").embedding_model == "some-other-model"
    # ... is never searched or extended with the configured one.
    with pytest.raises(EmbeddingMismatch, match=r"some-other-model .*ragserve reembed --collection c"):
        store.search("c", "dns")
    with pytest.raises(EmbeddingMismatch):
        store.ingest_paths("c", [corpus / "zh.md"])
    assert store.search("c", "CoreDNS", mode="bm25")  # lexical search needs no embedder
    assert _docs(store) == {"network.txt"}


def test_readers_see_each_document_whole_during_an_ingest(store: KnowledgeBase, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    text = "\n\n".join(f"## Step {i}\n\nversion one of the failover runbook, step {i}." for i in range(40))
    (src / "failover.md").write_text("# Failover\n\n" + text)
    store.ingest_paths("c", [src])
    n_old = store.chunk_count("c")
    (src / "failover.md").write_text("# Failover\n\n" + text.replace("version one", "version two"))
    seen: list[set[str]] = []
    stop = threading.Event()

    def read_loop() -> None:
        while not stop.is_set():
            hits = store.search("c", "failover runbook step", top_k=50, mode="bm25")
            seen.append({v for h in hits for v in ("one", "two") if f"version {v}" in h.text})

    reader = threading.Thread(target=read_loop)
    reader.start()
    try:
        store.ingest_paths("c", [src])
    finally:
        stop.set()
        reader.join()
    assert seen and all(len(s) == 1 for s in seen), "a reader saw old and new chunks of one document mixed"
    assert store.chunk_count("c") == n_old
    assert {h.text.split()[1] for h in store.search("c", "failover runbook step", top_k=50, mode="bm25")} == {
        "two"
    }


KILL_SCRIPT = """
import sys, time
from pathlib import Path
from ingest.embedding import Embedder
from ingest.knowledge_base import KnowledgeBase
from tests.ingest.test_store_contract import open_backend
kind, where, src = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
kb = KnowledgeBase(None, Embedder.load(device="cpu"), backend=open_backend(kind, where), embed_group=2)
def progress(doc_id, done, total):
    print(f"progress {done}", flush=True)
    time.sleep(0.3)
kb.ingest_paths("c", [src], progress=progress)
print("finished", flush=True)
"""


def test_kill_9_mid_ingest_leaves_every_document_whole(
    tmp_path: Path, embedder: Embedder, backend_kind: str
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(12):
        (src / f"doc{i:02d}.md").write_text(f"# Doc {i}\n\nversion one of document {i} about disk alerts.\n")
    kb = KnowledgeBase(None, embedder, backend=open_backend(backend_kind, tmp_path))
    kb.ingest_paths("c", [src])
    kb.backend.close()  # Milvus Lite: one process per file, so the child can open it
    for i in range(12):
        (src / f"doc{i:02d}.md").write_text(f"# Doc {i}\n\nversion two of document {i} about disk alerts.\n")
    kill_half_way("ingest", KILL_SCRIPT, backend_kind, str(tmp_path), str(src))
    kb = KnowledgeBase(None, embedder, backend=open_backend(backend_kind, tmp_path))
    try:
        docs = kb.list_documents("c")
        assert len(docs) == 12 and kb.chunk_count("c") == sum(d.chunks for d in docs)
        by_doc: dict[str, set[str]] = {}
        for h in kb.search("c", "document about disk alerts", top_k=50, mode="bm25"):
            by_doc.setdefault(h.document_id, set()).add(h.text.split()[1])
        assert len(by_doc) == 12 and all(len(v) == 1 for v in by_doc.values()), by_doc
        s = kb.ingest_paths("c", [src])  # the next writer finishes the job
        assert s.failed == 0 and s.added == 0
        hits = kb.search("c", "document about disk alerts", top_k=50, mode="bm25")
        assert len(hits) == 12 and all("version two" in h.text for h in hits)
    finally:
        kb.backend.close()


def test_same_results_on_both_backends(tmp_path: Path, embedder: Embedder, corpus: Path) -> None:
    """The same corpus and questions give the same top documents, chunk ids and pages on both."""
    kbs = {k: KnowledgeBase(None, embedder, backend=open_backend(k, tmp_path / k)) for k in BACKENDS}
    try:
        for kb in kbs.values():
            kb.ingest_paths("c", [corpus])
        for kind in ("hybrid", "dense", "bm25"):
            for q in (
                "how do I read the logs of a crashed container",
                "etcd defragment disk space",
                "expired TLS certificates",
                "磁盘使用率太高怎么办",
            ):
                top = {
                    k: [(h.chunk_id, h.page) for h in kb.search("c", q, top_k=2, mode=kind)]
                    for k, kb in kbs.items()
                }
                assert top["faiss"][:1] == top["milvus"][:1], (kind, q, top)
        assert [d.to_dict() | {"ingested_at": ""} for d in kbs["faiss"].list_documents("c")] == [
            d.to_dict() | {"ingested_at": ""} for d in kbs["milvus"].list_documents("c")
        ]
    finally:
        for kb in kbs.values():
            kb.backend.close()


def test_migrate_faiss_to_milvus_without_reembedding(
    tmp_path: Path, embedder: Embedder, corpus: Path
) -> None:
    from ingest.store.migrate import migrate_collection

    faiss = KnowledgeBase(None, embedder, backend=open_backend("faiss", tmp_path))
    faiss.ingest_paths("c", [corpus])
    target = open_backend("milvus", tmp_path)
    try:
        done: list[int] = []
        s = migrate_collection(faiss.backend, target, "c", progress=lambda _n, i, _t: done.append(i))
        assert s.verified and (s.copied, s.target_documents, s.target_chunks) == (
            5,
            5,
            faiss.chunk_count("c"),
        )
        assert done == [1, 2, 3, 4, 5]
        # Copied as stored (vectors, BM25 terms, pages, chunk ids): the same results on both.
        milvus = KnowledgeBase(None, embedder, backend=target)
        assert milvus.info("c").embedding_model == faiss.info("c").embedding_model
        for mode in ("hybrid", "dense", "bm25"):
            for q in ("crashed container logs", "磁盘使用率太高怎么办", "expired TLS certificates"):
                want = [h.chunk_id for h in faiss.search("c", q, top_k=1, mode=mode)]
                assert [h.chunk_id for h in milvus.search("c", q, top_k=1, mode=mode)] == want, (mode, q)
        again = migrate_collection(faiss.backend, target, "c")
        assert (again.copied, again.unchanged, again.verified) == (0, 5, True)
        (corpus / "network.txt").write_text("DNS lookups time out when the upstream resolver is down.\n")
        (corpus / "zh.md").unlink()
        faiss.ingest_paths("c", [corpus], prune=True)
        third = migrate_collection(faiss.backend, target, "c")
        assert (third.copied, third.deleted, third.verified) == (1, 1, True)
        assert milvus.search("c", "upstream resolver", top_k=1)[0].document_id == "network.txt"
        # An ingest into the migrated collection still skips what it already holds.
        assert milvus.ingest_paths("c", [corpus]).unchanged == 4
    finally:
        target.close()


def test_cli_store_migrate(tmp_path: Path, corpus: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAGSERVE_STORE__MILVUS__URI": str(tmp_path / "m.db")}
    data = ["--data-dir", str(tmp_path / "data")]
    ingest = subprocess.run(
        [sys.executable, "-m", "service.cli", *data, "ingest", str(corpus / "runbooks"), "-c", "rb"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert ingest.returncode == 0, ingest.stderr
    out = subprocess.run(
        [sys.executable, "-m", "service.cli", *data, "store", "migrate", "--from", "faiss", "--to", "milvus"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "rb: 2 copied, 0 unchanged, 0 deleted; 2/2 documents" in out.stdout and "verified" in out.stdout
    listed = subprocess.run(
        [sys.executable, "-m", "service.cli", *data, "collections", "--json"],
        env={**env, "RAGSERVE_STORE__BACKEND": "milvus"},
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert [c["name"] for c in json.loads(listed.stdout)] == ["rb"]
    bad = subprocess.run(
        [sys.executable, "-m", "service.cli", *data, "store", "migrate", "--from", "faiss", "--to", "milvus",
         "-c", "nope"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert bad.returncode == 1 and "nope" in bad.stderr and "does not exist" in bad.stderr


def test_reembed(store: KnowledgeBase, corpus: Path, minilm_embedder: Embedder, backend_kind: str) -> None:
    KnowledgeBase(None, minilm_embedder, backend=store.backend).ingest_paths("c", [corpus])
    hit = store.search("c", "crashed container logs", top_k=1)[0]  # served with the model that built it
    before = store.info("c")
    assert before.dimension == minilm_embedder.dimension != store.embedder.dimension  # 384 -> 512
    summary = store.reembed("c")
    info = store.info("c")
    assert summary.chunks == store.chunk_count("c") == before.chunks
    assert (info.embedding_model, info.dimension) == (store.embedder.model_id, store.embedder.dimension)
    assert info.documents == before.documents and info.version > before.version
    assert store.search("c", "crashed container logs", top_k=1)[0].document_id == hit.document_id
    for mode in ("bm25", "hybrid"):  # chunk ids, text and BM25 terms carried over
        assert (
            store.search("c", "CoreDNS upstream resolver", top_k=1, mode=mode)[0].document_id == "network.txt"
        )
    assert store.reembed("c").chunks == 0  # already on the configured model: nothing to do
    if backend_kind == "milvus":  # the old chunks collection is gone; only the new one is left
        b = store.backend
        colls = [c for c in b.client.list_collections() if c.startswith("ragserve_c_")]  # type: ignore[attr-defined]
        assert colls == [b.record("c")["chunks_collection"]]
    # an ingest after the re-embedding writes the new collection, with the new model
    store.ingest_paths("c", [corpus])
    assert store.chunk_count("c") == before.chunks


REEMBED_KILL_SCRIPT = """
import sys, time
from pathlib import Path
from ingest.embedding import Embedder
from ingest.knowledge_base import KnowledgeBase
from tests.ingest.test_store_contract import open_backend
kind, where = sys.argv[1], Path(sys.argv[2])
kb = KnowledgeBase(None, Embedder.load(device="cpu"), backend=open_backend(kind, where), embed_group=2)
def progress(done, total):
    print(f"progress {done}", flush=True)
    time.sleep(0.3)
kb.reembed("c", progress=progress)
print("finished", flush=True)
"""


def test_kill_9_mid_reembed_keeps_the_old_vectors(
    tmp_path: Path, embedder: Embedder, minilm_embedder: Embedder, backend_kind: str
) -> None:
    """Readers keep the collection as it was (old model, old vectors) when `ragserve reembed` dies
    half-way; the next writer clears what it left and a second re-embedding completes."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(12):
        (src / f"doc{i:02d}.md").write_text(f"# Doc {i}\n\nDocument {i} about disk alerts on node {i}.\n")
    old = KnowledgeBase(None, minilm_embedder, backend=open_backend(backend_kind, tmp_path))
    old.ingest_paths("c", [src])
    want = [h.chunk_id for h in old.search("c", "disk alerts on node 7", top_k=3)]
    old.backend.close()
    kill_half_way("reembed", REEMBED_KILL_SCRIPT, backend_kind, str(tmp_path))
    kb = KnowledgeBase(None, embedder, backend=open_backend(backend_kind, tmp_path))
    try:
        info = kb.info("c")
        assert (info.embedding_model, info.dimension) == (minilm_embedder.model_id, minilm_embedder.dimension)
        # served with the model that built it, the same answers as before the attempt
        assert [h.chunk_id for h in kb.search("c", "disk alerts on node 7", top_k=3)] == want
        assert kb.reembed("c").chunks == kb.chunk_count("c") == 12
        assert kb.info("c").embedding_model == embedder.model_id
        assert kb.search("c", "disk alerts on node 7", top_k=1)[0].document_id == "doc07.md"
        if backend_kind == "milvus":  # the dead writer's unfinished collection was dropped
            b = kb.backend
            colls = [c for c in b.client.list_collections() if c.startswith("ragserve_c_")]  # type: ignore[attr-defined]
            assert colls == [b.record("c")["chunks_collection"]]
    finally:
        kb.backend.close()


def test_readers_keep_answering_during_a_reembed(
    store: KnowledgeBase, corpus: Path, minilm_embedder: Embedder
) -> None:
    KnowledgeBase(None, minilm_embedder, backend=store.backend).ingest_paths("c", [corpus])
    errors: list[BaseException] = []
    answers: list[str] = []
    stop = threading.Event()

    def read_loop() -> None:
        while not stop.is_set():
            try:
                hits = store.search("c", "CoreDNS upstream resolver", top_k=1)
                answers.append(hits[0].document_id if hits else "")
            except BaseException as exc:
                errors.append(exc)

    reader = threading.Thread(target=read_loop)
    reader.start()
    try:
        store.reembed("c")
        time.sleep(0.3)  # a few reads on the new vectors
    finally:
        stop.set()
        reader.join()
    assert not errors, errors[:3]
    assert answers and set(answers) == {"network.txt"}


def test_migrate_milvus_to_faiss_without_reembedding(
    tmp_path: Path, embedder: Embedder, minilm_embedder: Embedder, corpus: Path
) -> None:
    """The way back: a Milvus collection (re-embedded there, so its chunks live in a second chunks
    collection) copied into FAISS gives the same vectors, BM25 tokens and answers as a FAISS ingest."""
    from ingest.store.migrate import migrate_collection

    milvus = KnowledgeBase(None, embedder, backend=open_backend("milvus", tmp_path / "m"))
    direct = KnowledgeBase(None, embedder, backend=open_backend("faiss", tmp_path / "direct"))
    target = open_backend("faiss", tmp_path / "f")
    try:
        KnowledgeBase(None, minilm_embedder, backend=milvus.backend).ingest_paths("c", [corpus])
        milvus.reembed("c")
        direct.ingest_paths("c", [corpus])
        done: list[int] = []
        s = migrate_collection(milvus.backend, target, "c", progress=lambda _n, i, _t: done.append(i))
        assert s.verified and (s.copied, s.target_documents, s.target_chunks) == (
            5,
            5,
            milvus.chunk_count("c"),
        )
        assert done == [1, 2, 3, 4, 5]
        faiss = KnowledgeBase(None, embedder, backend=target)
        info = faiss.info("c")
        assert (info.embedding_model, info.dimension) == (embedder.model_id, embedder.dimension)
        # BM25 tokens re-made from each chunk's indexed text: exactly a FAISS ingest's
        got, want = target.snapshot("c").docs, direct.backend.snapshot("c").docs  # type: ignore[attr-defined]
        assert sorted(got.token_lists()) == sorted(want.token_lists())
        for mode in ("hybrid", "dense", "bm25"):
            for q in ("crashed container logs", "磁盘使用率太高怎么办", "expired TLS certificates"):
                expected = [h.chunk_id for h in milvus.search("c", q, top_k=2, mode=mode)]
                assert [h.chunk_id for h in faiss.search("c", q, top_k=2, mode=mode)] == expected, (mode, q)
                assert [h.chunk_id for h in direct.search("c", q, top_k=2, mode=mode)] == expected, (mode, q)
        again = migrate_collection(milvus.backend, target, "c")
        assert (again.copied, again.unchanged, again.verified) == (0, 5, True)
        (corpus / "zh.md").unlink()
        milvus.ingest_paths("c", [corpus], prune=True)
        third = migrate_collection(milvus.backend, target, "c")
        assert (third.copied, third.deleted, third.verified) == (0, 1, True)
        assert faiss.ingest_paths("c", [corpus]).unchanged == 4  # the copy is an ingest's equal
    finally:
        milvus.backend.close()


def test_cli_store_migrate_from_milvus(tmp_path: Path, corpus: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAGSERVE_STORE__MILVUS__URI": str(tmp_path / "m.db")}
    data = ["--data-dir", str(tmp_path / "data")]
    milvus_env = {**env, "RAGSERVE_STORE__BACKEND": "milvus"}
    ingest = subprocess.run(
        [sys.executable, "-m", "service.cli", *data, "ingest", str(corpus / "runbooks"), "-c", "rb"],
        env=milvus_env, cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert ingest.returncode == 0, ingest.stderr
    out = subprocess.run(
        [sys.executable, "-m", "service.cli", *data, "store", "migrate", "--from", "milvus", "--to", "faiss"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "rb: 2 copied, 0 unchanged, 0 deleted; 2/2 documents" in out.stdout and "verified" in out.stdout
    listed = subprocess.run(
        [sys.executable, "-m", "service.cli", *data, "collections", "--json"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert listed.returncode == 0 and [c["name"] for c in json.loads(listed.stdout)] == ["rb"]
    same = subprocess.run(
        [sys.executable, "-m", "service.cli", *data, "store", "migrate", "--from", "faiss", "--to", "faiss"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert same.returncode == 1 and same.stderr.strip().endswith("--from and --to name the same store")


def test_bm25_scores_are_positive_and_ordered(store: KnowledgeBase, corpus: Path) -> None:
    """Milvus Lite reports BM25 as a negated distance, a server as the score: either way the store
    answers with scores >= 0, best first, like FAISS's BM25."""
    store.ingest_paths("c", [corpus])
    for q in ("pod logs container crashed", "etcd quota database", "磁盘 扩容 告警"):
        scores = [h.score for h in store.search("c", q, top_k=10, mode="bm25")]
        assert scores and all(s > 0 for s in scores) and scores == sorted(scores, reverse=True), (q, scores)


def test_milvus_terms_are_what_a_servers_analyzer_filters_leave() -> None:
    """The server's `lowercase` and `removepunct` filters (Milvus Lite ignores them) change nothing in
    the terms ragserve writes and queries: lowercase, and no term of punctuation only."""
    from ingest.store.lexical import tokenize
    from ingest.store.milvus_schema import bm25_text, query_terms

    text = "Check mon_status _ __ on k8s-node: CEPH 磁盘告警（严重）ＡＢＣ 3.14 …"
    for terms in (bm25_text(tokenize(text)).split(" "), query_terms(text)):
        assert terms and all(t == t.lower() and any(ch.isalnum() for ch in t) for t in terms), terms


def test_a_query_encoded_for_another_model_is_refused_not_searched(
    store: KnowledgeBase, corpus: Path
) -> None:
    """The race a `reembed` opens: a query encoded for the record a reader saw, searched after the
    switch. The store refuses it (StaleEncoder) and KnowledgeBase.search encodes it again."""
    from ingest.store.backend import QueryEncoder, StaleEncoder

    store.ingest_paths("c", [corpus])
    emb = store.embedder
    stale = QueryEncoder(emb.encode_query, emb.multilingual, "all-MiniLM-L6-v2")
    with pytest.raises(StaleEncoder, match="now embedded with"):
        store.backend.search(
            "c", "CoreDNS", encoder=stale, top_k=1, mode="hybrid", filters=None, timings=None
        )
    fresh = QueryEncoder(emb.encode_query, emb.multilingual, emb.model_id)
    hits = store.backend.search(
        "c", "CoreDNS", encoder=fresh, top_k=1, mode="hybrid", filters=None, timings=None
    )
    assert hits[0].document_id == "network.txt"


def kill_half_way(what: str, script: str, *args: str) -> None:
    """Run `script` in a child process and kill -9 it once it reports "progress 6" (half of 12)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=REPO,
    )  # fmt: skip
    assert child.stdout is not None
    try:
        for line in child.stdout:
            if line.startswith("progress 6"):
                break
        else:
            pytest.fail(f"the {what} child never got half-way")
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    time.sleep(0.2)
