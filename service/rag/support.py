"""Specifics an answer states that no passage holds: numbers and `code` the model made up.

The grounding prompt says never to invent numbers, names or commands; small models do anyway (asked
for the on-call DBA's phone number with no such passage, SmolLM2 answered "123-456-7890"; with the
passages withheld, Qwen2.5-Coder-0.5B answered that a pool was "reduced to 100 connections"). Those
are the facts an operator acts on, and they can be checked: every number (any token with a digit) and
every `code span` of the answer must occur in the passages or in the question. What fails is
returned; the relay then replaces a whole answer with the abstention sentence (`rag.unsupported:
abstain`) or reports it in the response's `grounding` field (`flag`; streams always, since their
text is already out).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from service.rag.prompt import CITE

_CODE = re.compile(r"`([^`\n]{2,})`")
# A run of characters holding at least one digit: 137, 09:52, 5xx, 2.5s, 123-456-7890, v1.2. ASCII
# letters only: in Chinese the words around a number are not spaced off ("于1961年10月15日" holds
# the numbers 1961, 10 and 15), and a Unicode \w would make the whole clause one "number".
_DIGITS = re.compile(r"[A-Za-z0-9_.:/%+-]*[0-9][A-Za-z0-9_.:/%+-]*")


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def specifics(answer: str) -> list[str]:
    """The numbers and code spans of `answer`, in order, without citation markers."""
    text = CITE.sub(" ", answer)
    found: list[str] = []
    for m in _CODE.finditer(text):
        found.append(m.group(1).strip())
    for m in _DIGITS.finditer(_CODE.sub(" ", text)):
        token = m.group(0).strip(".:/-+,")
        if token and any(c.isdigit() for c in token):
            found.append(token)
    out: list[str] = []
    for f in found:
        if f and f not in out:
            out.append(f)
    return out


def unsupported(answer: str, passages: Sequence[str], question: str = "") -> list[str]:
    """Specifics of `answer` found neither in `passages` nor in `question`."""
    haystack = _norm("\n".join([*passages, question]))
    compact = haystack.replace(" ", "")
    words = set(haystack.split())
    missing: list[str] = []
    for item in specifics(answer):
        needle = _norm(item)
        if _DIGITS.fullmatch(item):  # a number: whole, not a part of a longer one ("9:58" is not "09:58")
            if re.search(rf"(?<![0-9]){re.escape(needle)}(?![0-9])", haystack):
                continue
        elif needle in haystack or needle.replace(" ", "") in compact:
            continue
        if " " in needle and all(w in words or w in compact for w in needle.split()):
            continue  # a command quoted in part or reordered: each of its words is in the passages
        missing.append(item)
    return missing


def only_citations(answer: str) -> bool:
    """An answer of citation markers and punctuation only ("[1] [2] [3]")."""
    return not any(ch.isalnum() for ch in CITE.sub(" ", answer))
