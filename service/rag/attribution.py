"""Citations the model forgot: each answer sentence without a `[n]` gets the passage that supports it.

Small models often answer from the passages without writing `[n]` (Qwen2.5-Coder-1.5B cites in about
a third of its answers, the 0.5B starts with a bare "[1]" or none). A sentence is attributed to the
passage that shares the largest part of its content terms (words for Latin text, character bigrams for
Chinese, whole `code spans` and numbers as one term each), when that share reaches `min_overlap`; the
marker goes before the sentence's final punctuation, where a model would have put it. Sentences that
already cite, abstentions and sentences with no supporting passage are left as they are: a marker is
never invented for text the passages do not hold.

`StreamAttributor` does the same on a stream without holding text back: it sees each sentence end in
the piece that carries it, so the marker is inserted before that piece is relayed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from service.rag.prompt import CITE, CJK_CHARS

_CODE = re.compile(r"`([^`]+)`")
_NUMBER = re.compile(r"\d+(?:[.:,]\d+)*%?")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_\-./]*")
_CJK_RUN = re.compile(f"[{CJK_CHARS}]+")
_STOP = frozenset(
    ("a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from", "has", "have",
     "how", "if", "in", "into", "is", "it", "its", "of", "on", "or", "that", "the", "their", "then", "there",
     "these", "this", "to", "was", "were", "what", "when", "where", "which", "who", "why", "will", "with",
     "you", "your")
)  # fmt: skip
MIN_TERMS = 3  # a sentence with fewer content terms says too little to attribute


def terms(text: str) -> set[str]:
    """Content terms of `text`: code spans, numbers, non-stopword words, CJK character bigrams."""
    out: set[str] = {f"`{m.group(1).strip().lower()}`" for m in _CODE.finditer(text)}
    plain = _CODE.sub(" ", text)
    out |= {m.group(0) for m in _NUMBER.finditer(plain)}
    out |= {w.lower().rstrip(".-/") for w in _WORD.findall(plain) if w.lower() not in _STOP and len(w) > 1}
    for run in _CJK_RUN.findall(plain):
        out |= {run[i : i + 2] for i in range(len(run) - 1)} if len(run) > 1 else {run}
    return out


def _code_and_words(passage: str) -> set[str]:
    """A passage's terms, with each code span's words too (an answer may quote part of a command)."""
    found = terms(passage)
    for m in _CODE.finditer(passage):
        found |= terms(m.group(1))
    return found


class Attributor:
    """Finds the supporting passage of a sentence; built once per answer from its passages."""

    def __init__(self, passages: Sequence[str], *, min_overlap: float = 0.5, abstentions: Sequence[str] = ()):
        self.passage_terms = [_code_and_words(p) for p in passages]
        self.min_overlap = min_overlap
        self.abstentions = [a.lower() for a in abstentions if a]

    def source(self, sentence: str) -> int | None:
        """1-based number of the passage supporting `sentence`, or None."""
        if CITE.search(sentence) or not self.passage_terms:
            return None
        low = sentence.lower()
        if any(a in low for a in self.abstentions):
            return None
        mine = terms(sentence)
        if len(mine) < MIN_TERMS:
            return None
        best, best_share = None, 0.0
        for i, theirs in enumerate(self.passage_terms, 1):
            share = len(mine & theirs) / len(mine)
            if share > best_share:
                best, best_share = i, share
        return best if best_share >= self.min_overlap else None

    def attribute(self, answer: str) -> str:
        """`answer` with a `[n]` before the end of each supported sentence that cites nothing."""
        stream = StreamAttributor(self)
        return stream.feed(answer) + stream.finish()


class StreamAttributor:
    """`Attributor.attribute` over a stream of text pieces.

    Nothing is held back except a `.`, `!` or `?` that ends a piece: whether it ends a sentence ("5.")
    or not ("1.5") shows only with the next character.
    """

    def __init__(self, attributor: Attributor) -> None:
        self.attributor = attributor
        self.sentence = ""  # the current sentence's text so far (already relayed)
        self.in_code = False
        self.pending = ""  # a trailing . ! ? not yet relayed

    def feed(self, piece: str) -> str:
        """The text to relay for `piece`: markers inserted before the sentence ends it carries."""
        text, self.pending = self.pending + piece, ""
        out: list[str] = []
        start = 0
        for i, ch in enumerate(text):
            if ch == "`":
                self.in_code = not self.in_code
                continue
            if self.in_code:
                continue
            if ch in ".!?":
                if i + 1 == len(text):
                    out.append(text[start:i])
                    self.sentence += text[start:i]
                    self.pending = ch
                    return "".join(out)
                if not text[i + 1].isspace():
                    continue
            elif ch not in "。！？；":  # not a line break: copied passages break lines mid-sentence
                continue
            out.append(self._mark(self.sentence, text[start:i]))
            out.append(ch)
            self.sentence = ""
            start = i + 1
        out.append(text[start:])
        self.sentence += text[start:]
        return "".join(out)

    def _mark(self, before: str, body: str) -> str:
        """`body` (the unrelayed end of the sentence `before + body`) with its marker, if any."""
        n = self.attributor.source(before + body)
        if n is None:
            return body
        stripped = body.rstrip()
        return f"{stripped} [{n}]{body[len(stripped) :]}"

    def finish(self) -> str:
        """The rest at the end of the answer: the held punctuation, with the last sentence's marker."""
        pending, self.pending = self.pending, ""
        marked = self._mark(self.sentence, "")
        self.sentence = ""
        return (marked if marked else "") + pending
