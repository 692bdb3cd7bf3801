"""Whether the passages can answer the question at all: the relevance gate.

Small models answer from whatever passages they are given: with the relevant runbook withheld,
Qwen2.5-Coder-0.5B copied an unrelated passage as the answer in 7 of 10 cases (negative rejection
0.3 on the held-out sample set), and asked as a judge ("do the passages contain the answer? yes/no")
its P(yes) did not separate answerable from unanswerable questions (0.2-0.6 either way). What does
separate them is the embedding similarity of the question to the closest *sentence* of the passages
(the whole passage's similarity is diluted by its other sentences): ROC AUC 0.87-0.88 on the tuning
sets, in English, Chinese and Chinese-to-English (eval/relevance_gate.py). Below the threshold the
gateway answers with the abstention sentence instead of calling the model.

The threshold belongs to the embedder that produced the similarity (cosines of different models are
not comparable), so it is configured per embedder (`rag.min_sentence_similarity`); a collection
built with an embedder that has no threshold is never gated.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from ingest.embedding import Embedder

# Sentence ends in English and Chinese, and line breaks (runbook steps, list items, headings).
_SENTENCE_END = re.compile(r"(?<=[.!?;。！？；\n])\s*")
_MIN_CHARS = 8  # shorter pieces ("1.", "## Steps") say nothing about the question
MAX_SENTENCES_PER_PASSAGE = 48  # bounds the cost: a pathological passage is cut, not embedded whole


def sentences(text: str) -> list[str]:
    """The sentences of a passage worth comparing with a question (at most MAX_SENTENCES_PER_PASSAGE)."""
    out = [s.strip() for s in _SENTENCE_END.split(text)]
    return [s for s in out if len(s) >= _MIN_CHARS][:MAX_SENTENCES_PER_PASSAGE]


def best_sentence_similarity(
    embedder: Embedder, questions: str | Sequence[str], passages: Sequence[str]
) -> float | None:
    """Cosine similarity of the question to the closest sentence of any passage (None: no sentences).

    Several questions (a follow-up and the earlier questions of its conversation): the best of them,
    since "and how do I fix it?" is about what the earlier question named. Passages too short to
    split count whole. Embedders return L2-normalized rows (ingest/embedding.py), so the dot product
    is the cosine.
    """
    asked = [q for q in ([questions] if isinstance(questions, str) else questions) if q.strip()]
    pieces: list[str] = []
    for text in passages:
        found = sentences(text)
        pieces += found or ([text.strip()] if text.strip() else [])
    if not pieces or not asked:
        return None
    vecs = embedder.encode(pieces)
    return max(float(np.max(vecs @ embedder.encode_query(q))) for q in asked)
