"""Markdown loader: one section per heading, with the heading path as metadata."""

from __future__ import annotations

import re
from pathlib import Path

from ingest.loaders.base import LoadedDocument, Section, decode_text, sha256_bytes

# No lazy group before an optional trailing run ("(.+?)[ \t#]*$" is quadratic: a 64 KB line of " #"
# took 20 s); the closing hashes are stripped in Python instead.
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+)$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def split_sections(text: str) -> tuple[list[Section], str | None]:
    """Split at ATX headings outside code fences; returns sections and the first H1 (title)."""
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    title: str | None = None
    fence: str | None = None
    body_start = 0
    heading: str | None = None
    pos = 0

    def close(end: int) -> None:
        body = text[body_start:end]
        stripped = body.strip()
        if stripped:
            sections.append(Section(stripped, heading=heading, offset=body_start + body.index(stripped)))

    for line in text.splitlines(keepends=True):
        m_fence = _FENCE.match(line)
        if m_fence:
            mark = m_fence.group(1)
            if fence is None:
                fence = mark[0] * 3
            elif mark.startswith(fence):
                fence = None
        elif fence is None and (m := _HEADING.match(line.rstrip("\r\n"))):
            close(pos)
            raw = m.group(2)
            level, name = len(m.group(1)), (raw.rstrip(" \t#") or raw[0]).strip()
            stack = [(lv, n) for lv, n in stack if lv < level] + [(level, name)]
            heading = " > ".join(n for _, n in stack)
            if level == 1 and title is None:
                title = name
            body_start = pos + len(line)
        pos += len(line)
    close(len(text))
    return sections, title


def load_markdown(path: Path, document_id: str, data: bytes) -> list[LoadedDocument]:
    """Sections by heading; title from the first level-1 heading."""
    text = decode_text(data, document_id)
    sections, title = split_sections(text)
    meta: dict[str, object] = {"format": "markdown"}
    if title:
        meta["title"] = title
    return [LoadedDocument(document_id, document_id, sha256_bytes(data), sections, meta, markdown=True)]
