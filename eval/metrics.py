"""Metric functions for retrieval (document-level, binary relevance) and answers (EM, token F1).

Retrieval metrics take `ranked`, the document ids in rank order without repeats, and `relevant`,
the set of relevant document ids. Answer metrics follow SQuAD for English (lowercase, no
punctuation or articles, word tokens) and CMRC 2018 for Chinese (each CJK character is a token,
Latin letters and digits form words), taking the best score over the gold answers.
"""

from __future__ import annotations

import math
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

# ----- retrieval -------------------------------------------------------------------------------------


def hit_at(ranked: Sequence[str], relevant: Iterable[str], k: int) -> float:
    """1.0 when a relevant document is among the first k, else 0.0."""
    rel = set(relevant)
    return float(any(d in rel for d in ranked[:k]))


def reciprocal_rank(ranked: Sequence[str], relevant: Iterable[str], k: int = 10) -> float:
    """1/rank of the first relevant document within the first k (0.0 if none)."""
    rel = set(relevant)
    for i, d in enumerate(ranked[:k], 1):
        if d in rel:
            return 1.0 / i
    return 0.0


def ndcg_at(ranked: Sequence[str], relevant: Iterable[str], k: int = 10) -> float:
    """Normalized discounted cumulative gain with binary gains (log2 discount, as in BEIR/trec_eval)."""
    rel = set(relevant)
    if not rel:
        return 0.0
    dcg = sum(1.0 / math.log2(i + 1) for i, d in enumerate(ranked[:k], 1) if d in rel)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(rel), k) + 1))
    return dcg / ideal


def recall_at(ranked: Sequence[str], relevant: Iterable[str], k: int = 10) -> float:
    """Share of the relevant documents found within the first k."""
    rel = set(relevant)
    if not rel:
        return 0.0
    return len(rel.intersection(ranked[:k])) / len(rel)


def first_relevant_rank(ranked: Sequence[str], relevant: Iterable[str]) -> int | None:
    """1-based rank of the first relevant document, or None."""
    rel = set(relevant)
    for i, d in enumerate(ranked, 1):
        if d in rel:
            return i
    return None


def dedupe(ids: Iterable[str]) -> list[str]:
    """Ids in order of first appearance (chunks of one document collapse onto its best rank)."""
    seen: set[str] = set()
    out: list[str] = []
    for d in ids:
        if d not in seen:
            seen.add(d)
            out.append(d)
    return out


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100, linear interpolation); 0.0 for no values."""
    if not values:
        return 0.0
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def retrieval_summary(
    rankings: Sequence[Sequence[str]], relevants: Sequence[Iterable[str]], latencies_ms: Sequence[float]
) -> dict[str, float | int]:
    """The metrics.json row of one mode: means over queries, latency percentiles."""
    n = len(rankings)
    pairs = [(list(r), set(rel)) for r, rel in zip(rankings, relevants, strict=True)]

    def mean(f: object) -> float:
        assert callable(f)
        return round(sum(f(r, rel) for r, rel in pairs) / n, 4) if n else 0.0

    return {
        "hit@1": mean(lambda r, rel: hit_at(r, rel, 1)),
        "hit@3": mean(lambda r, rel: hit_at(r, rel, 3)),
        "hit@5": mean(lambda r, rel: hit_at(r, rel, 5)),
        "hit@10": mean(lambda r, rel: hit_at(r, rel, 10)),
        "mrr@10": mean(lambda r, rel: reciprocal_rank(r, rel, 10)),
        "ndcg@10": mean(lambda r, rel: ndcg_at(r, rel, 10)),
        "recall@10": mean(lambda r, rel: recall_at(r, rel, 10)),
        "n_queries": n,
        "latency_ms_p50": round(percentile(latencies_ms, 50), 2),
        "latency_ms_p99": round(percentile(latencies_ms, 99), 2),
    }


def hit_curve(
    rankings: Sequence[Sequence[str]], relevants: Sequence[Iterable[str]], k_max: int
) -> list[float]:
    """hit@k for k = 1..k_max."""
    ranks = [first_relevant_rank(r, rel) for r, rel in zip(rankings, relevants, strict=True)]
    n = len(ranks) or 1
    return [sum(1 for r in ranks if r is not None and r <= k) / n for k in range(1, k_max + 1)]


# ----- answers ---------------------------------------------------------------------------------------

_CJK_RANGES = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_CJK_CHAR = re.compile(f"[{_CJK_RANGES}]")
_CITATION = re.compile(r"\[\d+\]")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
# One CJK character, or a run of other letters/digits.
_TOKEN = re.compile(f"[{_CJK_RANGES}]|[^\\W_{_CJK_RANGES}]+")


def is_cjk(text: str) -> bool:
    """Whether the text contains CJK characters (scored character by character)."""
    return bool(_CJK_CHAR.search(text))


def _strip_punct(text: str) -> str:
    return "".join(
        " " if (ch in string.punctuation or unicodedata.category(ch).startswith("P")) else ch for ch in text
    )


def normalize_answer(text: str) -> str:
    """Lowercase, citation markers and punctuation removed, English articles dropped, spaces collapsed."""
    text = _CITATION.sub(" ", unicodedata.normalize("NFKC", text)).lower()
    text = _strip_punct(text)
    if not is_cjk(text):
        text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def answer_tokens(text: str) -> list[str]:
    """Tokens for F1: each CJK character alone, runs of other letters/digits as words."""
    return _TOKEN.findall(normalize_answer(text))


def exact_match(prediction: str, answers: Sequence[str]) -> float:
    """1.0 when the normalized prediction equals a normalized gold answer (spaces ignored for CJK)."""

    def key(s: str) -> str:
        n = normalize_answer(s)
        return n.replace(" ", "") if is_cjk(n) else n

    p = key(prediction)
    return float(any(p == key(a) for a in answers if a.strip()))


def token_f1(prediction: str, answers: Sequence[str]) -> float:
    """Best bag-of-tokens F1 against the gold answers (character-level for Chinese)."""
    pred = answer_tokens(prediction)
    best = 0.0
    for a in answers:
        gold = answer_tokens(a)
        if not gold or not pred:
            continue
        common = sum((Counter(pred) & Counter(gold)).values())
        if common == 0:
            continue
        precision, recall = common / len(pred), common / len(gold)
        best = max(best, 2 * precision * recall / (precision + recall))
    return best


def contains_answer(text: str, answers: Sequence[str]) -> bool:
    """Whether a normalized gold answer occurs in the normalized text (spaces ignored for CJK)."""
    t = normalize_answer(text)
    t_compact = t.replace(" ", "")
    for a in answers:
        n = normalize_answer(a)
        if not n:
            continue
        if is_cjk(n):
            if n.replace(" ", "") in t_compact:
                return True
        elif f" {n} " in f" {t} ":
            return True
    return False


_WORD = re.compile(r"\w+|[^\w\s]")


def degenerate(text: str, times: int = 4) -> bool:
    """Whether a word or a group of 2-3 words repeats `times` times in a row."""
    words = _WORD.findall(text.lower())
    for n in (1, 2, 3):
        for i in range(len(words) - times * n + 1):
            group = words[i : i + n]
            if all(words[i + k * n : i + (k + 1) * n] == group for k in range(1, times)):
                return True
    return False


def wilson(k: int, n: int, z: float = 1.96) -> list[float]:
    """95% Wilson score interval of a proportion k/n."""
    if n == 0:
        return [0.0, 1.0]
    p = k / n
    d = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / d
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]
