"""Errors raised by the ingestion library; each message is meant for the user."""

from __future__ import annotations


class IngestError(Exception):
    """Base class: `str(exc)` is one line a user can act on."""


class CollectionNotFound(IngestError):
    """The named collection does not exist."""


class CollectionExists(IngestError):
    """A collection with that name already exists."""


class InvalidName(IngestError):
    """A collection name or document id is not acceptable."""


class EmbeddingMismatch(IngestError):
    """The collection was built with another embedding model or dimension."""


class DocumentNotFound(IngestError):
    """The named document is not in the collection."""


class StoreBusy(IngestError):
    """Another writer holds the collection's lock."""


class InvalidFilter(IngestError):
    """A search filter is not acceptable (key outside the documented pattern, too many values)."""


class QueryTimeout(IngestError):
    """A docstore query ran past its time limit and was interrupted."""


class SourceMissing(IngestError):
    """A pruning ingest's source path is missing or holds no file: nothing is deleted."""


class StorageError(IngestError):
    """Writing the store failed (disk full, read-only, I/O error); nothing published was changed."""


class LoaderError(IngestError):
    """A file could not be read; the message says why (one line)."""


def one_line(exc: BaseException) -> str:
    """An exception as one line for a user."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
