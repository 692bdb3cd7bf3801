"""Plain data records shared by the ingestion library and its callers."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class SearchHit:
    """One retrieved chunk; `score` is higher-is-better (see `ingest.search`)."""

    chunk_id: str
    document_id: str
    source: str
    page: int | None
    score: float
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass
class DocumentInfo:
    """One ingested document of a collection."""

    document_id: str
    source: str
    chunks: int
    sha256: str
    ingested_at: str  # ISO-8601 UTC

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass
class CollectionInfo:
    """Summary of one collection's current version."""

    name: str
    documents: int
    chunks: int
    embedding_model: str
    dimension: int
    version: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass
class FileFailure:
    """A file (or record) that could not be ingested, with a one-line reason."""

    source: str
    reason: str


@dataclass
class IngestSummary:
    """Outcome of one ingest call."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    failed: int = 0
    chunks: int = 0  # chunks embedded and written by this call
    seconds: float = 0.0
    failures: list[FileFailure] = field(default_factory=list)

    def to_dict(self, *, with_failures: bool = True) -> dict[str, Any]:
        """JSON-ready form; the CLI's `--json` line leaves out `failures`."""
        d = asdict(self)
        d["seconds"] = round(self.seconds, 3)
        if not with_failures:
            d.pop("failures")
        return d


@dataclass
class ReembedSummary:
    """Outcome of re-embedding a collection with another model."""

    collection: str
    previous_model: str
    model: str
    chunks: int = 0  # chunks re-embedded (0: the collection was already on the model)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        d = asdict(self)
        d["seconds"] = round(self.seconds, 3)
        return d
