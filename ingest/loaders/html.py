"""HTML loader: visible text only; large or deeply nested markup is parsed in a child process.

Small, shallow pages (the usual case) parse in process: a child costs ~0.2 s of interpreter start.
Markup over `Limits.html_inline_bytes`, or nested deeper than `Limits.html_inline_depth` by a
linear pre-scan, goes to `_html_worker.py` with the PDF parser's timeout and memory cap; markup
over `max_html_bytes` or nested `max_html_depth` deep is refused before parsing. An HTML bomb
becomes one file's error instead of a stalled or exhausted ingest.
"""

from __future__ import annotations

import re
from pathlib import Path

from ingest.errors import LoaderError
from ingest.loaders._html_worker import html_to_text
from ingest.loaders.base import (
    Limits,
    LoadedDocument,
    Section,
    decode_text,
    run_isolated,
    sha256_bytes,
)

__all__ = ["html_to_text", "load_html", "nesting_depth"]

_WORKER = Path(__file__).with_name("_html_worker.py")
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:-]*)[^>]*?(/?)>")
# Elements that never hold children (the HTML void elements; html.parser and bs4 treat them so).
_VOID = frozenset(
    {
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
        "track", "wbr", "basefont", "bgsound", "frame", "keygen",
    }
)  # fmt: skip


def nesting_depth(markup: str, stop_at: int) -> int:
    """How deep elements nest, as a tree builder would see it (stops counting at `stop_at`).

    End tags close up to the nearest open element of that name and are ignored when none is open,
    as bs4 does, so stray end tags cannot hide depth. Linear in the markup's length.
    """
    stack: list[str] = []
    open_count: dict[str, int] = {}
    deepest = 0
    for m in _TAG.finditer(markup):
        closing, name, self_closing = m.group(1), m.group(2).lower(), m.group(3)
        if closing:
            if open_count.get(name, 0) > 0:
                while stack:
                    top = stack.pop()
                    open_count[top] -= 1
                    if top == name:
                        break
        elif not self_closing and name not in _VOID:
            stack.append(name)
            open_count[name] = open_count.get(name, 0) + 1
            if len(stack) > deepest:
                deepest = len(stack)
                if deepest >= stop_at:
                    break
    return deepest


def _parse_isolated(markup: str, limits: Limits, source: str) -> tuple[str, str | None]:
    """html_to_text in a child process with a timeout and an address-space cap."""
    out = run_isolated(
        str(_WORKER), [str(limits.max_memory_bytes)], limits, source, "HTML",
        stdin=markup.encode("utf-8", "replace"),
    )  # fmt: skip
    title = out.get("title")
    return str(out.get("text") or ""), str(title) if title else None


def load_html(
    path: Path, document_id: str, data: bytes, limits: Limits | None = None
) -> list[LoadedDocument]:
    """One section of visible text."""
    limits = limits or Limits()
    if len(data) > limits.max_html_bytes:
        raise LoaderError(
            f"{document_id}: HTML of {len(data)} bytes is over the limit of {limits.max_html_bytes} bytes"
        )
    markup = decode_text(data, document_id)
    depth = nesting_depth(markup, max(limits.max_html_depth, limits.html_inline_depth))
    if depth >= limits.max_html_depth:
        raise LoaderError(
            f"{document_id}: HTML nested {depth} or more levels deep (limit {limits.max_html_depth})"
        )
    if depth >= limits.html_inline_depth or len(data) > limits.html_inline_bytes:
        text, title = _parse_isolated(markup, limits, document_id)
    else:
        text, title = html_to_text(markup)
    meta: dict[str, object] = {"format": "html"}
    if title:
        meta["title"] = title
    return [LoadedDocument(document_id, document_id, sha256_bytes(data), [Section(text)], meta)]
