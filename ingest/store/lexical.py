"""BM25 (bm25s) with language-aware tokens: jieba for text with CJK, lowercase words otherwise."""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
from bm25s.stopwords import STOPWORDS_EN

from ingest.chunking import contains_cjk

DIRNAME = "bm25"
_WORD = re.compile(r"\w+", re.UNICODE)
_STOP = frozenset(STOPWORDS_EN)
logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs each index build at DEBUG otherwise
_jieba_lock = threading.Lock()
_jieba_ready = False


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
    """BM25 tokens: jieba search-mode words if text has CJK, else lowercase words; no English stopwords."""
    if contains_cjk(text):
        words = (w.strip().lower() for w in _jieba().cut_for_search(text))
        tokens = [w for w in words if w and _WORD.search(w)]
    else:
        tokens = _WORD.findall(text.lower())
    return [t for t in tokens if t not in _STOP]


def build(token_lists: list[list[str]]) -> bm25s.BM25:
    """A BM25 index over pre-tokenized chunks; position i is token_lists[i]."""
    retriever = bm25s.BM25()
    retriever.index(token_lists, show_progress=False)
    return retriever


def save(retriever: bm25s.BM25, path: Path) -> None:
    """Write the index into a directory."""
    retriever.save(str(path), show_progress=False)


def load(path: Path) -> bm25s.BM25:
    """Read an index written by `save`."""
    return bm25s.BM25.load(str(path), show_progress=False)


def scores(retriever: bm25s.BM25, query_tokens: list[str]) -> np.ndarray:
    """BM25 score of every position for the query (zeros for unknown words)."""
    known = [t for t in query_tokens if t in retriever.vocab_dict]
    n = int(retriever.scores["num_docs"])
    if not known:
        return np.zeros(n, np.float32)
    return np.asarray(retriever.get_scores(known), dtype=np.float32)
