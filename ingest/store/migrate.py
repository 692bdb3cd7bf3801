"""Copy collections between store backends without re-embedding (`ragserve store migrate`).

FAISS -> Milvus reads each collection's published version (documents, chunks, stored float32
embeddings and BM25 surface tokens from its docstore); Milvus -> FAISS reads the documents
collection and, a batch of documents at a time, each document's visible chunks with their vectors
(Milvus keeps BM25 terms already stemmed, so the FAISS writer tokenizes the chunk's indexed text
again, as an ingest does). Either way the copy goes through the target's `CollectionWriter`, so the
target gets exactly what an ingest would have written, and the same incremental rules: a document
already in the target with the same sha256 is skipped, a changed one replaced, and one the source
no longer has deleted. The copy ends with a verification: document and chunk counts must match.
The source is read as it is while the copy runs: copy from a store no writer is writing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ingest.chunking import Chunk, index_text
from ingest.errors import IngestError
from ingest.loaders.base import LoadedDocument
from ingest.store.backend import StoreBackend
from ingest.store.faiss_backend import FaissBackend, carry
from ingest.types import DocumentInfo

# Chunks read from Milvus per query (whole documents: a batch may run over).
EXPORT_BATCH = 2000

# (collection, documents done, documents in all)
MigrateProgress = Callable[[str, int, int], None]


@dataclass
class MigrateSummary:
    """Outcome of copying one collection."""

    collection: str
    copied: int = 0  # documents written (new or changed)
    unchanged: int = 0
    deleted: int = 0
    chunks: int = 0  # chunks written
    source_documents: int = 0
    source_chunks: int = 0
    target_documents: int = 0
    target_chunks: int = 0
    verified: bool = False
    seconds: float = 0.0
    mismatches: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        d = asdict(self)
        d["seconds"] = round(self.seconds, 3)
        return d


class _Source:
    """What a copy reads from its source store: the record, documents, and chunks by document."""

    def __init__(self, backend: StoreBackend, name: str) -> None:
        from ingest.store.milvus_backend import MilvusBackend

        self.faiss = backend if isinstance(backend, FaissBackend) else None
        self.milvus = backend if isinstance(backend, MilvusBackend) else None
        if self.faiss is not None:
            self.snap = self.faiss.snapshot(name)
            self.record: dict[str, Any] = dict(self.snap.manifest)
            self.documents = self.snap.docs.document_rows()
            self.chunks = self.snap.chunks
        elif self.milvus is not None:
            self.record = self.milvus.record(name)
            self.documents = self.milvus.export_documents(name)
            self.chunks = sum(int(d["chunks"]) for d in self.documents)
        else:
            raise IngestError(f"cannot copy from a {backend.name} store")
        self.name = name
        self._batch: dict[str, list[dict[str, Any]]] = {}

    def chunks_of(self, document_id: str) -> list[dict[str, Any]]:
        """A document's chunks in order: text, offsets, metadata, `embedding`, `tokens` (or None)."""
        if self.faiss is not None:
            return self.snap.docs.chunk_export(document_id)
        assert self.milvus is not None
        if document_id not in self._batch:  # this document and the next ones, EXPORT_BATCH chunks
            at = next(i for i, d in enumerate(self.documents) if d["document_id"] == document_id)
            batch: dict[str, tuple[str, int]] = {}
            for d in self.documents[at:]:
                if batch and sum(n for _g, n in batch.values()) + int(d["chunks"]) > EXPORT_BATCH:
                    break
                batch[d["document_id"]] = (d["gen"], int(d["chunks"]))
            self._batch = self.milvus.export_chunks(self.name, batch)
        return self._batch.pop(document_id)

    def document_infos(self) -> list[DocumentInfo]:
        if self.faiss is not None:
            return self.snap.docs.documents()
        assert self.milvus is not None
        return self.milvus.list_documents(self.name)


def migrate_collection(
    source: StoreBackend, target: StoreBackend, name: str, *, progress: MigrateProgress | None = None
) -> MigrateSummary:
    """Copy one collection from one store (FAISS or Milvus) into another; see the module docstring."""
    t0 = time.perf_counter()
    src = _Source(source, name)
    record = src.record
    docs = src.documents
    summary = MigrateSummary(collection=name, source_documents=len(docs), source_chunks=src.chunks)
    with target.writing(name, create=True, base=lambda: carry(record)) as writer:
        if writer.record is not None and (
            writer.record.get("embedding_model") != record.get("embedding_model")
            or writer.record.get("dimension") != record.get("dimension")
        ):
            raise IngestError(
                f"collection {name!r} exists in the target with embedding model "
                f"{writer.record.get('embedding_model')}, the source's is {record.get('embedding_model')}: "
                "delete it there first"
            )
        known = writer.fingerprints()
        for done, d in enumerate(docs, 1):
            if known.get(d["document_id"], ("",))[0] == d["sha256"]:
                summary.unchanged += 1
                if d["root"] is not None and known[d["document_id"]][2] != d["root"]:
                    writer.set_roots({d["document_id"]: d["root"]})
            else:
                rows = src.chunks_of(d["document_id"])
                doc = LoadedDocument(d["document_id"], d["source"], d["sha256"], [], d["metadata"])
                chunks = [
                    Chunk(
                        chunk_id=c["chunk_id"],
                        document_id=c["document_id"],
                        source=c["source"],
                        page=c["page"],
                        text=c["text"],
                        index_text=index_text(c),  # what was embedded and BM25-indexed
                        start=c["start"],
                        end=c["end"],
                        metadata=c["metadata"],
                    )
                    for c in rows
                ]
                vectors = np.vstack([c["embedding"] for c in rows]) if rows else np.zeros((0, 1), np.float32)
                tokens = None if any(c["tokens"] is None for c in rows) else [c["tokens"] for c in rows]
                writer.put_document(doc, d["origin"], chunks, vectors, root=d["root"], tokens=tokens)
                summary.copied += 1
                summary.chunks += len(rows)
            if progress is not None:
                progress(name, done, len(docs))
        wanted = {d["document_id"] for d in docs}
        for doc_id in sorted(set(known) - wanted):
            writer.delete_document(doc_id)
            summary.deleted += 1
        writer.commit()
    _verify(summary, src.document_infos(), target.list_documents(name), target.chunk_count(name))
    summary.seconds = time.perf_counter() - t0
    return summary


def _verify(
    summary: MigrateSummary, source: list[DocumentInfo], target: list[DocumentInfo], chunks: int
) -> None:
    """Counts and per-document (sha256, chunks) must match."""
    summary.target_documents, summary.target_chunks = len(target), chunks
    want = {d.document_id: (d.sha256, d.chunks) for d in source}
    have = {d.document_id: (d.sha256, d.chunks) for d in target}
    summary.mismatches = sorted(k for k in want.keys() | have.keys() if want.get(k) != have.get(k))[:20]
    summary.verified = (
        not summary.mismatches
        and summary.target_documents == summary.source_documents
        and summary.target_chunks == summary.source_chunks
    )
