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


# Leetspeak digits and symbols inside words that also hold letters ("1gn0r3", "pr3v10us", "@dmin");
# plain numbers ("8080") and names that mix one digit into letters on purpose ("k8s") are kept apart:
# a word is read back only when two or more of its characters are leet.
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"})
_LEET_WORD = re.compile(r"(?=[\w@$]*[^\W\d_])[\w@$]*[013457@$][\w@$]*")
# Letters spaced out one by one ("i g n o r e   a l l"): three or more single letters in a row.
_LEET_INSIDE = re.compile(r"[^\W\d_][013457@$][^\W\d_]")  # one leet character between letters: "th1s"
_SPACED = re.compile(r"(?<!\w)((?:[^\W\d_] ){3,}[^\W\d_])(?!\w)")


def deleet(text: str) -> str:
    """Map leetspeak back to letters in words that mix letters with leet characters ("pr3v10us", "th1s")."""

    def back(m: re.Match[str]) -> str:
        w = m.group(0)
        leet = sum(c in "013457@$" for c in w)
        return w.translate(_LEET) if leet >= 2 or (leet == 1 and _LEET_INSIDE.search(w)) else w

    return _LEET_WORD.sub(back, text)


def deleet_dense(text: str) -> str:
    """`deleet` where leetspeak is a habit of the text (two or more words, a tenth of them), not a name."""
    words = text.split()
    out = deleet(text)
    changed = sum(a != b for a, b in zip(words, out.split(), strict=False))
    return out if changed >= 2 and changed * 10 >= len(words) else text


def unspace(text: str) -> str:
    """Join letters spaced out one by one (`i g n o r e` -> `ignore`)."""
    return _SPACED.sub(lambda m: m.group(1).replace(" ", ""), text)
