"""Dense, BM25 and hybrid retrieval over a `Snapshot`, with metadata filters.

Scores in `SearchHit.score` (higher is better):
- dense: cosine similarity of query and chunk embeddings, in [-1, 1];
- bm25: the BM25 score (unbounded, 0 = no query word present);
- hybrid: weighted sum of each ranker's standardized score (z-score against that ranker's own
  candidate list), weights summing to 1; about 2 or more means the chunk stands out clearly.

Why not reciprocal-rank fusion: ranks throw away how sure each ranker is. With an English-only
embedder, dense results for a Chinese query are noise, and RRF lets that noise outvote BM25
(measured on CMRC 2018: 95% -> 23% first hit). Here each ranker is weighted per query by evidence:
- the query's language against what the embedder covers (an English-only model's similarity for
  Chinese text fades out with the query's CJK share);
- whether each ranker found anything at all;
- lexical coverage: the share of the query's IDF mass that occurs in BM25's best chunk. A query
  whose rare words all sit in one passage copies that passage's wording, and exact words then
  separate near-duplicate runbooks better than an embedding does, so BM25 leads; a paraphrase
  shares few words with its answer, so the embedding, which bridges vocabulary, weighs as much.
  (Measured in docs/benchmarks.md: generated near-verbatim queries have coverage 1.0 at the
  median, hand-written paraphrases 0.63.)
- with a multilingual embedder, the script gap between the query and each candidate chunk: BM25's
  match of a chunk in another script rests on the few Latin identifiers both share, so for that
  chunk the embedding leads; a same-script chunk is judged as any other (per candidate, so a mixed
  zh/en collection neither silences BM25 for a Chinese question whose embedding points at an English
  chunk, nor lets BM25 pick a Chinese chunk for a question whose answer is English).
z-scores then let a ranker whose best hit stands far above its other candidates dominate one
whose scores are flat.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ingest.chunking import cjk_ratio
from ingest.errors import IngestError
from ingest.store import vectors
from ingest.store.collection import Snapshot
from ingest.types import SearchHit

Mode = Literal["dense", "bm25", "hybrid"]
MODES: tuple[str, ...] = ("dense", "bm25", "hybrid")


@dataclass(frozen=True)
class FusionWeights:
    """Weights of the two rankers for one query (sum to 1)."""

    dense: float
    bm25: float


# The dense share of an English query's fused score, by lexical coverage (see the module docstring);
# chosen on the tuning query sets with `eval.fusion_study` (docs/benchmarks.md): paraphrase shares
# 0.3-0.7 tie there, verbatim shares 0.05-0.3 are within one query of each other, 0 and 0.5 are worse.
DENSE_SHARE_PARAPHRASE = 0.5
DENSE_SHARE_VERBATIM = 0.1
# BM25's odds across scripts are multiplied by (1 - script gap) ** this (see `fusion_weights`): the
# exponent of the English-only embedder's CJK fade; 1 was also tried on the tuning sets (issue 21).
SCRIPT_FADE_POWER = 3.0


def fusion_weights(
    query: str,
    *,
    multilingual_embedder: bool,
    bm25_found: bool,
    dense_found: bool,
    lexical_coverage: float = 0.0,
    script_gap: float = 0.0,
    script_fade_power: float | None = None,
) -> FusionWeights:
    """Weights from evidence: whether each ranker found anything, lexical coverage, query language.

    `script_gap` is how far the query's CJK share is from that of the chunk being scored (0..1,
    `script_gap()`): a Chinese question answered by English text (or the reverse) shares only the
    Latin identifiers both contain, so BM25's word matches say little about meaning there, and its
    weight fades with the gap the way an English-only embedder's fades with the query's CJK share.
    """
    w = dense_weights(
        query,
        multilingual_embedder=multilingual_embedder,
        bm25_found=bm25_found,
        dense_found=dense_found,
        lexical_coverage=lexical_coverage,
        script_gaps=np.array([script_gap], np.float64),
        script_fade_power=script_fade_power,
    )
    dense = float(w[0])
    return FusionWeights(dense, 1.0 - dense)


def dense_weights(
    query: str,
    *,
    multilingual_embedder: bool,
    bm25_found: bool,
    dense_found: bool,
    lexical_coverage: float,
    script_gaps: np.ndarray,
    script_fade_power: float | None = None,
) -> np.ndarray:
    """The dense weight (`fusion_weights`) for each of a pool's candidates, given their script gaps."""
    if not bm25_found:
        return np.ones(len(script_gaps))
    if not dense_found:
        return np.zeros(len(script_gaps))
    c = min(max(lexical_coverage, 0.0), 1.0)
    share = DENSE_SHARE_PARAPHRASE * (1.0 - c) + DENSE_SHARE_VERBATIM * c
    odds = np.full(len(script_gaps), share / (1.0 - share))
    if not multilingual_embedder:
        # An English-only model's similarity for CJK text is noise: fade it out by the CJK share.
        odds *= (1.0 - cjk_ratio(query)) ** 3
    else:
        # Only a model that bridges languages is worth trusting over a cross-script lexical match.
        power = SCRIPT_FADE_POWER if script_fade_power is None else script_fade_power
        if power:
            gaps = np.clip(np.asarray(script_gaps, np.float64), 0.0, 1.0)
            odds /= np.maximum((1.0 - gaps) ** power, 1e-6)
    return np.asarray(odds / (1.0 + odds), np.float64)


def _standardize(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """z-scores of values against the mean and spread of a ranker's candidate scores."""
    if len(reference) == 0:
        return np.zeros_like(values)
    mu = float(reference.mean())
    sigma = float(reference.std())
    # A floor on the spread: a ranker whose candidates all score alike has no evidence to give.
    top = float(reference.max())
    sigma = max(sigma, 0.05 * abs(top), 1e-6)
    return ((values - mu) / sigma).astype(np.float32)


# "zscore" is production; the others exist for `eval.fusion_study` and `eval.embedder_study`:
# "zscore-flat" (coverage ignored, the fusion before issue 3's stemming work), "zscore-noscript" /
# "zscore-script1" (no script fade / its exponent 1), "zscore-firsts" (one script gap per query, the
# larger of the two rankers' best chunks', as before session 18), "rrf" (reciprocal ranks weighted
# like zscore), "rrf60" (plain reciprocal-rank fusion, k=60, equal weights) and "minmax" (each
# ranker's scores scaled to 0..1 over its own candidates, equal weights).
FUSION_METHODS: tuple[str, ...] = (
    "zscore", "zscore-noscript", "zscore-script1", "zscore-firsts", "zscore-flat", "rrf", "rrf60", "minmax"
)  # fmt: skip
RRF_K = 60


def fuse(
    query: str,
    dense: np.ndarray,
    bm25: np.ndarray,
    dense_ref: np.ndarray,
    bm25_ref: np.ndarray,
    *,
    multilingual_embedder: bool,
    lexical_coverage: float = 0.0,
    script_gap: float | np.ndarray = 0.0,
    bm25_ref_size: int = 0,
    method: str = "zscore",
) -> np.ndarray:
    """Fused scores of a candidate pool from both rankers' scores of it.

    `dense_ref` / `bm25_ref` are each ranker's own top candidates' scores (best first), the
    reference for how unusual a pool member's score is; `lexical_coverage` is
    `LexicalIndex.coverage` of BM25's best chunk; `script_gap` is each pool member's
    `script_gap(query, its text)` (or one value for all). `bm25_ref_size`: how many candidates
    BM25's reference stands for (min(candidates, chunks in the collection)); when BM25 matched
    fewer chunks, the rest of its top list scores 0 and is counted so. Without it a lone BM25 match
    stood at its own mean (z = 0), and once the script gap is judged per candidate, a chunk in the
    other script, judged by the embedding alone, could outrank the chunk both rankers put first.
    """
    if 0 < len(bm25_ref) < bm25_ref_size:
        bm25_ref = np.concatenate([bm25_ref, np.zeros(bm25_ref_size - len(bm25_ref), bm25_ref.dtype)])
    if method == "minmax":
        return (0.5 * _minmax(dense, dense_ref) + 0.5 * _minmax(bm25, bm25_ref)).astype(np.float32)
    wd = dense_weights(
        query,
        multilingual_embedder=multilingual_embedder,
        bm25_found=len(bm25_ref) > 0,
        dense_found=len(dense_ref) > 0,
        lexical_coverage=0.0 if method == "zscore-flat" else lexical_coverage,
        script_gaps=np.broadcast_to(np.asarray(script_gap, np.float64), dense.shape),
        script_fade_power={"zscore-noscript": 0.0, "zscore-script1": 1.0}.get(method),
    )
    if method in ("rrf", "rrf60"):
        if method == "rrf60":
            wd = np.full(len(dense), 0.5)
        rd = _ranks(dense)
        rb = np.where(bm25 > 0, _ranks(bm25), np.inf)
        rrf: np.ndarray = wd / (RRF_K + rd) + (1.0 - wd) / (RRF_K + rb)
        return rrf.astype(np.float32)
    fused: np.ndarray = wd * _standardize(dense, dense_ref) + (1.0 - wd) * _standardize(bm25, bm25_ref)
    return fused.astype(np.float32)


@dataclass(frozen=True)
class PoolFusion:
    """A candidate pool's fused scores and, per candidate, the evidence behind its score."""

    scores: np.ndarray
    dense: np.ndarray
    bm25: np.ndarray
    lexical_coverage: float
    script_gaps: np.ndarray  # each candidate's `script_gap` to the query
    dense_weights: np.ndarray  # each candidate's dense weight (`dense_weights`)

    def detail(self, i: int) -> dict[str, float]:
        """Candidate i's own ranker scores and its fusion evidence, for debugging a ranking."""
        return {
            "dense": float(self.dense[i]),
            "bm25": float(self.bm25[i]),
            "lexical_coverage": round(self.lexical_coverage, 4),
            "script_gap": round(float(self.script_gaps[i]), 4),
            "dense_weight": round(float(self.dense_weights[i]), 4),
        }


def fuse_pool(
    query: str,
    dense: np.ndarray,
    bm25: np.ndarray,
    dense_ref: np.ndarray,
    bm25_ref: np.ndarray,
    *,
    multilingual_embedder: bool,
    lexical_coverage: float,
    script_gaps: np.ndarray,
    bm25_ref_size: int,
) -> PoolFusion:
    """`fuse` (the production method) of a candidate pool, with what each score came from."""
    fused = fuse(
        query,
        dense,
        bm25,
        dense_ref,
        bm25_ref,
        multilingual_embedder=multilingual_embedder,
        lexical_coverage=lexical_coverage,
        script_gap=script_gaps,
        bm25_ref_size=bm25_ref_size,
    )
    weights = dense_weights(
        query,
        multilingual_embedder=multilingual_embedder,
        bm25_found=len(bm25_ref) > 0,
        dense_found=len(dense_ref) > 0,
        lexical_coverage=lexical_coverage,
        script_gaps=script_gaps,
    )
    return PoolFusion(fused, dense, bm25, lexical_coverage, script_gaps, weights)


def _minmax(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """values scaled so that a ranker's worst candidate is 0 and its best 1 (clipped below at 0)."""
    if len(reference) == 0:
        return np.zeros_like(values)
    lo, hi = float(reference.min()), float(reference.max())
    return np.clip((values - lo) / max(hi - lo, 1e-6), 0.0, None).astype(np.float32)


def _ranks(scores: np.ndarray) -> np.ndarray:
    """1-based rank of each score within the array (best = 1)."""
    order = np.argsort(-scores, kind="stable")
    ranks = np.empty(len(scores), np.float64)
    ranks[order] = np.arange(1, len(scores) + 1)
    return ranks


def _top(scores: np.ndarray, positions: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best k (scores, positions), best first."""
    if len(scores) > k:
        part = np.argpartition(-scores, k - 1)[:k]
        scores, positions = scores[part], positions[part]
    order = np.argsort(-scores, kind="stable")
    return scores[order], positions[order]


def search(
    snap: Snapshot,
    query: str,
    *,
    embed: Callable[[str], np.ndarray] | None,
    multilingual_embedder: bool = False,
    top_k: int = 4,
    mode: str = "hybrid",
    filters: dict[str, Any] | None = None,
    candidates: int = 50,
    timings: dict[str, float] | None = None,
) -> list[SearchHit]:
    """Retrieve the top_k chunks for a query; `embed` is required for dense and hybrid modes.

    `timings`, when given, receives seconds spent per stage: embed, dense, bm25, fuse.
    """
    if mode not in MODES:
        raise IngestError(f"unknown search mode {mode!r}; use one of {', '.join(MODES)}")
    n = len(snap.rowids)
    if top_k <= 0 or snap.chunks == 0 or not query.strip():
        return []
    allowed: np.ndarray | None = None
    if filters:
        allowed = snap.positions_of(snap.docs.matching_ids(filters))
        if len(allowed) == 0:
            return []
    k = max(candidates, top_k)

    d_scores = d_pos = q = None
    t = time.perf_counter()
    if mode in ("dense", "hybrid"):
        if embed is None:
            raise IngestError("dense search needs the embedding model")
        q = embed(query)
        t = _lap(timings, "embed", t)
        d_scores, d_pos = vectors.search(snap.index, q, k, allowed, excluded=snap.dead)
        t = _lap(timings, "dense", t)
    b_all = None
    q_tokens: list[str] = []
    if mode in ("bm25", "hybrid") and snap.bm25 is not None:
        q_tokens = snap.bm25.query_tokens(query)
        b_all = snap.bm25.scores(q_tokens)
        if allowed is not None:
            mask = np.zeros(n, bool)
            mask[allowed] = True
            b_all = np.where(mask, b_all, 0.0).astype(np.float32)
        t = _lap(timings, "bm25", t)

    if mode == "dense":
        assert d_scores is not None and d_pos is not None
        ranked = list(zip(d_pos[:top_k].tolist(), d_scores[:top_k].tolist(), strict=True))
        return _hits(snap, ranked, None)
    if mode == "bm25":
        if b_all is None:
            return []
        hit = np.flatnonzero(b_all > 0)
        bs, bp = _top(b_all[hit], hit, top_k)
        return _hits(snap, list(zip(bp.tolist(), bs.tolist(), strict=True)), None)

    assert d_scores is not None and d_pos is not None and q is not None
    b_hit = np.flatnonzero(b_all > 0) if b_all is not None else np.zeros(0, np.int64)
    b_scores, b_pos = _top(b_all[b_hit], b_hit, k) if b_all is not None else (np.zeros(0, np.float32), b_hit)
    pool = np.unique(np.concatenate([d_pos, b_pos]))
    # Score every candidate by both rankers, so a chunk one ranker missed is judged on its real score.
    dense_all = vectors.vectors_at(snap.index, pool) @ q
    bm25_all = b_all[pool] if b_all is not None else np.zeros(len(pool), np.float32)
    coverage = snap.bm25.coverage(q_tokens, int(b_pos[0])) if snap.bm25 is not None and len(b_pos) else 0.0
    gaps = np.zeros(len(pool))
    rows: dict[int, dict[str, Any]] | None = None
    if multilingual_embedder and len(b_pos):
        # How far each candidate's script is from the query's (see `fusion_weights`); the rows read
        # for it also serve the hits.
        rids = [int(snap.rowids[int(p)]) for p in pool]
        rows = snap.docs.chunk_rows(rids)
        gaps = script_gaps(query, [str(rows[r]["text"]) if r in rows else "" for r in rids])
    pooled = fuse_pool(
        query,
        dense_all,
        bm25_all,
        d_scores,
        b_scores,
        multilingual_embedder=multilingual_embedder,
        lexical_coverage=coverage,
        script_gaps=gaps,
        bm25_ref_size=min(k, snap.chunks),
    )
    fs, fp = _top(pooled.scores, pool, top_k)
    _lap(timings, "fuse", t)
    where = {int(p): i for i, p in enumerate(pool)}
    extra = {int(p): pooled.detail(where[int(p)]) for p in fp}
    return _hits(snap, list(zip(fp.tolist(), fs.tolist(), strict=True)), extra, rows)


def script_gap(query: str, text: str) -> float:
    """How far apart the CJK shares of a query and a chunk are (0: same script mix, 1: none shared)."""
    return abs(cjk_ratio(query) - cjk_ratio(text))


def script_gaps(query: str, texts: list[str]) -> np.ndarray:
    """`script_gap` of the query against each text (`cjk_ratio` vectorized: one pass over all texts)."""
    codes = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32)
    cjk = np.zeros(len(codes), bool)
    for lo, hi in _CJK_RANGES:
        cjk |= (codes >= lo) & (codes <= hi)
    folded = codes | 32  # ASCII upper case to lower case
    latin = ((codes >= 48) & (codes <= 57)) | ((folded >= 97) & (folded <= 122))
    ends = np.cumsum([len(t) for t in texts], dtype=np.int64)
    starts = ends - np.array([len(t) for t in texts], dtype=np.int64)

    def per_text(mask: np.ndarray) -> np.ndarray:
        sums = np.concatenate([[0], np.cumsum(mask, dtype=np.int64)])
        counts: np.ndarray = (sums[ends] - sums[starts]).astype(np.float64)
        return counts

    n_cjk = per_text(cjk)
    total = n_cjk + per_text(latin) / 4  # as `cjk_ratio`: a Latin letter counts a quarter
    shares = np.divide(n_cjk, total, out=np.zeros(len(texts)), where=total > 0)
    return np.asarray(np.abs(cjk_ratio(query) - shares), np.float64)


# `ingest.chunking._CJK`'s ranges (ideographs, kana, hangul) as code points.
_CJK_RANGES = ((0x3040, 0x30FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xAC00, 0xD7AF), (0xF900, 0xFAFF))


def _lap(timings: dict[str, float] | None, stage: str, since: float) -> float:
    """Record the time since `since` under `stage` (when timing) and return now."""
    now = time.perf_counter()
    if timings is not None:
        timings[stage] = timings.get(stage, 0.0) + (now - since)
    return now


def _hits(
    snap: Snapshot,
    ranked: list[tuple[int, float]],
    extra: dict[int, dict[str, float]] | None,
    rows: dict[int, dict[str, Any]] | None = None,
) -> list[SearchHit]:
    """Turn (position, score) pairs into hits with text and metadata from the docstore (or `rows`,
    when the caller has read them already)."""
    ids = [int(snap.rowids[p]) for p, _ in ranked]
    if rows is None:
        rows = snap.docs.chunk_rows(ids)
    hits: list[SearchHit] = []
    for (pos, score), rid in zip(ranked, ids, strict=True):
        row = rows.get(rid)
        if row is None:
            continue
        meta = row["metadata"]
        if extra is not None:
            meta["scores"] = extra[pos]
        hits.append(
            SearchHit(
                chunk_id=row["chunk_id"],
                document_id=row["document_id"],
                source=row["source"],
                page=row["page"],
                score=float(score),
                text=row["text"],
                metadata=meta,
            )
        )
    return hits
