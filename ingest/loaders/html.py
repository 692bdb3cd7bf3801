"""HTML loader: visible text only."""

from __future__ import annotations

import re
from pathlib import Path

from bs4 import BeautifulSoup

from ingest.loaders.base import LoadedDocument, Section, decode_text, sha256_bytes

_INVISIBLE = ["script", "style", "noscript", "template", "head", "svg", "iframe", "object"]
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)


def html_to_text(markup: str) -> tuple[str, str | None]:
    """Visible text (blank lines collapsed) and the <title>."""
    soup = BeautifulSoup(markup, "html.parser")
    title = soup.title.get_text(strip=True) if soup.title else None
    for tag in soup(_INVISIBLE):
        tag.decompose()
    for tag in soup.find_all(True):
        if getattr(tag, "decomposed", False) or tag.attrs is None:
            continue  # inside an element removed earlier in this loop
        if (
            tag.has_attr("hidden")
            or tag.get("aria-hidden") == "true"
            or _HIDDEN_STYLE.search(str(tag.get("style", "")))
        ):
            tag.decompose()
    text = soup.get_text("\n")
    lines = [re.sub(r"[ \t\xa0]+", " ", ln).strip() for ln in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip(), title or None


def load_html(path: Path, document_id: str, data: bytes) -> list[LoadedDocument]:
    """One section of visible text."""
    text, title = html_to_text(decode_text(data, document_id))
    meta: dict[str, object] = {"format": "html"}
    if title:
        meta["title"] = title
    return [LoadedDocument(document_id, document_id, sha256_bytes(data), [Section(text)], meta)]
