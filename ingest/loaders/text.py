"""Plain text loader."""

from __future__ import annotations

from pathlib import Path

from ingest.loaders.base import LoadedDocument, Section, decode_text, sha256_bytes


def load_text(path: Path, document_id: str, data: bytes) -> list[LoadedDocument]:
    """The whole file is one section."""
    text = decode_text(data, document_id)
    return [LoadedDocument(document_id, document_id, sha256_bytes(data), [Section(text)], {"format": "text"})]
