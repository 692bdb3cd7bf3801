"""The store interface: what `KnowledgeBase` needs from wherever collections live.

Two implementations: `ingest.store.faiss_backend.FaissBackend` (versioned FAISS + SQLite + BM25
directories on a local or shared volume, the embedded default) and
`ingest.store.milvus_backend.MilvusBackend` (a Milvus server or cluster, or Milvus Lite on a local
file). `KnowledgeBase` keeps everything that does not depend on the store (walking, loading,
chunking, embedding, the sha256 skip, prune scope, the embedder check), so both backends
ingest, skip, replace and prune the same way; only storage and search differ.

A collection's *record* is a plain dict every backend keeps and returns as it stores it:
`embedding_model`, `dimension`, `created_at` (fixed at creation), `version`, `documents`,
`chunks`, `updated_at` (after each write), plus backend-specific fields.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ingest.chunking import Chunk
from ingest.errors import IngestError
from ingest.loaders.base import LoadedDocument
from ingest.types import CollectionInfo, DocumentInfo, SearchHit


@dataclass(frozen=True)
class QueryEncoder:
    """What dense search needs from the collection's embedder.

    `model`: the embedding model it encodes with ("" = unchecked). A backend that finds its
    collection recorded with another model (a `reembed` switched between the caller's look at the
    record and the search) raises `StaleEncoder`; the caller encodes again for the new record.
    """

    encode: Callable[[str], np.ndarray]
    multilingual: bool
    model: str = ""

    def check(self, name: str, record: dict[str, Any]) -> None:
        """StaleEncoder when the collection's record names another embedding model."""
        if self.model and record.get("embedding_model") != self.model:
            raise StaleEncoder(
                f"collection {name!r} is now embedded with {record.get('embedding_model')}, not {self.model}"
            )


class StaleEncoder(IngestError):
    """The collection was re-embedded while a search was on its way: encode again (see QueryEncoder)."""


class CollectionWriter(abc.ABC):
    """One write to one collection, made while the backend's writer lock is held.

    Nothing a writer does is visible to readers before `commit`, or, where a store cannot hide
    writes (Milvus), each document switches from its old chunks to its new ones in one step (see
    the backend). After `abort` (or an error, or a killed process) readers keep what they had.
    """

    record: dict[str, Any] | None  # the collection's record before this write; None: a new collection

    @abc.abstractmethod
    def fingerprints(self) -> dict[str, tuple[str, str, str | None]]:
        """document_id -> (sha256, origin file, source root) of the documents stored now."""

    @abc.abstractmethod
    def put_document(
        self,
        doc: LoadedDocument,
        origin: str,
        chunks: list[Chunk],
        embeddings: np.ndarray,
        *,
        root: str | None,
        tokens: list[list[str]] | None = None,
    ) -> None:
        """Insert or replace a document with its chunks; `root`: the source root it came from.

        `tokens`: each chunk's BM25 surface tokens when already known (a copy between stores),
        else `ingest.store.lexical.tokenize(chunk.index_text)`.
        """

    @abc.abstractmethod
    def delete_document(self, document_id: str) -> bool:
        """Remove a document and its chunks; False if it was not there."""

    @abc.abstractmethod
    def set_roots(self, roots: dict[str, str]) -> None:
        """Record another source root for unchanged documents (document_id -> root)."""

    @abc.abstractmethod
    def reembed(
        self,
        encode: Callable[[list[dict[str, Any]]], np.ndarray],
        *,
        model: str,
        dimension: int,
        group: int,
        progress: Callable[[int, int], None],
    ) -> None:
        """Replace every chunk's vector with `encode(rows)` (rows: {"id", "text", "metadata"}, `group`
        at a time) and record the new model; readers keep the old vectors until `commit`."""

    @abc.abstractmethod
    def commit(self) -> dict[str, Any]:
        """Make the write visible (a new collection is created even when empty); the new record."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Discard what was not committed; never raises."""


class StoreBackend(abc.ABC):
    """Where collections live; all methods are safe to call from several threads."""

    name: str  # "faiss" | "milvus"

    @abc.abstractmethod
    def exists(self, name: str) -> bool:
        """Whether a collection with this (valid) name exists."""

    @abc.abstractmethod
    def records(self) -> dict[str, dict[str, Any]]:
        """Every collection's record, by name."""

    @abc.abstractmethod
    def record(self, name: str) -> dict[str, Any]:
        """One collection's record; CollectionNotFound if it does not exist."""

    @abc.abstractmethod
    def list_documents(self, name: str) -> list[DocumentInfo]:
        """Documents of a collection, by id."""

    @abc.abstractmethod
    def chunk_count(self, name: str) -> int:
        """Number of chunks readers see."""

    @abc.abstractmethod
    def search(
        self,
        name: str,
        query: str,
        *,
        encoder: QueryEncoder | None,
        top_k: int,
        mode: str,
        filters: dict[str, Any] | None,
        timings: dict[str, float] | None,
    ) -> list[SearchHit]:
        """Top chunks for a query (see `ingest.search` for modes and scores); `encoder` None: bm25 only."""

    @abc.abstractmethod
    def writing(
        self, name: str, *, create: bool, base: Callable[[], dict[str, Any]]
    ) -> contextlib.AbstractContextManager[CollectionWriter]:
        """Hold the collection's writer lock and yield a writer (StoreBusy when another one holds it).

        `create`: a missing collection is created (recording `base()`: the embedder's model and
        dimension) instead of CollectionNotFound. A storage failure becomes StorageError. The
        caller calls `commit`; leaving the block without it (or with an error) aborts.
        """

    @abc.abstractmethod
    def delete_collection(self, name: str) -> None:
        """Delete a collection and everything in it; CollectionNotFound if it does not exist."""

    def close(self) -> None:  # noqa: B027 - optional hook: most backends hold nothing to release
        """Release connections (the FAISS backend holds none)."""


def info_from_record(name: str, record: dict[str, Any]) -> CollectionInfo:
    """The API's summary of a collection from its record."""
    return CollectionInfo(
        name=name,
        documents=int(record.get("documents", 0)),
        chunks=int(record.get("chunks", 0)),
        embedding_model=str(record.get("embedding_model")),
        dimension=int(record.get("dimension", 0)),
        version=int(record.get("version", 0)),
    )


@contextlib.contextmanager
def committed_or_aborted(writer: CollectionWriter) -> Iterator[CollectionWriter]:
    """Abort the writer when the block raises (the block commits it itself)."""
    try:
        yield writer
    except BaseException:
        writer.abort()
        raise
