"""BM25 (bm25s) with language-aware tokens: jieba for text with CJK, lowercase words otherwise.

Two layers, so the index can change its analysis without re-reading documents:
- `tokenize`: surface tokens (jieba search-mode words for CJK text, else lowercase `\\w+` words;
  English stopwords dropped). The docstore keeps these per chunk.
- `Analyzer`: what the BM25 index applies on top, recorded beside the index (`ragserve.json`) and in
  the manifest: currently the Snowball English stemmer (PyStemmer) on ASCII tokens only, so
  "forwarder"/"forwarding" and "drops"/"dropped" meet while jieba's Chinese words stay untouched.
  Queries are analyzed with the analyzer the loaded index records, never with today's default:
  an index written before stemming (no `ragserve.json`) keeps loading and matching as it was built.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
from bm25s.stopwords import STOPWORDS_EN

from ingest.chunking import contains_cjk
from ingest.errors import IngestError

DIRNAME = "bm25"
CONFIG = "ragserve.json"  # the Analyzer the index was built with; absent in indexes older than stemming
SCHEME = 1  # the `tokenize` rules below; bump when they change so old indexes are detected
_WORD = re.compile(r"\w+", re.UNICODE)
_STOP = frozenset(STOPWORDS_EN)
# Dropped from queries only: they mark a question's form, not its subject. A guide page that shows
# example questions ("How do I ingest a PDF?") otherwise outscores the runbook a question like "How
# do I confirm that a container was OOMKilled?" is about: in a small collection such words are rare,
# so BM25 weighs them high. Documents keep them (no index change). "us" stays (us-east-1).
QUESTION_WORDS = frozenset(
    {"how", "what", "why", "when", "where", "which", "who", "whom", "whose", "do", "does", "did"}
    | {"i", "me", "my", "we", "our", "you", "your", "can", "could", "should", "would"}
)
# The same words in Chinese, as jieba cuts them (the English list translated, not chosen by
# measurement): interrogatives (what, which, who, why, how, how many/big/long, when, where), the
# question particles that play the part of do/does (吗, 呢, 是否), pronouns and modals. Chinese
# questions carry them as English ones do, encyclopedic and runbook text hardly ever: "什么" was in
# 258 of 509 CMRC tuning questions and missing from BM25's best chunk in 257, so it counted as
# unmatched IDF mass in the lexical coverage that weighs the fusion (issue 21). "什么时候" (when)
# is cut into 什么 + 时候: 时候 goes too when it follows 什么.
QUESTION_WORDS_ZH = frozenset(
    {"什么", "啥", "甚么", "哪", "哪个", "哪些", "哪里", "哪儿", "哪位", "哪种", "谁", "为什么", "为何"}
    | {"怎么", "怎样", "怎么样", "如何", "多少", "几", "多大", "多长", "多久", "多高", "多远", "何时"}
    | {"何处", "何地", "吗", "呢", "是否", "我", "我们", "你", "你们", "您", "能", "能够", "可以", "应该"}
)
logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs each index build at DEBUG otherwise
_jieba_lock = threading.Lock()
_jieba_ready = False
_local = threading.local()  # PyStemmer objects are not thread-safe: one per thread


class LexicalConfigError(IngestError):
    """A stored BM25 index was built with an analysis this version cannot reproduce."""


def _jieba() -> Any:
    """jieba, initialized once (its first use builds a dictionary and logs to stderr)."""
    global _jieba_ready
    import jieba

    with _jieba_lock:
        if not _jieba_ready:
            jieba.setLogLevel(logging.WARNING)
            jieba.initialize()
            _jieba_ready = True
    return jieba


def tokenize(text: str) -> list[str]:
    """Surface tokens: jieba search-mode words if text has CJK, else lowercase words; no English stopwords."""
    if contains_cjk(text):
        words = (w.strip().lower() for w in _jieba().cut_for_search(text))
        tokens = [w for w in words if w and _WORD.search(w)]
    else:
        tokens = _WORD.findall(text.lower())
    return [t for t in tokens if t not in _STOP]


def query_words(query: str) -> list[str]:
    """A query's surface tokens without the words that only mark it as a question (English or Chinese)."""
    words: list[str] = []
    prev = ""
    for w in tokenize(query):
        if not (w in QUESTION_WORDS or w in QUESTION_WORDS_ZH or (w == "时候" and prev == "什么")):
            words.append(w)
        prev = w
    return words


def _stemmer(language: str) -> Any:
    """This thread's PyStemmer Stemmer for a language."""
    cache: dict[str, Any] | None = getattr(_local, "stemmers", None)
    if cache is None:
        cache = _local.stemmers = {}
    if language not in cache:
        try:
            import Stemmer
        except ImportError as exc:  # a pinned dependency; only a broken install lands here
            raise LexicalConfigError("BM25 stemming needs PyStemmer: pip install PyStemmer") from exc
        try:
            cache[language] = Stemmer.Stemmer(language)
        except KeyError as exc:
            raise LexicalConfigError(f"unknown stemmer language {language!r}") from exc
    return cache[language]


@dataclass(frozen=True)
class Analyzer:
    """What the BM25 index does to surface tokens; stored with the index so queries match it."""

    scheme: int = SCHEME
    stemmer: str | None = "english"

    def apply(self, tokens: list[str]) -> list[str]:
        """Analyzed tokens; the stemmer touches ASCII words only (never jieba's CJK words)."""
        if self.stemmer is None or not tokens:
            return tokens
        stem = _stemmer(self.stemmer)
        if all(t.isascii() for t in tokens):
            return list(stem.stemWords(tokens))
        return [stem.stemWord(t) if t.isascii() else t for t in tokens]

    def to_json(self) -> dict[str, Any]:
        """The record written beside the index and into the manifest."""
        return {**asdict(self), "stopwords": "en"}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Analyzer:
        """The analyzer a stored record describes; LexicalConfigError if this version cannot apply it."""
        scheme = raw.get("scheme")
        stemmer = raw.get("stemmer")
        if scheme != SCHEME or raw.get("stopwords", "en") != "en":
            raise LexicalConfigError(
                f"BM25 index uses tokenizer scheme {scheme!r} (stopwords {raw.get('stopwords')!r}); "
                f"this version has scheme {SCHEME} (stopwords 'en')"
            )
        if stemmer is not None and not isinstance(stemmer, str):
            raise LexicalConfigError(f"BM25 index records an invalid stemmer {stemmer!r}")
        analyzer = cls(scheme=SCHEME, stemmer=stemmer)
        analyzer.apply(["check"])  # an unknown language or a missing PyStemmer fails here, at load
        return analyzer


DEFAULT = Analyzer()  # what new versions are built with
LEGACY = Analyzer(stemmer=None)  # indexes written before the analyzer was recorded


@dataclass
class LexicalIndex:
    """A BM25 index and the analyzer its tokens went through."""

    bm25: bm25s.BM25
    analyzer: Analyzer
    documents: int | None = None  # live chunks when some positions are tombstones (else = size)

    @property
    def size(self) -> int:
        """Number of indexed positions (chunks)."""
        return int(self.bm25.scores["num_docs"])

    def query_tokens(self, query: str) -> list[str]:
        """The query as the index's own vocabulary (analyzed, unknown words and question words dropped)."""
        vocab = self.bm25.vocab_dict
        words = query_words(query)
        return [t for t in self.analyzer.apply(words) if t in vocab]

    def scores(self, tokens: list[str]) -> np.ndarray:
        """BM25 score of every position for analyzed query tokens (zeros if none is known)."""
        if not tokens:
            return np.zeros(self.size, np.float32)
        return np.asarray(self.bm25.get_scores(tokens), dtype=np.float32)

    def coverage(self, tokens: list[str], position: int) -> float:
        """Share of the query's IDF mass whose words occur in the chunk at `position` (0..1).

        1.0 means every query word, weighted by rarity, is in that chunk: the query is (close to)
        a copy of the chunk's wording, which is where lexical matching is most reliable.
        """
        if not tokens:
            return 0.0
        s = self.bm25.scores
        indptr, indices, vocab = s["indptr"], s["indices"], self.bm25.vocab_dict
        n = self.documents if self.documents is not None else self.size
        total = found = 0.0
        for t in set(tokens):
            col = vocab[t]
            lo, hi = int(indptr[col]), int(indptr[col + 1])
            idf = math.log(1.0 + (n - (hi - lo) + 0.5) / ((hi - lo) + 0.5))
            total += idf
            if bool(np.any(indices[lo:hi] == position)):
                found += idf
        return found / total if total > 0 else 0.0


def build(
    token_lists: list[list[str]],
    analyzer: Analyzer = DEFAULT,
    positions: np.ndarray | None = None,
    size: int | None = None,
) -> LexicalIndex:
    """A BM25 index over chunks' surface tokens (position i is token_lists[i]), analyzed first.

    With `positions` (ascending, one per token list) and `size`, the lists are the live chunks of an
    index with `size` positions, some of them tombstones: statistics (document count, average
    length, IDF) are those of the live chunks alone, exactly as a fresh build of them, and scores come
    out per position (0 at tombstones).
    """
    retriever = bm25s.BM25()
    retriever.index(_analyze_all(token_lists, analyzer), show_progress=False)
    if positions is None:
        return LexicalIndex(retriever, analyzer)
    if size is None or len(positions) != len(token_lists):
        raise ValueError("positions must give one position per token list, and size the positions' range")
    s = retriever.scores
    s["indices"] = np.asarray(positions, dtype=np.int64)[s["indices"]].astype(s["indices"].dtype)
    s["num_docs"] = int(size)
    return LexicalIndex(retriever, analyzer, documents=len(token_lists))


def _analyze_all(token_lists: list[list[str]], analyzer: Analyzer) -> list[list[str]]:
    """Every list analyzed, each distinct token once (a collection repeats its words: 2.4M tokens of
    60k chunks have ~20k distinct ones, and stemming them one by one was most of a BM25 rebuild)."""
    if analyzer.stemmer is None:
        return token_lists
    words = list({t for tokens in token_lists for t in tokens})
    analyzed = dict(zip(words, analyzer.apply(words), strict=True))
    return [[analyzed[t] for t in tokens] for tokens in token_lists]


def save(index: LexicalIndex, path: Path) -> None:
    """Write the index and its analyzer record (and live chunk count, with tombstones) into a directory."""
    index.bm25.save(str(path), show_progress=False)
    record = index.analyzer.to_json()
    if index.documents is not None:
        record["documents"] = index.documents
    (path / CONFIG).write_text(json.dumps(record), encoding="utf-8")


def _read_record(path: Path) -> dict[str, Any] | None:
    """The record written beside an index (None when there is none: indexes older than stemming)."""
    cfg = path / CONFIG
    if not cfg.is_file():
        return None
    try:
        raw = json.loads(cfg.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LexicalConfigError(f"unreadable BM25 analyzer record {cfg}: {exc}") from exc
    if not isinstance(raw, dict):
        raise LexicalConfigError(f"unreadable BM25 analyzer record {cfg}")
    return raw


def read_analyzer(path: Path) -> Analyzer:
    """The analyzer recorded in an index directory (LEGACY when there is no record)."""
    raw = _read_record(path)
    return LEGACY if raw is None else Analyzer.from_json(raw)


def load(path: Path) -> LexicalIndex:
    """Read an index written by `save` (or by a version before analyzers were recorded)."""
    raw = _read_record(path)
    # The analyzer first: a mismatch is reported before the index is read.
    analyzer = LEGACY if raw is None else Analyzer.from_json(raw)
    documents = (raw or {}).get("documents")
    return LexicalIndex(
        bm25s.BM25.load(str(path), show_progress=False),
        analyzer,
        documents=documents if isinstance(documents, int) else None,
    )
