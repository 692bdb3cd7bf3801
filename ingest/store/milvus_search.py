"""Dense, BM25 and hybrid search over ragserve's Milvus collections (layout: `milvus_schema`).

Hybrid fusion is ragserve's own (`ingest.search.fuse`), computed over Milvus's dense and BM25
candidates: both rankers' scores of every pooled candidate come from Milvus (vectors fetched,
BM25 re-scored within the pool), lexical coverage from Milvus's per-term document counts.
Milvus's RRF and weighted rankers were measured against it (docs/benchmarks.md). Readers keep only
chunks whose generation is their document's current one (`milvus_writer` says why).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from ingest.errors import IngestError
from ingest.search import _lap, fuse_pool, script_gaps
from ingest.store.backend import QueryEncoder
from ingest.store.milvus_schema import (
    CHUNK_FIELDS,
    QUERY_WINDOW,
    chunks_collection,
    collection_names,
    filter_expression,
    query_terms,
    quote,
)
from ingest.store.vectors import HNSW_EF_SEARCH
from ingest.types import SearchHit

CANDIDATES = 50
DF_CACHE_SIZE = 50_000


class MilvusSearch:
    """Searches one Milvus database; `call(what, fn, *args, **kwargs)` makes one Milvus call."""

    def __init__(self, client: Any, call: Callable[..., Any]) -> None:
        self.client = client
        self._call = call
        self._lock = threading.Lock()
        self._df_cache: OrderedDict[tuple[str, int, str], int] = OrderedDict()

    def search(
        self,
        name: str,
        record: dict[str, Any],
        query: str,
        *,
        encoder: QueryEncoder | None,
        top_k: int,
        mode: str,
        filters: dict[str, Any] | None,
        timings: dict[str, float] | None,
    ) -> list[SearchHit]:
        """Top chunks of collection `name` (its `record` read by the caller) in one of `MODES`."""
        expr = filter_expression(filters)
        if top_k <= 0 or int(record.get("chunks", 0)) == 0 or not query.strip() or expr == "":
            return []
        chunks_coll = chunks_collection(name, record)
        k = max(CANDIDATES, top_k)
        t = time.perf_counter()
        dense: list[dict[str, Any]] = []
        q: np.ndarray | None = None
        if mode in ("dense", "hybrid"):
            if encoder is None:
                raise IngestError("dense search needs the embedding model")
            q = np.asarray(encoder.encode(query), dtype=np.float32)
            t = _lap(timings, "embed", t)
            dense = self._visible(name, self._dense(chunks_coll, q, k, expr))
            t = _lap(timings, "dense", t)
        terms: list[str] = []
        bm25: list[dict[str, Any]] = []
        if mode in ("bm25", "hybrid"):
            terms = query_terms(query)
            if terms:
                bm25 = self._visible(name, self._bm25(chunks_coll, " ".join(terms), k, expr))
            t = _lap(timings, "bm25", t)
        if mode == "dense":
            return [_hit(h, h["score"]) for h in dense[:top_k]]
        if mode == "bm25":
            return [_hit(h, h["score"]) for h in bm25[:top_k]]
        assert q is not None
        return self._fuse(
            name, chunks_coll, query, q, encoder, terms, dense, bm25, expr, top_k, record, timings, t
        )

    def _dense(self, coll: str, q: np.ndarray, k: int, expr: str | None) -> list[dict[str, Any]]:
        res = self._call(
            "search",
            self.client.search,
            coll,
            data=[q.tolist()],
            anns_field="vector",
            limit=k,
            filter=expr or "",
            search_params={"metric_type": "IP", "params": {"ef": max(HNSW_EF_SEARCH, k)}},
            output_fields=CHUNK_FIELDS,
        )
        return [_row(h, float(h["distance"])) for h in res[0]]

    def _bm25(self, coll: str, text: str, k: int, expr: str | None) -> list[dict[str, Any]]:
        res = self._call(
            "search",
            self.client.search,
            coll,
            data=[text],
            anns_field="sparse",
            limit=k,
            filter=expr or "",
            search_params={"metric_type": "BM25"},
            output_fields=[*CHUNK_FIELDS, "lexical"],
        )
        # Milvus Lite reports BM25 as a negated distance, a server (2.5) as the score itself: the
        # score is its absolute value, and the order is made here, whatever order the engine chose.
        rows = [_row(h, abs(float(h["distance"]))) for h in res[0]]
        rows.sort(key=lambda r: -float(r["score"]))
        return rows

    def _visible(self, name: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows whose generation is their document's current one (see the module docstring)."""
        if not rows:
            return rows
        _chunks, docs = collection_names(name)
        ids = list({r["document_id"] for r in rows})
        current = {
            d["document_id"]: d["gen"]
            for d in self._call("get", self.client.get, docs, ids=ids, output_fields=["gen"])
        }
        return [r for r in rows if current.get(r["document_id"]) == r["gen"]]

    def _fuse(
        self,
        name: str,
        coll: str,
        query: str,
        q: np.ndarray,
        encoder: QueryEncoder | None,
        terms: list[str],
        dense: list[dict[str, Any]],
        bm25: list[dict[str, Any]],
        expr: str | None,
        top_k: int,
        record: dict[str, Any],
        timings: dict[str, float] | None,
        t: float,
    ) -> list[SearchHit]:
        """ragserve's fusion (`ingest.search.fuse`) of Milvus's dense and BM25 candidates."""
        pool: dict[str, dict[str, Any]] = {}
        for r in (*dense, *bm25):
            pool.setdefault(r["pk"], r)
        keys = list(pool)
        d_of = {r["pk"]: r["score"] for r in dense}
        b_of = {r["pk"]: r["score"] for r in bm25}
        # Score every candidate by both rankers, so one a ranker missed is judged on its real score.
        missing_d = [k for k in keys if k not in d_of]
        if missing_d:
            rows = self._call("get", self.client.get, coll, ids=missing_d, output_fields=["vector"])
            for row in rows:
                d_of[row["pk"]] = float(np.asarray(row["vector"], dtype=np.float32) @ q)
        missing_b = [k for k in keys if k not in b_of]
        if missing_b and terms:
            within = "pk in [" + ", ".join(quote(k) for k in missing_b) + "]"
            for r in self._bm25(
                coll, " ".join(terms), len(missing_b), f"({expr}) and {within}" if expr else within
            ):
                b_of[r["pk"]] = r["score"]
        dense_all = np.asarray([d_of.get(k, 0.0) for k in keys], dtype=np.float32)
        bm25_all = np.asarray([b_of.get(k, 0.0) for k in keys], dtype=np.float32)
        d_ref = np.asarray([r["score"] for r in dense], dtype=np.float32)
        b_ref = np.asarray([r["score"] for r in bm25], dtype=np.float32)
        coverage = self._coverage(name, coll, terms, bm25[0]["lexical"], record) if bm25 else 0.0
        multilingual = encoder.multilingual if encoder is not None else False
        gaps = np.zeros(len(keys))
        if multilingual and bm25:
            # How far each candidate's script is from the query's (`ingest.search.fusion_weights`).
            gaps = script_gaps(query, [str(pool[k]["text"]) for k in keys])
        pooled = fuse_pool(
            query,
            dense_all,
            bm25_all,
            d_ref,
            b_ref,
            multilingual_embedder=multilingual,
            lexical_coverage=coverage,
            script_gaps=gaps,
            bm25_ref_size=min(max(CANDIDATES, top_k), int(record.get("chunks", 0))),
        )
        order = np.argsort(-pooled.scores, kind="stable")[:top_k]
        _lap(timings, "fuse", t)
        hits = []
        for i in order.tolist():
            hit = _hit(pool[keys[i]], float(pooled.scores[i]))
            hit.metadata["scores"] = pooled.detail(i)
            hits.append(hit)
        return hits

    def _coverage(self, name: str, coll: str, terms: list[str], best: str, record: dict[str, Any]) -> float:
        """Share of the query's IDF mass whose terms are in BM25's best chunk (`LexicalIndex.coverage`)."""
        if not terms:
            return 0.0
        present = set(best.split(" "))
        n = max(int(record.get("chunks", 0)), 1)
        total = found = 0.0
        for term, df in zip(terms, self._dfs(name, coll, int(record.get("version", 0)), terms), strict=True):
            if df == 0:
                continue  # not in the collection's vocabulary: FAISS's BM25 drops such query words too
            idf = math.log(1.0 + (n - df + 0.5) / (df + 0.5))
            total += idf
            if term in present:
                found += idf
        return found / total if total > 0 else 0.0

    def _dfs(self, name: str, coll: str, version: int, terms: list[str]) -> list[int]:
        """How many chunks hold each term, cached per collection version.

        One BM25 search with each term as its own query: Milvus returns only chunks that hold the
        term, so the hit count is the document frequency (capped at QUERY_WINDOW, where IDF is
        small anyway). Measured here 5-20x faster than a TEXT_MATCH count per term on Milvus Lite.
        """
        with self._lock:
            cached = {
                t: self._df_cache[(name, version, t)] for t in terms if (name, version, t) in self._df_cache
            }
        missing = [t for t in terms if t not in cached]
        if missing:
            res = self._call(
                "search",
                self.client.search,
                coll,
                data=missing,
                anns_field="sparse",
                limit=QUERY_WINDOW,
                output_fields=[],
                search_params={"metric_type": "BM25"},
            )
            with self._lock:
                for term, hits in zip(missing, res, strict=True):
                    cached[term] = self._df_cache[(name, version, term)] = len(hits)
                while len(self._df_cache) > DF_CACHE_SIZE:
                    self._df_cache.popitem(last=False)
        return [cached[t] for t in terms]


def _row(hit: dict[str, Any], score: float) -> dict[str, Any]:
    entity = dict(hit.get("entity") or {})
    entity["pk"] = hit.get("pk", hit.get("id"))
    entity["score"] = score
    return entity


def _hit(row: dict[str, Any], score: float) -> SearchHit:
    meta = dict(row.get("metadata") or {})
    meta.update({"start": row.get("start"), "end": row.get("end")})
    page = row.get("page")
    return SearchHit(
        chunk_id=row["chunk_id"],
        document_id=row["document_id"],
        source=row["source"],
        page=int(page) if page is not None else None,
        score=float(score),
        text=row["text"],
        metadata=meta,
    )
