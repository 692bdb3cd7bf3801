"""FAISS vector index: exact inner product while small, HNSW above a size threshold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faiss
import numpy as np

FILENAME = "vectors.faiss"
HNSW_THRESHOLD = 50_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 128
HNSW_EF_SEARCH = 128


def build_index(vectors: np.ndarray, hnsw_threshold: int = HNSW_THRESHOLD) -> Any:
    """Index for normalized vectors (inner product = cosine); position i is row i of `vectors`."""
    n, dim = vectors.shape
    index: Any
    if n >= hnsw_threshold:
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    else:
        index = faiss.IndexFlatIP(dim)
    if n:
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def is_hnsw(index: Any) -> bool:
    """Whether an index is an HNSW graph (one that a new version can extend instead of rebuilding)."""
    return isinstance(index, faiss.IndexHNSW)


def save_index(index: Any, path: Path) -> None:
    """Write the index to a file."""
    faiss.write_index(index, str(path))


def load_index(path: Path) -> Any:
    """Read an index written by `save_index`."""
    return faiss.read_index(str(path))


def search(
    index: Any,
    query: np.ndarray,
    k: int,
    allowed: np.ndarray | None = None,
    excluded: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (scores, positions) for one query; `allowed` restricts to those positions, `excluded`
    (tombstones, ignored when `allowed` is given: that comes from live chunks) leaves those out."""
    if index.ntotal == 0 or k <= 0:
        return np.zeros(0, np.float32), np.zeros(0, np.int64)
    if allowed is not None or excluded is None or len(excluded) == 0:
        excluded = None
    if allowed is not None:
        k = min(k, len(allowed))
    else:
        k = min(k, index.ntotal - (len(excluded) if excluded is not None else 0))
    if k == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.int64)
    q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
    is_hnsw = isinstance(index, faiss.IndexHNSW)
    params: Any = None
    if is_hnsw:
        params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]  # missing from faiss's stubs
        params.efSearch = max(HNSW_EF_SEARCH, k)
    selector: Any = None  # kept referenced until the search returns (params.sel does not own it)
    if allowed is not None:
        selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
    elif excluded is not None:
        inner = faiss.IDSelectorBatch(np.ascontiguousarray(excluded, dtype=np.int64))
        selector = faiss.IDSelectorNot(inner)
        selector.inner = inner  # keep the wrapped selector alive with its owner
    if selector is not None:
        if params is None:
            params = faiss.SearchParameters()
        params.sel = selector
    scores, ids = index.search(q, k, params=params)
    keep = ids[0] >= 0
    return scores[0][keep], ids[0][keep].astype(np.int64)


def vectors_at(index: Any, positions: np.ndarray) -> np.ndarray:
    """Stored vectors at the given positions (both index kinds keep full vectors)."""
    if len(positions) == 0:
        return np.zeros((0, index.d), np.float32)
    return np.asarray(
        index.reconstruct_batch(np.ascontiguousarray(positions, dtype=np.int64)), dtype=np.float32
    )
