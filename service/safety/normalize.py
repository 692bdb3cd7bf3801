"""Text normalisation before detection: defeats zero-width, full-width and look-alike obfuscation."""

from __future__ import annotations

import re
import unicodedata

# Invisible characters used to split trigger words ("ig\u200bnore") or hide whole instructions.
ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad\u180e]")
# Tag characters (U+E0000 block) can spell ASCII invisibly ("ASCII smuggling").
_TAGS = re.compile("[\U000e0000-\U000e007f]")

# Latin look-alikes NFKC keeps apart (Cyrillic, Greek, a few symbols); map to the ASCII letter they mimic.
CONFUSABLES = str.maketrans(
    {
        "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "і": "i", "ј": "j",
        "ѕ": "s", "һ": "h", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ɡ": "g", "ո": "n", "ս": "u",
        "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C",
        "Т": "T", "Х": "X", "І": "I", "Ј": "J", "Ѕ": "S",
        "α": "a", "ο": "o", "ρ": "p", "ν": "v", "τ": "t", "ι": "i", "κ": "k", "υ": "u",
        "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N",
        "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
        "ı": "i", "ℓ": "l", "∕": "/", "‐": "-", "‑": "-", "–": "-", "—": "-",
    }
)  # fmt: skip


def has_invisible(text: str) -> bool:
    return bool(ZERO_WIDTH.search(text) or _TAGS.search(text))


def normalize(text: str) -> str:
    """NFKC (full-width to ASCII, ligatures), invisible characters removed, look-alikes mapped, lower case."""
    text = _TAGS.sub("", ZERO_WIDTH.sub("", text))
    text = unicodedata.normalize("NFKC", text).translate(CONFUSABLES)
    return text.lower()
