"""Collections in Milvus: a server or cluster (`http://host:19530`) or Milvus Lite (a local file).

Layout, in the configured Milvus database (`store.milvus.db_name`), per ragserve collection NAME:
- `ragserve_c_<NAME>`: one row per chunk: text, page, offsets, metadata (JSON), the embedding
  (HNSW, inner product on normalized vectors = cosine) and `lexical`, the chunk's BM25 terms, which
  Milvus's BM25 function turns into the sparse field `sparse` (full-text search, SPARSE_INVERTED_INDEX).
- `ragserve_d_<NAME>`: one row per document (sha256, origin, source root, chunk count, the
  generation its visible chunks carry) and one reserved row, id "/" (never a document id), holding
  the collection's record (embedding model and dimension, created_at, version, counts, updated_at).
Names are encoded into Milvus's alphabet (`_` -> `_0`, `-` -> `_1`, `.` -> `_2`).

BM25 terms: `lexical` holds the chunk's terms as the FAISS backend's BM25 makes them
(`ingest.store.lexical`: jieba words for CJK text, Snowball-stemmed English words, no stopwords),
joined by spaces; the field's analyzer is the `jieba` tokenizer in exact mode, a spelling both
Milvus Lite and the server accept, which splits that text back into the same terms. So Lite and a
server index the same terms, and the same as FAISS: what differs is IDF, which Milvus Lite takes
per segment and a server per segment too (sealed segments are large there), while bm25s takes it
over the whole collection.

Consistency: each ingest is one generation G. A document's new chunks are written under G first,
then its document row is switched to G (one row: atomic), then its older chunks are deleted. Readers
keep only chunks whose generation is their document's current one, so during an ingest, after a
failure or after kill -9, every document is seen whole, old or new, never mixed; a document being
deleted disappears when its row does. Unlike FAISS, where a whole ingest is published at once, a
reader may see some documents of a running ingest already replaced and others not yet. A writer
records G in the collection record before writing; the next writer removes what a dead one left.

Hybrid fusion is ragserve's own (`ingest.search.fuse`), computed over Milvus's dense and BM25
candidates: both rankers' scores of every pooled candidate come from Milvus (vectors fetched,
BM25 re-scored within the pool), lexical coverage from Milvus's per-term document counts.
Milvus's RRF and weighted rankers were measured against it (docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ingest.chunking import Chunk
from ingest.errors import CollectionNotFound, IngestError, StorageError, StoreBusy
from ingest.loaders.base import LoadedDocument
from ingest.search import MODES, _lap, fuse, fusion_weights, script_gap
from ingest.store import lexical
from ingest.store.backend import CollectionWriter, QueryEncoder, StoreBackend
from ingest.store.collection import utc_now
from ingest.store.docstore import COLUMNS, parse_filters
from ingest.store.names import validate_name
from ingest.store.vectors import HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M
from ingest.types import DocumentInfo, SearchHit

log = logging.getLogger(__name__)

CHUNKS_PREFIX = "ragserve_c_"
DOCS_PREFIX = "ragserve_d_"
RECORD_ID = "/"  # the record row's id: normalize_document_id refuses ids starting with "/"
LEASE_ID = "//lease"  # the writer lease row
MAX_ID = 2048  # document ids are at most 1024 characters; chunk keys add "#n@generation"
MAX_TEXT = 65535
# bm25s's defaults (the FAISS backend's BM25), so both score alike.
BM25_K1 = 1.5
BM25_B = 0.75
ANALYZER: dict[str, Any] = {
    "tokenizer": {"type": "jieba", "mode": "exact"},
    # The server lowercases and drops punctuation-only tokens with these; Milvus Lite's jieba
    # tokenizer lowercases by itself and ignores them (our terms carry no punctuation anyway).
    "filter": ["lowercase", "removepunct"],
}
CANDIDATES = 50
QUERY_WINDOW = 16384  # Milvus's largest offset + limit of one query; past it, a query iterator
# A server's writer lease not renewed for this long is taken over (its writer died without aborting);
# a live writer renews it every LEASE_RENEW_S while it writes.
LEASE_S = 120.0
LEASE_RENEW_S = 20.0
CHUNK_FIELDS = ["chunk_id", "document_id", "gen", "source", "page", "start", "end", "text", "metadata"]
DOC_FIELDS = ["document_id", "source", "origin", "sha256", "chunks", "ingested_at", "root", "gen"]


def encode_name(name: str) -> str:
    """A ragserve collection name in Milvus's alphabet ([A-Za-z0-9_]), reversibly."""
    return validate_name(name).replace("_", "_0").replace("-", "_1").replace(".", "_2")


def decode_name(encoded: str) -> str | None:
    """The ragserve name of an encoded one (None if it is not one)."""
    out: list[str] = []
    it = iter(encoded)
    for ch in it:
        if ch == "_":
            code = next(it, "")
            if code not in ("0", "1", "2"):
                return None
            out.append({"0": "_", "1": "-", "2": "."}[code])
        else:
            out.append(ch)
    return "".join(out)


def _quote(value: Any) -> str:
    """A value as a Milvus expression literal (strings JSON-quoted: quotes and backslashes escaped)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise IngestError("filter values must be finite numbers")
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)


def filter_expression(filters: dict[str, Any] | None) -> str | None:
    """A Milvus boolean expression for ragserve's equality filters; "" when nothing can match.

    Column keys (document_id, source, page, chunk_id) compare fields, others metadata JSON keys;
    a list means any-of. null matches nothing, as in the FAISS backend's SQL.
    """
    if not filters:
        return None
    parts: list[str] = []
    for key, values in parse_filters(filters):
        present = [v for v in values if v is not None]
        if not present:
            return ""
        field = key if key in COLUMNS else f"metadata[{json.dumps(key)}]"
        if key in COLUMNS and key != "page":
            present = [str(v) for v in present]
        # Milvus Lite accepts `in` on fields only; an or-chain works on both and on JSON keys.
        parts.append("(" + " or ".join(f"{field} == {_quote(v)}" for v in present) + ")")
    return " and ".join(parts) if parts else None


def _bm25_text(tokens: list[str]) -> str:
    """A chunk's BM25 terms from its surface tokens (as FAISS's BM25 indexes them), joined by spaces."""
    return " ".join(lexical.DEFAULT.apply(tokens))


def _query_terms(query: str) -> list[str]:
    """A query's BM25 terms (question words dropped, as `LexicalIndex.query_tokens` does)."""
    words = [w for w in lexical.tokenize(query) if w not in lexical.QUESTION_WORDS]
    return list(dict.fromkeys(lexical.DEFAULT.apply(words)))


class MilvusBackend(StoreBackend):
    """Collections in one Milvus database; `client` is a pymilvus MilvusClient."""

    name = "milvus"

    def __init__(
        self, uri: str, *, token: str = "", db_name: str = "default", timeout_s: float = 30.0
    ) -> None:
        try:
            from pymilvus import MilvusClient
        except ImportError as exc:  # a pinned dependency; only a broken install lands here
            raise StorageError(
                "the milvus store backend needs pymilvus: pip install 'pymilvus[milvus-lite]'"
            ) from exc
        self.uri = uri
        self.timeout_s = timeout_s
        # Milvus Lite holds its file with a lock: one process writes it, so no lease is needed there.
        self.lite = "://" not in uri
        if self.lite:
            with contextlib.suppress(OSError):
                Path(uri).expanduser().parent.mkdir(parents=True, exist_ok=True)
            # Its engine logs each background index build at INFO, and a traceback when the file is
            # locked by another process (the StorageError below says so in one line).
            logging.getLogger("milvus_lite").setLevel(logging.WARNING)
            logging.getLogger("milvus_lite.server_manager").setLevel(logging.CRITICAL)
        try:
            self.client = MilvusClient(uri=uri, token=token, db_name=db_name, timeout=timeout_s)
        except Exception as exc:
            hint = ""
            if self.lite:
                hint = " (Milvus Lite opens a file in one process only: does a gateway or an ingest hold it?)"
            raise StorageError(f"cannot open Milvus at {uri}: {_one_line(exc)}{hint}") from exc
        self._lock = threading.Lock()
        self._writers: set[str] = set()  # collections this process is writing
        self._loaded: set[str] = set()  # collections this process has loaded
        self._df_cache: OrderedDict[tuple[str, int, str], int] = OrderedDict()

    # ----- helpers --------------------------------------------------------------------------------
    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A Milvus call; its failure becomes StorageError (IngestError subclasses pass through)."""
        try:
            return fn(*args, timeout=self.timeout_s, **kwargs)
        except IngestError:
            raise
        except Exception as exc:
            raise StorageError(f"Milvus {what} failed: {_one_line(exc)}") from exc

    @staticmethod
    def _names(name: str) -> tuple[str, str]:
        enc = encode_name(name)
        return CHUNKS_PREFIX + enc, DOCS_PREFIX + enc

    def _load(self, name: str) -> None:
        """Load a collection pair into memory once per process (a reopened Milvus Lite file, or a
        server restarted, starts with its collections released)."""
        with self._lock:
            if name in self._loaded:
                return
        for coll in self._names(name):
            self._call("load_collection", self.client.load_collection, coll)
        with self._lock:
            self._loaded.add(name)

    def _get_record(self, name: str) -> dict[str, Any] | None:
        _chunks, docs = self._names(name)
        if not self._call("has_collection", self.client.has_collection, docs):
            with self._lock:
                self._loaded.discard(name)
            return None
        self._load(name)
        rows = self._call("get", self.client.get, docs, ids=[RECORD_ID], output_fields=["metadata"])
        if not rows:
            return None
        record = rows[0]["metadata"]
        if not isinstance(record, dict) or record.get("creating"):
            return None  # a first ingest that has not committed (or died): not a collection yet
        return dict(record)

    # ----- reading --------------------------------------------------------------------------------
    def exists(self, name: str) -> bool:
        return self._get_record(name) is not None

    def records(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for coll in sorted(self._call("list_collections", self.client.list_collections)):
            if not coll.startswith(DOCS_PREFIX):
                continue
            name = decode_name(coll[len(DOCS_PREFIX) :])
            if name is None:
                continue
            with contextlib.suppress(CollectionNotFound, StorageError, IngestError):
                record = self._get_record(name)
                if record is not None:
                    out[name] = record
        return out

    def record(self, name: str) -> dict[str, Any]:
        record = self._get_record(name)
        if record is None:
            raise CollectionNotFound(f"collection {name!r} does not exist")
        return record

    def query_all(self, coll: str, expr: str, fields: list[str], expected: int) -> list[dict[str, Any]]:
        """Every row matching expr; `expected`: about how many there are (picks one query or an iterator)."""
        if expected < QUERY_WINDOW // 2:
            rows = self._call(
                "query", self.client.query, coll, filter=expr, output_fields=fields, limit=QUERY_WINDOW
            )
            if len(rows) < QUERY_WINDOW:
                return list(rows)
        out: list[dict[str, Any]] = []
        it = self._call(
            "query", self.client.query_iterator, coll, batch_size=1000, filter=expr, output_fields=fields
        )
        try:
            while batch := it.next():
                out.extend(batch)
        finally:
            it.close()
        return out

    def _doc_rows(self, name: str, fields: list[str], expected: int = 0) -> list[dict[str, Any]]:
        """Every document row (the record and lease rows left out)."""
        _chunks, docs = self._names(name)
        return self.query_all(docs, 'document_id != "/" and document_id != "//lease"', fields, expected)

    def list_documents(self, name: str) -> list[DocumentInfo]:
        record = self.record(name)
        rows = self._doc_rows(name, DOC_FIELDS, int(record.get("documents", 0)))
        return sorted(
            (
                DocumentInfo(
                    document_id=r["document_id"],
                    source=r["source"],
                    chunks=int(r["chunks"]),
                    sha256=r["sha256"],
                    ingested_at=r["ingested_at"],
                )
                for r in rows
            ),
            key=lambda d: d.document_id,
        )

    def chunk_count(self, name: str) -> int:
        return int(self.record(name).get("chunks", 0))

    def search(
        self,
        name: str,
        query: str,
        *,
        encoder: QueryEncoder | None,
        top_k: int,
        mode: str,
        filters: dict[str, Any] | None,
        timings: dict[str, float] | None,
    ) -> list[SearchHit]:
        if mode not in MODES:
            raise IngestError(f"unknown search mode {mode!r}; use one of {', '.join(MODES)}")
        record = self.record(name)
        expr = filter_expression(filters)
        if top_k <= 0 or int(record.get("chunks", 0)) == 0 or not query.strip() or expr == "":
            return []
        chunks_coll, _docs = self._names(name)
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
            terms = _query_terms(query)
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
        # Milvus Lite reports BM25 as a negated distance, a server as the score: the score is >= 0.
        return [_row(h, abs(float(h["distance"]))) for h in res[0]]

    def _visible(self, name: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows whose generation is their document's current one (see the module docstring)."""
        if not rows:
            return rows
        _chunks, docs = self._names(name)
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
            within = "pk in [" + ", ".join(_quote(k) for k in missing_b) + "]"
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
        gap = 0.0
        if multilingual and bm25:
            # The script the answer is in, as either ranker's best chunk shows it (`fusion_weights`).
            firsts = [bm25[0]["text"], dense[0]["text"]] if dense else [bm25[0]["text"]]
            gap = max(script_gap(query, text) for text in firsts)
        fused = fuse(
            query,
            dense_all,
            bm25_all,
            d_ref,
            b_ref,
            multilingual_embedder=multilingual,
            lexical_coverage=coverage,
            script_gap=gap,
        )
        order = np.argsort(-fused, kind="stable")[:top_k]
        _lap(timings, "fuse", t)
        w = fusion_weights(
            query,
            multilingual_embedder=multilingual,
            bm25_found=len(b_ref) > 0,
            dense_found=len(d_ref) > 0,
            lexical_coverage=coverage,
            script_gap=gap,
        )
        hits = []
        for i in order.tolist():
            hit = _hit(pool[keys[i]], float(fused[i]))
            hit.metadata["scores"] = {
                "dense": float(dense_all[i]),
                "bm25": float(bm25_all[i]),
                "lexical_coverage": round(coverage, 4),
                "script_gap": round(gap, 4),
                "dense_weight": round(w.dense, 4),
            }
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
                while len(self._df_cache) > 50_000:
                    self._df_cache.popitem(last=False)
        return [cached[t] for t in terms]

    # ----- writing --------------------------------------------------------------------------------
    def _create(self, name: str, base: dict[str, Any]) -> None:
        from pymilvus import DataType, Function, FunctionType, MilvusClient

        chunks, docs = self._names(name)
        dim = int(base["dimension"])
        for coll in (docs, chunks):  # left by a first ingest that died before committing
            if self._call("has_collection", self.client.has_collection, coll):
                self._call("drop_collection", self.client.drop_collection, coll)
        with self._lock:
            self._loaded.discard(name)
        s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        s.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=MAX_ID)
        s.add_field("chunk_id", DataType.VARCHAR, max_length=MAX_ID)
        s.add_field("document_id", DataType.VARCHAR, max_length=MAX_ID)
        s.add_field("gen", DataType.VARCHAR, max_length=64)
        s.add_field("source", DataType.VARCHAR, max_length=MAX_TEXT)
        s.add_field("page", DataType.INT64, nullable=True)
        s.add_field("start", DataType.INT64)
        s.add_field("end", DataType.INT64)
        s.add_field("text", DataType.VARCHAR, max_length=MAX_TEXT)
        s.add_field(
            "lexical",
            DataType.VARCHAR,
            max_length=MAX_TEXT,
            enable_analyzer=True,
            analyzer_params=ANALYZER,
        )
        s.add_field("metadata", DataType.JSON)
        s.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        s.add_function(
            Function(
                name="bm25",
                function_type=FunctionType.BM25,
                input_field_names=["lexical"],
                output_field_names=["sparse"],
            )
        )
        ip = self.client.prepare_index_params()
        ip.add_index(
            field_name="vector",
            index_type="HNSW",
            metric_type="IP",
            params={"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION},
        )
        ip.add_index(
            field_name="sparse",
            index_type="SPARSE_INVERTED_INDEX",
            metric_type="BM25",
            params={"bm25_k1": BM25_K1, "bm25_b": BM25_B},
        )
        self._call(
            "create_collection",
            self.client.create_collection,
            chunks,
            schema=s,
            index_params=ip,
            consistency_level="Strong",
        )
        d = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        d.add_field("document_id", DataType.VARCHAR, is_primary=True, max_length=MAX_ID)
        d.add_field("source", DataType.VARCHAR, max_length=MAX_TEXT)
        d.add_field("origin", DataType.VARCHAR, max_length=MAX_ID)
        d.add_field("sha256", DataType.VARCHAR, max_length=64)
        d.add_field("chunks", DataType.INT64)
        d.add_field("ingested_at", DataType.VARCHAR, max_length=32)
        d.add_field("root", DataType.VARCHAR, max_length=MAX_TEXT, nullable=True)
        d.add_field("gen", DataType.VARCHAR, max_length=64)
        d.add_field("metadata", DataType.JSON)
        d.add_field("unused", DataType.FLOAT_VECTOR, dim=2)  # Milvus wants a vector field in every collection
        dip = self.client.prepare_index_params()
        dip.add_index(field_name="unused", index_type="FLAT", metric_type="L2")
        self._call(
            "create_collection",
            self.client.create_collection,
            docs,
            schema=d,
            index_params=dip,
            consistency_level="Strong",
        )

    @contextlib.contextmanager
    def writing(
        self, name: str, *, create: bool, base: Callable[[], dict[str, Any]]
    ) -> Iterator[CollectionWriter]:
        validate_name(name)
        with self._lock:
            if name in self._writers:
                raise StoreBusy(
                    f"collection {name!r} is being written by another job; retry when it finishes"
                )
            self._writers.add(name)
        try:
            record = self._get_record(name)
            if record is None and not create:
                raise CollectionNotFound(f"collection {name!r} does not exist")
            writer = MilvusWriter(self, name, record, base)
            writer.begin()
            try:
                yield writer
            except BaseException:
                writer.abort()
                raise
            finally:
                writer.release()
        finally:
            with self._lock:
                self._writers.discard(name)

    def delete_collection(self, name: str) -> None:
        self.record(name)
        chunks, docs = self._names(name)
        # The documents collection (with the record) first: the name is gone for readers at once.
        with self._lock:
            self._loaded.discard(name)
        self._call("drop_collection", self.client.drop_collection, docs)
        self._call("drop_collection", self.client.drop_collection, chunks)

    def close(self) -> None:
        """Close the connection; with Milvus Lite also stop its in-process server, freeing the file
        for another process (every backend of this process on that file is closed with it)."""
        with contextlib.suppress(Exception):
            self.client.close()
        if self.lite:
            with contextlib.suppress(Exception):
                from milvus_lite.server_manager import server_manager_instance

                server_manager_instance.release_server(self.uri)


class MilvusWriter(CollectionWriter):
    """One ingest generation in one Milvus collection (see the module docstring)."""

    def __init__(
        self,
        backend: MilvusBackend,
        name: str,
        record: dict[str, Any] | None,
        base: Callable[[], dict[str, Any]],
    ) -> None:
        self.b = backend
        self.name = name
        self.record = record
        self._base = base
        self.gen = uuid.uuid4().hex
        self.chunks_coll, self.docs_coll = MilvusBackend._names(name)
        self._changed = False
        self._lease = False
        self._renewed = -math.inf

    # record and lease rows live in the documents collection
    def _put_row(self, doc_id: str, metadata: dict[str, Any], gen: str = "") -> None:
        row = {
            "document_id": doc_id,
            "source": "",
            "origin": "",
            "sha256": "",
            "chunks": 0,
            "ingested_at": utc_now(),
            "root": None,
            "gen": gen,
            "metadata": metadata,
            "unused": [0.0, 0.0],
        }
        self.b._call("upsert", self.b.client.upsert, self.docs_coll, [row])

    def begin(self) -> None:
        """Take the writer lease, create a new collection, clean up after a writer that died."""
        if self.record is None:
            base = self._base()
            self.b._create(self.name, base)
            # Hidden from readers ("creating") until the first commit, as a new FAISS collection is.
            self._pending_record = {
                **base, "version": 0, "documents": 0, "chunks": 0, "updated_at": utc_now(), "creating": True
            }  # fmt: skip
        else:
            self._pending_record = dict(self.record)
        if not self.b.lite:
            rows = self.b._call(
                "get", self.b.client.get, self.docs_coll, ids=[LEASE_ID], output_fields=["metadata"]
            )
            lease = (rows[0]["metadata"] or {}) if rows else {}
            age = time.time() - float(lease.get("renewed", 0))
            if lease.get("holder") and age < LEASE_S:
                raise StoreBusy(
                    f"collection {self.name!r} is being written by another process; retry when it "
                    f"finishes (a writer that died frees it after {LEASE_S - age:.0f} s)"
                )
            self._renew()
        stale = self._pending_record.get("pending")
        if stale:
            log.warning(
                "collection %s: cleaning up after an interrupted ingest (generation %s)", self.name, stale
            )
            self._sweep(str(stale))
        self._pending_record["pending"] = self.gen
        self._put_row(RECORD_ID, self._pending_record)

    def _renew(self, *, every: float = 0.0) -> None:
        """Take or renew the writer lease (a server only), at most once per `every` seconds."""
        if self.b.lite or time.monotonic() - self._renewed < every:
            return
        self._put_row(LEASE_ID, {"holder": self.gen, "renewed": time.time()})
        self._renewed = time.monotonic()
        self._lease = True

    def release(self) -> None:
        """Drop the writer lease (never raises)."""
        if self._lease:
            with contextlib.suppress(Exception):
                self.b._call("delete", self.b.client.delete, self.docs_coll, ids=[LEASE_ID])
            self._lease = False

    def _sweep(self, gen: str) -> None:
        """Remove what an unfinished generation left: chunks of documents it never switched to,
        and the older chunks of documents it did switch."""
        switched = [
            r["document_id"]
            for r in self.b._call(
                "query",
                self.b.client.query,
                self.docs_coll,
                filter=f"gen == {_quote(gen)}",
                output_fields=["gen"],
            )
        ]
        if switched:
            ids = ", ".join(_quote(d) for d in switched)
            self.b._call(
                "delete",
                self.b.client.delete,
                self.chunks_coll,
                filter=f"gen == {_quote(gen)} and not (document_id in [{ids}])",
            )
            self.b._call(
                "delete",
                self.b.client.delete,
                self.chunks_coll,
                filter=f"document_id in [{ids}] and gen != {_quote(gen)}",
            )
        else:
            self.b._call("delete", self.b.client.delete, self.chunks_coll, filter=f"gen == {_quote(gen)}")
        # Chunks of documents deleted while their row was already gone.
        documents = int(self._pending_record.get("documents", 0))
        live = {r["document_id"] for r in self.b._doc_rows(self.name, ["document_id"], documents)}
        chunks = self.b.query_all(
            self.chunks_coll, 'document_id != ""', ["document_id"], int(self._pending_record.get("chunks", 0))
        )
        orphans = {r["document_id"] for r in chunks if r["document_id"] not in live}
        for i in range(0, len(orphans), 500):
            part = ", ".join(_quote(d) for d in sorted(orphans)[i : i + 500])
            self.b._call("delete", self.b.client.delete, self.chunks_coll, filter=f"document_id in [{part}]")

    def fingerprints(self) -> dict[str, tuple[str, str, str | None]]:
        if self.record is None:
            return {}
        rows = self.b._doc_rows(
            self.name, ["document_id", "sha256", "origin", "root"], int(self.record.get("documents", 0))
        )
        return {r["document_id"]: (r["sha256"], r["origin"], r.get("root")) for r in rows}

    def put_document(
        self,
        doc: LoadedDocument,
        origin: str,
        chunks: list[Chunk],
        embeddings: np.ndarray,
        *,
        root: str | None,
        tokens: list[list[str]] | None = None,
    ) -> None:
        self._renew(every=LEASE_RENEW_S)
        rows = []
        if tokens is None:
            tokens = [lexical.tokenize(c.index_text) for c in chunks]
        for c, e, t in zip(chunks, embeddings, tokens, strict=True):
            if len(c.text.encode("utf-8")) > MAX_TEXT:
                raise IngestError(
                    f"{doc.document_id}: a chunk is longer than Milvus's {MAX_TEXT}-byte text field"
                )
            rows.append(
                {
                    "pk": f"{c.chunk_id}@{self.gen}",
                    "chunk_id": c.chunk_id,
                    "document_id": c.document_id,
                    "gen": self.gen,
                    "source": c.source,
                    "page": c.page,
                    "start": c.start,
                    "end": c.end,
                    "text": c.text,
                    "lexical": _bm25_text(t)[:MAX_TEXT],
                    "metadata": c.metadata,
                    "vector": np.asarray(e, dtype=np.float32).tolist(),
                }
            )
        for i in range(0, len(rows), 256):
            self.b._call("insert", self.b.client.insert, self.chunks_coll, rows[i : i + 256])
        # The switch: one row names the generation readers take this document's chunks from.
        doc_row = {
            "document_id": doc.document_id,
            "source": doc.source,
            "origin": origin,
            "sha256": doc.sha256,
            "chunks": len(chunks),
            "ingested_at": utc_now(),
            "root": root,
            "gen": self.gen,
            "metadata": doc.metadata,
            "unused": [0.0, 0.0],
        }
        self.b._call("upsert", self.b.client.upsert, self.docs_coll, [doc_row])
        self.b._call(
            "delete",
            self.b.client.delete,
            self.chunks_coll,
            filter=f"document_id == {_quote(doc.document_id)} and gen != {_quote(self.gen)}",
        )
        self._changed = True

    def delete_document(self, document_id: str) -> bool:
        rows = self.b._call(
            "get", self.b.client.get, self.docs_coll, ids=[document_id], output_fields=["gen"]
        )
        if not rows or document_id in (RECORD_ID, LEASE_ID):
            return False
        self.b._call("delete", self.b.client.delete, self.docs_coll, ids=[document_id])
        self.b._call(
            "delete", self.b.client.delete, self.chunks_coll, filter=f"document_id == {_quote(document_id)}"
        )
        self._changed = True
        return True

    def set_roots(self, roots: dict[str, str]) -> None:
        ids = list(roots)
        for i in range(0, len(ids), 500):
            rows = self.b._call(
                "get",
                self.b.client.get,
                self.docs_coll,
                ids=ids[i : i + 500],
                output_fields=[*DOC_FIELDS, "metadata"],
            )
            for r in rows:
                r["root"] = roots[r["document_id"]]
                r["unused"] = [0.0, 0.0]
            if rows:
                self.b._call("upsert", self.b.client.upsert, self.docs_coll, rows)
        self._changed = True

    def reembed(
        self,
        encode: Callable[[list[dict[str, Any]]], np.ndarray],
        *,
        model: str,
        dimension: int,
        group: int,
        progress: Callable[[int, int], None],
    ) -> None:
        # The vector field's dimension is fixed when a Milvus collection is made: re-embedding means
        # a new collection pair, which this release does not build yet.
        raise IngestError(
            f"collection {self.name!r}: `ragserve reembed` is not available on the milvus store yet; "
            f"re-ingest into a new collection with {model}, or reembed it on the faiss store and run "
            "`ragserve store migrate --from faiss --to milvus`"
        )

    def commit(self) -> dict[str, Any]:
        record = dict(self._pending_record)
        record.pop("pending", None)
        record.pop("creating", None)
        if self._changed or self.record is None:
            counts = self.b._doc_rows(self.name, ["chunks"], int(record.get("documents", 0)))
            record.update(
                version=int(record.get("version", 0)) + 1,
                documents=len(counts),
                chunks=sum(int(r["chunks"]) for r in counts),
                bm25_analyzer=lexical.DEFAULT.to_json(),
                updated_at=utc_now(),
            )
        self._put_row(RECORD_ID, record)
        if self.b.lite:
            # Milvus Lite searches unflushed rows by a scan in Python (2k 512-d chunks: ~100-500 ms a
            # query here); flushed segments are indexed (FAISS HNSW, inverted BM25 postings). A server
            # seals and indexes segments itself, where a flush per ingest would only add small segments.
            for coll in (self.chunks_coll, self.docs_coll):
                self.b._call("flush", self.b.client.flush, coll)
        self.record = record
        self._pending_record = record
        self._changed = False
        return record

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            if self._pending_record.get("pending") == self.gen:
                self._sweep(self.gen)
                record = dict(self._pending_record)
                record.pop("pending", None)
                if self._changed:
                    counts = self.b._doc_rows(self.name, ["chunks"], int(record.get("documents", 0)))
                    record.update(
                        version=int(record.get("version", 0)) + 1,
                        documents=len(counts),
                        chunks=sum(int(r["chunks"]) for r in counts),
                        updated_at=utc_now(),
                    )
                self._put_row(RECORD_ID, record)


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


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
