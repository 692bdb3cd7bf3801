"""Copy collections between store backends without re-embedding (`ragserve store migrate`).

Reads each FAISS collection's published version (documents, chunks, stored float32 embeddings and
BM25 surface tokens from its docstore) and writes it through the target's `CollectionWriter`, so the
target gets exactly what an ingest would have written, and the same incremental rules: a document
already in the target with the same sha256 is skipped, a changed one replaced, and one the source
no longer has deleted. The copy ends with a verification: document and chunk counts must match.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ingest.chunking import Chunk
from ingest.errors import IngestError
from ingest.loaders.base import LoadedDocument
from ingest.store.backend import StoreBackend
from ingest.store.faiss_backend import FaissBackend, carry
from ingest.types import DocumentInfo

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


def migrate_collection(
    source: FaissBackend, target: StoreBackend, name: str, *, progress: MigrateProgress | None = None
) -> MigrateSummary:
    """Copy one collection from a FAISS store into another store; see the module docstring."""
    t0 = time.perf_counter()
    snap = source.snapshot(name)
    record = snap.manifest
    docs = snap.docs.document_rows()
    summary = MigrateSummary(collection=name, source_documents=len(docs), source_chunks=snap.chunks)
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
                rows = snap.docs.chunk_export(d["document_id"])
                doc = LoadedDocument(d["document_id"], d["source"], d["sha256"], [], d["metadata"])
                chunks = [
                    Chunk(
                        chunk_id=c["chunk_id"],
                        document_id=c["document_id"],
                        source=c["source"],
                        page=c["page"],
                        text=c["text"],
                        index_text=c["text"],  # unused: tokens are given
                        start=c["start"],
                        end=c["end"],
                        metadata=c["metadata"],
                    )
                    for c in rows
                ]
                vectors = np.vstack([c["embedding"] for c in rows]) if rows else np.zeros((0, 1), np.float32)
                writer.put_document(
                    doc, d["origin"], chunks, vectors, root=d["root"], tokens=[c["tokens"] for c in rows]
                )
                summary.copied += 1
                summary.chunks += len(rows)
            if progress is not None:
                progress(name, done, len(docs))
        wanted = {d["document_id"] for d in docs}
        for doc_id in sorted(set(known) - wanted):
            writer.delete_document(doc_id)
            summary.deleted += 1
        writer.commit()
    _verify(summary, snap.docs.documents(), target.list_documents(name), target.chunk_count(name))
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
