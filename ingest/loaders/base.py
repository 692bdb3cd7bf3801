"""What loaders return: documents made of sections of text with their location."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

from ingest.errors import LoaderError


@dataclass(frozen=True)
class Limits:
    """Per-file limits applied to untrusted input."""

    max_file_bytes: int = 64 * 1024 * 1024
    max_pages: int = 2000
    parse_timeout_s: float = 120.0
    max_memory_bytes: int = 2 * 1024 * 1024 * 1024  # address-space cap of the PDF/HTML parsing process
    max_records: int = 1_000_000
    # Text and Markdown: chunking costs ~7 s per MB of prose here, ~60 s per MB without sentence breaks.
    max_text_bytes: int = 16 * 1024 * 1024
    max_html_bytes: int = 16 * 1024 * 1024  # markup; its parse tree takes tens of times as much memory
    html_inline_bytes: int = 512 * 1024  # larger HTML is parsed in a child process (timeout, memory cap)
    html_inline_depth: int = 256  # and so is HTML nested this deep (tree building is quadratic in depth)
    max_html_depth: int = 5000  # deeper is refused at once (bs4 would need ~20 s at 5,000 levels here)
    # Text one document may yield, whatever its format: a 2 KB PDF of nested forms can expand to
    # megabytes, all held in memory and chunked under the collection's writer lock. The same as a
    # text file's byte limit, so no format yields more than a plain text file may hold.
    max_document_chars: int = 16 * 1024 * 1024


@dataclass
class Section:
    """A span of a document's text; `offset` is its start within its page (PDF) or file."""

    text: str
    page: int | None = None
    heading: str | None = None
    offset: int = 0


@dataclass
class LoadedDocument:
    """One document ready for chunking."""

    document_id: str
    source: str
    sha256: str
    sections: list[Section]
    metadata: dict[str, Any] = field(default_factory=dict)
    markdown: bool = False


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def decode_text(data: bytes, source: str) -> str:
    """Decode a text file: UTF-8 (with or without BOM), else GB18030, refusing binaries."""
    if b"\x00" in data[:8192]:
        raise LoaderError(f"{source}: looks like a binary file, not text")
    for enc in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def run_isolated(
    worker: str, args: list[str], limits: Limits, source: str, kind: str, stdin: bytes | None = None
) -> dict[str, Any]:
    """Run a parser worker script in a child process (timeout, memory cap set by the worker).

    The worker prints one JSON object: the result, or `{"error": ...}`. A hang, a crash or an error
    becomes a LoaderError naming `source` and the parser `kind` ("PDF", "HTML").
    """
    cmd = [sys.executable, "-I", worker, *args]
    try:
        timeout = limits.parse_timeout_s
        proc = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise LoaderError(f"{source}: {kind} parsing took longer than {limits.parse_timeout_s:g} s") from exc
    try:
        out = json.loads(proc.stdout.decode("utf-8", "replace") or "null")
    except json.JSONDecodeError:
        out = None
    if not isinstance(out, dict):
        raise LoaderError(f"{source}: {kind} parser crashed (exit code {proc.returncode})")
    if "error" in out:
        raise LoaderError(f"{source}: {out['error']}")
    return out
