"""PDF loader: pypdf in a child process with a timeout and a memory cap; one section per page."""

from __future__ import annotations

from pathlib import Path

from ingest.errors import LoaderError
from ingest.loaders.base import Limits, LoadedDocument, Section, run_isolated, sha256_bytes

_WORKER = Path(__file__).with_name("_pdf_worker.py")


def extract_pdf(path: Path, limits: Limits, source: str) -> dict[str, object]:
    """Run the isolated extractor; a hang, crash or error becomes a LoaderError."""
    args = [str(path), str(limits.max_pages), str(limits.max_memory_bytes), str(limits.max_document_chars)]
    return run_isolated(str(_WORKER), args, limits, source, "PDF")


def load_pdf(path: Path, document_id: str, data: bytes, limits: Limits) -> list[LoadedDocument]:
    """Text per page (1-based page numbers); image-only PDFs are an error."""
    if not data.lstrip()[:5].startswith(b"%PDF-"):
        raise LoaderError(f"{document_id}: not a PDF file (no %PDF- header)")
    out = extract_pdf(path, limits, document_id)
    pages = out.get("pages")
    assert isinstance(pages, list)
    sections = [Section(str(t), page=i) for i, t in enumerate(pages, 1) if str(t).strip()]
    if not sections:
        raise LoaderError(f"{document_id}: no extractable text (scanned or image-only PDF? run OCR first)")
    meta: dict[str, object] = {"format": "pdf", "pages": len(pages)}
    for key in ("title", "author"):
        if out.get(key):
            meta[key] = out[key]
    return [LoadedDocument(document_id, document_id, sha256_bytes(data), sections, meta)]
