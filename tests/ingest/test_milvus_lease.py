"""The writer lease a Milvus *server* relies on, run on Milvus Lite with the lease switched on.

Milvus Lite holds its file for one process, so it needs no lease and skips it; here two backends of
one process share a file and act as two servers' writers (`lite = False`), so the lease's code path
runs against a real Milvus engine. Milvus has no compare-and-swap: the lease is read, written,
settled and read back, checked at every renewal and before the commit (ingest.store.milvus_writer).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ingest.embedding import Embedder
from ingest.errors import StoreBusy
from ingest.knowledge_base import KnowledgeBase
from ingest.store import milvus_lease, milvus_writer
from ingest.store.milvus_backend import MilvusBackend
from ingest.store.milvus_schema import LEASE_ID, collection_names


@pytest.fixture
def backends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[MilvusBackend, MilvusBackend]]:
    monkeypatch.setattr(milvus_lease, "LEASE_SETTLE_S", 0.05)
    a = MilvusBackend(str(tmp_path / "m.db"))
    b = MilvusBackend(str(tmp_path / "m.db"))
    a.lite = b.lite = False  # the server's code path: writers take the lease row
    yield a, b
    a.close()


def _docs(root: Path, version: str, n: int = 4) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (root / f"d{i}.md").write_text(f"# Doc {i}\n\n{version} of document {i} about disk alerts.\n")
    return root


def _steal(backend: MilvusBackend, name: str, holder: str = "another-writer") -> None:
    """What a second writer's lease write does (the race a compare-and-swap would have prevented)."""
    import time

    _chunks, docs = collection_names(name)
    row = {"document_id": LEASE_ID, "source": "", "origin": "", "sha256": "", "chunks": 0,
           "ingested_at": "", "root": None, "gen": "", "metadata": {"holder": holder, "renewed": time.time()},
           "unused": [0.0, 0.0]}  # fmt: skip
    backend.client.upsert(docs, [row])


def test_a_second_writer_is_refused_while_the_lease_is_held(
    backends: tuple[MilvusBackend, MilvusBackend], embedder: Embedder, tmp_path: Path
) -> None:
    a, b = backends
    kb_a = KnowledgeBase(None, embedder, backend=a)
    kb_a.ingest_paths("c", [_docs(tmp_path / "v1", "version one")])
    other = KnowledgeBase(None, embedder, backend=b)
    with (
        a.writing("c", create=False, base=dict),
        pytest.raises(StoreBusy, match="being written by another process"),
    ):
        other.ingest_paths("c", [_docs(tmp_path / "v2", "version two")])
    # released: the other process may write now
    assert other.ingest_paths("c", [tmp_path / "v2"]).updated == 4


def test_two_writers_taking_the_lease_at_once_one_backs_off(
    backends: tuple[MilvusBackend, MilvusBackend],
    embedder: Embedder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, _b = backends
    kb = KnowledgeBase(None, embedder, backend=a)
    kb.ingest_paths("c", [_docs(tmp_path / "v1", "version one")])
    real_sleep = milvus_lease.time.sleep

    def settle(seconds: float) -> None:  # the other writer read "free" too, and writes after us
        _steal(a, "c")
        real_sleep(seconds)

    monkeypatch.setattr(milvus_lease.time, "sleep", settle)
    with pytest.raises(StoreBusy, match="at the same moment"):
        kb.ingest_paths("c", [_docs(tmp_path / "v2", "version two")])
    monkeypatch.setattr(milvus_lease.time, "sleep", real_sleep)
    # nothing was written: every document is still version one, and the lease is the other writer's
    hits = kb.search("c", "document about disk alerts", top_k=10, mode="bm25")
    assert len(hits) == 4 and all("version one" in h.text for h in hits)
    _chunks, docs = collection_names("c")
    assert a.client.get(docs, ids=[LEASE_ID], output_fields=["metadata"])[0]["metadata"]["holder"] == (
        "another-writer"
    )


def test_a_writer_that_lost_its_lease_stops_and_leaves_the_record(
    backends: tuple[MilvusBackend, MilvusBackend],
    embedder: Embedder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, _b = backends
    monkeypatch.setattr(milvus_writer, "LEASE_RENEW_S", 0.0)  # check the lease at every document
    kb = KnowledgeBase(None, embedder, backend=a, embed_group=1)
    kb.ingest_paths("c", [_docs(tmp_path / "v1", "version one")])
    record_before = a.record("c")
    written: list[Any] = []

    def progress(doc_id: str, done: int, total: int) -> None:
        written.append(doc_id)
        if done == 2:
            _steal(a, "c")  # another writer took over (its lease write won a race)

    with pytest.raises(StoreBusy, match="lost its lease"):
        kb.ingest_paths("c", [_docs(tmp_path / "v2", "version two")], progress=progress)
    assert len(written) >= 2
    # The record is the new holder's: the stopped writer neither committed nor rewrote it.
    record = a.record("c")
    assert record["version"] == record_before["version"]
    # Readers still see every document whole (some already version two, the rest version one).
    by_doc: dict[str, set[str]] = {}
    for h in kb.search("c", "document about disk alerts", top_k=20, mode="bm25"):
        by_doc.setdefault(h.document_id, set()).add(h.text.split()[4])
    assert len(by_doc) == 4 and all(len(v) == 1 for v in by_doc.values()), by_doc
