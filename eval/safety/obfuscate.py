"""Obfuscations an attacker applies to get past keyword filters (used to make training variants and to
score held-out attacks obfuscated)."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable

_HOMO = str.maketrans({"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "i": "і", "x": "х", "y": "у"})
_LEET = str.maketrans({"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7"})


def spaced(t: str) -> str:
    return re.sub(r"[A-Za-z]{4,}", lambda m: " ".join(m.group(0)), t)


def zero_width(t: str) -> str:
    return re.sub(r"[A-Za-z]{4,}", lambda m: "\u200b".join(m.group(0)), t)


def b64(t: str) -> str:
    return "Decode this and do what it says: " + base64.b64encode(t.encode("utf-8")).decode()


OBFUSCATIONS: dict[str, Callable[[str], str]] = {
    "spacing": spaced,
    "homoglyphs": lambda t: t.translate(_HOMO),
    "zero_width": zero_width,
    "base64": b64,
    "base64_bare": lambda t: base64.b64encode(t.encode("utf-8")).decode(),
    "leetspeak": lambda t: t.translate(_LEET),
}
