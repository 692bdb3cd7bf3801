"""Token-sized, Markdown- and CJK-aware chunking built on langchain-text-splitters."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from langchain_text_splitters import Language, RecursiveCharacterTextSplitter

from ingest.loaders.base import LoadedDocument

# Sentence ends first (CJK full-width punctuation has no trailing space), then clauses, then words.
_PROSE_SEPARATORS = [
    r"\n\n",
    r"\n",
    r"(?<=[。！？；])",
    r"(?<=[.!?;])\s",
    r"(?<=[，、,:：])",
    r"\s",
    "",
]
_PREFIX_MAX_CHARS = 160  # heading/title context prepended for indexing; ~40 tokens at most
_SHORT = 64  # pieces up to this many characters have their token count memoized (words, runs)


class _Splitter(RecursiveCharacterTextSplitter):
    """langchain's recursive splitter, linear on text with nothing left to split on but characters.

    Its last resort splits a run with no separator (a base64 blob, minified code, Chinese without
    punctuation) into single characters and measures each with the tokenizer: ~75 s per MB. Here such
    a run is cut into runs of a few characters instead (at most chunk_size/8, so one run is always far
    below a chunk), which are merged exactly as characters would be, at a coarser grain.
    """

    def _split_text(self, text: str, separators: list[str]) -> list[str]:
        if (
            separators
            and separators[-1] == ""
            and not any(
                s and re.search(s if self._is_separator_regex else re.escape(s), text)
                for s in separators[:-1]
            )
        ):
            step = max(1, self._chunk_size // 8)
            return self._merge_splits([text[i : i + step] for i in range(0, len(text), step)], "")
        return super()._split_text(text, separators)


def _memoized(count_tokens: Callable[[str], int]) -> Callable[[str], int]:
    """count_tokens with short pieces cached: the splitter measures every word, and words repeat."""
    short = lru_cache(maxsize=1 << 16)(count_tokens)
    return lambda text: short(text) if len(text) <= _SHORT else count_tokens(text)


@dataclass
class Chunk:
    """A piece of a document; `text` is verbatim, `index_text` adds title/heading context for retrieval."""

    chunk_id: str
    document_id: str
    source: str
    page: int | None
    text: str
    index_text: str
    start: int  # char offsets within the section's unit (page for PDFs, else the document)
    end: int
    metadata: dict[str, Any] = field(default_factory=dict)


class Chunker:
    """Splits loaded documents into chunks of at most `chunk_tokens` tokens of the embedding model."""

    def __init__(
        self,
        count_tokens: Callable[[str], int],
        chunk_tokens: int = 200,
        overlap_tokens: int = 30,
        max_seq_length: int = 256,
    ) -> None:
        # Leave room for the special tokens and the heading prefix so nothing is truncated when embedding.
        size = max(32, min(chunk_tokens, max_seq_length - 2 - 40))
        overlap = min(overlap_tokens, size // 3)
        markdown_seps = RecursiveCharacterTextSplitter.get_separators_for_language(Language.MARKDOWN)
        common: dict[str, Any] = {
            "chunk_size": size,
            "chunk_overlap": overlap,
            "length_function": _memoized(count_tokens),
            "is_separator_regex": True,
            "keep_separator": "end",
        }
        self._prose = _Splitter(separators=_PROSE_SEPARATORS, **common)
        # Markdown structure (fences, rules) first, then the prose separators for long paragraphs.
        md = [s for s in markdown_seps if s not in ("\n\n", "\n", " ", "")] + _PROSE_SEPARATORS
        self._markdown = _Splitter(separators=md, **common)
        self.chunk_tokens = size
        self.overlap_tokens = overlap

    def split(self, doc: LoadedDocument) -> list[Chunk]:
        """Chunks of one document, numbered in order: chunk_id = f"{document_id}#{n}"."""
        splitter = self._markdown if doc.markdown else self._prose
        title = doc.metadata.get("title")
        chunks: list[Chunk] = []
        for section in doc.sections:
            prefix = _context_prefix(title, section.heading)
            cursor = 0
            for piece in splitter.split_text(section.text):
                if not piece.strip():
                    continue
                # Pieces are verbatim substrings in order; search from just after the last start.
                found = section.text.find(piece, cursor)
                local = found if found >= 0 else section.text.find(piece)
                cursor = (local + 1) if local >= 0 else cursor
                start = section.offset + max(local, 0)
                meta: dict[str, Any] = dict(doc.metadata)
                if section.heading:
                    meta["heading"] = section.heading
                n = len(chunks)
                chunks.append(
                    Chunk(
                        chunk_id=f"{doc.document_id}#{n}",
                        document_id=doc.document_id,
                        source=doc.source,
                        page=section.page,
                        text=piece,
                        index_text=f"{prefix}\n{piece}" if prefix else piece,
                        start=start,
                        end=start + len(piece),
                        metadata=meta,
                    )
                )
        return chunks


def _context_prefix(title: Any, heading: str | None) -> str:
    """ "Title > Heading path", without repeating a title the heading path already starts with."""
    parts = [str(title)] if title else []
    if heading:
        parts = [heading] if parts and heading.startswith(parts[0]) else [*parts, heading]
    return " > ".join(parts)[:_PREFIX_MAX_CHARS]


def index_text(row: Mapping[str, Any]) -> str:
    """A stored chunk's `index_text` (what was embedded and BM25-indexed), from its text and metadata."""
    meta = row.get("metadata") or {}
    prefix = _context_prefix(meta.get("title"), meta.get("heading"))
    text = str(row["text"])
    return f"{prefix}\n{text}" if prefix else text


def contains_cjk(text: str) -> bool:
    """Whether text has any CJK ideograph, kana or hangul."""
    return bool(_CJK.search(text))


def cjk_ratio(text: str) -> float:
    """Share of CJK characters among the letters and ideographs of text (0..1)."""
    cjk = len(_CJK.findall(text))
    latin = sum(len(w) for w in re.findall(r"[A-Za-z0-9]+", text))
    # A Latin letter counts a quarter: an English word carries about what one or two ideographs do.
    total = cjk + latin / 4
    return cjk / total if total else 0.0


_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
