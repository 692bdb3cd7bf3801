"""Bounded classes for metric labels and counters: "don't know" answers, ingestion failure reasons.

Label values must stay few (docs/observability.md): these map free text to a small fixed set.
"""

from __future__ import annotations

import re

# -- "don't know" detection -----------------------------------------------------------------


def _template_phrases() -> tuple[str, ...]:
    """The abstention sentences the gateway answers with (en and zh), normalized."""
    from service.rag.prompt import ABSTENTIONS

    return tuple(p for p in (_normalize(a) for a in ABSTENTIONS) if p)


def _normalize(text: str) -> str:
    text = text.replace("’", "'").replace("‘", "'").lower()
    return re.sub(r"[\s.。!！,，]+", " ", text).strip()


_DONT_KNOW_OPENINGS = ("i don't know", "i do not know", "我不知道", "不知道")
_PHRASES: tuple[str, ...] | None = None


def is_dont_know(answer: str) -> bool:
    """Whether an answer is the prompt's "not in the documents" reply (or opens with "I don't know")."""
    global _PHRASES
    if _PHRASES is None:
        _PHRASES = _template_phrases()
    norm = _normalize(answer)
    if not norm:
        return False
    return any(p in norm for p in _PHRASES) or norm.startswith(_DONT_KNOW_OPENINGS)


# -- ingestion failure classes --------------------------------------------------------------

_FAILURE_CLASSES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("unsupported_type", ("unsupported file type",)),
    ("too_large", ("over the per-file limit", "more than")),
    ("unreadable", ("cannot read file", "no such file")),
    ("no_text", ("no text to index", "no extractable text", "empty document")),
    ("duplicate_id", ("duplicate",)),
    ("invalid_id", ("invalid document id",)),
    ("parse_error", ("cannot parse", "parser crashed", "parsing took longer")),
    ("invalid_format", ("invalid json", "expected an object", 'missing "id"', "binary file", "not a pdf")),
)


def failure_reason(message: str) -> str:
    """A bounded reason class for an ingestion failure message (never the message itself)."""
    low = message.lower()
    for reason, needles in _FAILURE_CLASSES:
        if any(n in low for n in needles):
            return reason
    return "other"
