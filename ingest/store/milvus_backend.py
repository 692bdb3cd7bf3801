"""Collections in Milvus: a server or cluster (`http://host:19530`) or Milvus Lite (a local file).

The backend opens the connection and answers the store's questions (records, documents, deletes),
leaving the rest to its neighbours: `milvus_schema` (how a collection is laid out: names, fields,
indexes, filter expressions), `milvus_search` (dense, BM25 and hybrid search) and `milvus_writer`
(one crash-safe ingest generation, the writer lease).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ingest.errors import CollectionNotFound, IngestError, StorageError, StoreBusy, one_line
from ingest.search import MODES
from ingest.store.backend import CollectionWriter, QueryEncoder, StoreBackend
from ingest.store.milvus_lease import LEASE_S
from ingest.store.milvus_schema import (
    CHUNK_FIELDS,
    DOC_FIELDS,
    DOCS_PREFIX,
    DOCUMENT_ROWS,
    LEASE_ID,
    QUERY_WINDOW,
    RECORD_ID,
    chunks_collection,
    collection_names,
    create_chunks_collection,
    create_collections,
    decode_name,
    is_chunks_collection_of,
    quote,
)
from ingest.store.milvus_search import MilvusSearch
from ingest.store.milvus_writer import MilvusWriter
from ingest.store.names import validate_name
from ingest.types import DocumentInfo, SearchHit

log = logging.getLogger(__name__)


def _chunk_order(row: dict[str, Any]) -> tuple[int, int, str]:
    """A document's chunks in the order they were cut ("<document_id>#<n>"), then by offset."""
    _doc, _sep, n = str(row["chunk_id"]).rpartition("#")
    return (int(n) if n.isdigit() else 1 << 62, int(row.get("start") or 0), str(row["chunk_id"]))


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
            raise StorageError(f"cannot open Milvus at {uri}: {one_line(exc)}{hint}") from exc
        self._lock = threading.Lock()
        self._writers: set[str] = set()  # collections this process is writing
        self._loaded: set[str] = set()  # Milvus collections this process has loaded
        self._search = MilvusSearch(self.client, self.call)

    # ----- helpers --------------------------------------------------------------------------------
    def call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A Milvus call; its failure becomes StorageError (IngestError subclasses pass through)."""
        try:
            return fn(*args, timeout=self.timeout_s, **kwargs)
        except IngestError:
            raise
        except Exception as exc:
            raise StorageError(f"Milvus {what} failed: {one_line(exc)}") from exc

    def load(self, coll: str) -> None:
        """Load a Milvus collection into memory once per process (a reopened Milvus Lite file, or a
        server restarted, starts with its collections released)."""
        with self._lock:
            if coll in self._loaded:
                return
        self.call("load_collection", self.client.load_collection, coll)
        with self._lock:
            self._loaded.add(coll)

    def forget(self, *colls: str) -> None:
        """Collections dropped or re-created: load them again before use."""
        with self._lock:
            self._loaded.difference_update(colls)

    def _get_record(self, name: str) -> dict[str, Any] | None:
        first, docs = collection_names(name)
        if not self.call("has_collection", self.client.has_collection, docs):
            self.forget(first, docs)
            return None
        self.load(docs)
        rows = self.call("get", self.client.get, docs, ids=[RECORD_ID], output_fields=["metadata"])
        if not rows:
            return None
        record = rows[0]["metadata"]
        if not isinstance(record, dict) or record.get("creating"):
            return None  # a first ingest that has not committed (or died): not a collection yet
        self.load(chunks_collection(name, record))
        return dict(record)

    # ----- reading --------------------------------------------------------------------------------
    def exists(self, name: str) -> bool:
        return self._get_record(name) is not None

    def records(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for coll in sorted(self.call("list_collections", self.client.list_collections)):
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
            rows = self.call(
                "query", self.client.query, coll, filter=expr, output_fields=fields, limit=QUERY_WINDOW
            )
            if len(rows) < QUERY_WINDOW:
                return list(rows)
        out: list[dict[str, Any]] = []
        it = self.call(
            "query", self.client.query_iterator, coll, batch_size=1000, filter=expr, output_fields=fields
        )
        try:
            while batch := it.next():
                out.extend(batch)
        finally:
            it.close()
        return out

    def document_rows(self, name: str, fields: list[str], expected: int = 0) -> list[dict[str, Any]]:
        """Every document row (the record and lease rows left out)."""
        _chunks, docs = collection_names(name)
        return self.query_all(docs, DOCUMENT_ROWS, fields, expected)

    def list_documents(self, name: str) -> list[DocumentInfo]:
        record = self.record(name)
        rows = self.document_rows(name, DOC_FIELDS, int(record.get("documents", 0)))
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

    def export_documents(self, name: str) -> list[dict[str, Any]]:
        """Every document's full row (what a copy to another store needs), by id."""
        record = self.record(name)
        rows = self.document_rows(name, [*DOC_FIELDS, "metadata"], int(record.get("documents", 0)))
        return sorted(rows, key=lambda r: str(r["document_id"]))

    def export_chunks(
        self, name: str, documents: dict[str, tuple[str, int]]
    ) -> dict[str, list[dict[str, Any]]]:
        """The visible chunks of some documents (document_id -> (generation, chunks)), in order, with
        their vectors (float32); BM25 surface tokens are not stored here (`tokens` None)."""
        record = self.record(name)
        expr = "document_id in [" + ", ".join(quote(d) for d in documents) + "]"
        rows = self.query_all(
            chunks_collection(name, record),
            expr,
            [*CHUNK_FIELDS, "vector"],
            sum(n for _gen, n in documents.values()),
        )
        out: dict[str, list[dict[str, Any]]] = {d: [] for d in documents}
        for r in rows:
            if documents[r["document_id"]][0] != r["gen"]:
                continue  # an older generation a running or dead writer has not removed yet
            r["embedding"] = np.asarray(r.pop("vector"), dtype=np.float32)
            r["tokens"] = None
            r["metadata"] = dict(r.get("metadata") or {})
            out[r["document_id"]].append(r)
        for chunks in out.values():
            chunks.sort(key=_chunk_order)
        return out

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
        if encoder is not None and mode != "bm25":
            encoder.check(name, record)
        try:
            return self._search.search(
                name, record, query, encoder=encoder, top_k=top_k, mode=mode, filters=filters, timings=timings
            )
        except StorageError:
            # A re-embedding switched to a new chunks collection and dropped the one this reader
            # was about to search: search again on the record as it is now.
            fresh = self.record(name)
            if chunks_collection(name, fresh) == chunks_collection(name, record):
                raise
            if encoder is not None and mode != "bm25":
                encoder.check(name, fresh)
            return self._search.search(
                name, fresh, query, encoder=encoder, top_k=top_k, mode=mode, filters=filters, timings=timings
            )

    # ----- writing --------------------------------------------------------------------------------
    def create_pair(self, name: str, base: dict[str, Any]) -> None:
        """Create a new collection's Milvus pair (a writer's first step; `milvus_schema` lays it out).

        A documents collection already there without a committed record is what a first ingest left
        (it is dropped and made again), unless, on a server, a live writer lease in it says that
        another process is making it right now."""
        _first, docs = collection_names(name)
        if not self.lite and self.call("has_collection", self.client.has_collection, docs):
            self.load(docs)
            rows = self.call("get", self.client.get, docs, ids=[LEASE_ID], output_fields=["metadata"])
            lease = (rows[0]["metadata"] or {}) if rows else {}
            if lease.get("holder") and time.time() - float(lease.get("renewed", 0)) < LEASE_S:
                raise StoreBusy(
                    f"collection {name!r} is being created by another process; retry when it finishes"
                )
        create_collections(self.client, self.call, name, int(base["dimension"]))
        self.forget(*collection_names(name))

    def create_chunks(self, coll: str, dimension: int) -> None:
        """Create a chunks collection for a re-embedding (dropping one a dead writer left there)."""
        if self.call("has_collection", self.client.has_collection, coll):
            self.call("drop_collection", self.client.drop_collection, coll)
        create_chunks_collection(self.client, self.call, coll, dimension)
        self.forget(coll)

    def drop_chunks_except(self, name: str, keep: str) -> list[str]:
        """Drop this collection's chunks collections other than `keep` (a re-embedding's old one, or
        the unfinished new one of a writer that died); the names dropped."""
        stray = [
            c
            for c in self.call("list_collections", self.client.list_collections)
            if is_chunks_collection_of(name, c) and c != keep
        ]
        for coll in stray:
            self.call("drop_collection", self.client.drop_collection, coll)
        self.forget(*stray)
        return stray

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
        _first, docs = collection_names(name)
        # The documents collection (with the record) first: the name is gone for readers at once.
        self.forget(docs)
        self.call("drop_collection", self.client.drop_collection, docs)
        self.drop_chunks_except(name, keep="")

    def close(self) -> None:
        """Close the connection; with Milvus Lite also stop its in-process server, freeing the file
        for another process (every backend of this process on that file is closed with it)."""
        with contextlib.suppress(Exception):
            self.client.close()
        if self.lite:
            with contextlib.suppress(Exception):
                from milvus_lite.server_manager import server_manager_instance

                server_manager_instance.release_server(self.uri)
