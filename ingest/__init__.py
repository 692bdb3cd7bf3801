"""Ingestion and index store: loaders, chunking, embeddings, versioned FAISS + BM25 collections.

Heavy parts (torch, FAISS) load on first use of `KnowledgeBase` or `Embedder`, not on import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ingest.errors import (
    CollectionExists,
    CollectionNotFound,
    DocumentNotFound,
    EmbeddingMismatch,
    IngestError,
    InvalidName,
    LoaderError,
    StoreBusy,
)
from ingest.types import CollectionInfo, DocumentInfo, FileFailure, IngestSummary, SearchHit

if TYPE_CHECKING:
    from ingest.embedding import Embedder
    from ingest.knowledge_base import KnowledgeBase

__all__ = [
    "CollectionExists",
    "CollectionInfo",
    "CollectionNotFound",
    "DocumentInfo",
    "DocumentNotFound",
    "Embedder",
    "EmbeddingMismatch",
    "FileFailure",
    "IngestError",
    "IngestSummary",
    "InvalidName",
    "KnowledgeBase",
    "LoaderError",
    "SearchHit",
    "StoreBusy",
]


def __getattr__(name: str) -> Any:
    """Import `Embedder` and `KnowledgeBase` lazily."""
    if name == "Embedder":
        from ingest.embedding import Embedder

        return Embedder
    if name == "KnowledgeBase":
        from ingest.knowledge_base import KnowledgeBase

        return KnowledgeBase
    raise AttributeError(f"module 'ingest' has no attribute {name!r}")
