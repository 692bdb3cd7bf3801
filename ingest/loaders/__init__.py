"""Loaders, one module per format; `load_file` picks one by file extension."""

from __future__ import annotations

from pathlib import Path

from ingest.errors import LoaderError
from ingest.loaders.base import Limits, LoadedDocument, Section
from ingest.loaders.html import load_html
from ingest.loaders.jsonl import load_jsonl
from ingest.loaders.markdown import load_markdown
from ingest.loaders.pdf import load_pdf
from ingest.loaders.text import load_text

__all__ = ["SUFFIXES", "Limits", "LoadedDocument", "Section", "is_supported", "load_file"]

SUFFIXES = {
    ".pdf": "pdf",
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".text": "text",
    ".rst": "text",
    ".log": "text",
    ".html": "html",
    ".htm": "html",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


def is_supported(path: Path) -> bool:
    """Whether some loader handles this file's extension."""
    return path.suffix.lower() in SUFFIXES


def load_file(path: Path, document_id: str, limits: Limits | None = None) -> list[LoadedDocument]:
    """Load one file as documents; every failure is a one-line LoaderError."""
    limits = limits or Limits()
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise LoaderError(f"{document_id}: unsupported file type {path.suffix or '(none)'!r}")
    try:
        size = path.stat().st_size
        if size > limits.max_file_bytes:
            raise LoaderError(
                f"{document_id}: {size} bytes is over the per-file limit of {limits.max_file_bytes}"
            )
        data = path.read_bytes()
    except OSError as exc:
        raise LoaderError(f"{document_id}: cannot read file ({exc.strerror or exc})") from exc
    if kind in ("markdown", "text") and len(data) > limits.max_text_bytes:
        raise LoaderError(
            f"{document_id}: {len(data)} bytes of text is over the limit of {limits.max_text_bytes}; "
            "split the file"
        )
    docs = _load(kind, path, document_id, data, limits)
    for doc in docs:
        chars = sum(len(s.text) for s in doc.sections)
        if chars > limits.max_document_chars:
            name = (
                document_id
                if doc.document_id == document_id
                else f"{document_id}: record {doc.document_id!r}"
            )
            raise LoaderError(
                f"{name}: {chars} characters of text is over the per-document limit of "
                f"{limits.max_document_chars}; split the file"
            )
    return docs


def _load(kind: str, path: Path, document_id: str, data: bytes, limits: Limits) -> list[LoadedDocument]:
    if kind == "pdf":
        return load_pdf(path, document_id, data, limits)
    if kind == "markdown":
        return load_markdown(path, document_id, data)
    if kind == "html":
        return load_html(path, document_id, data, limits)
    if kind == "jsonl":
        return load_jsonl(path, document_id, data, limits.max_records)
    return load_text(path, document_id, data)
