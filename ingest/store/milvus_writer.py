"""Writing a ragserve collection in Milvus: one ingest generation, crash-safe (layout: `milvus_schema`).

Consistency: each ingest is one generation G. A document's new chunks are written under G first,
then its document row is switched to G (one row: atomic), then its older chunks are deleted. Readers
keep only chunks whose generation is their document's current one, so during an ingest, after a
failure or after kill -9, every document is seen whole, old or new, never mixed; a document being
deleted disappears when its row does. Unlike FAISS, where a whole ingest is published at once, a
reader may see some documents of a running ingest already replaced and others not yet. A writer
records G in the collection record before writing; the next writer removes what a dead one left.
On a server, a writer lease row keeps a second process from writing the same collection. Milvus
has no compare-and-swap, so the lease is taken by read, write, wait `LEASE_SETTLE_S`, read again:
of two writers that both found it free, the one whose write came first reads the other's and
stops before writing anything. Each renewal and the commit check the lease first; a writer that
finds another holder stops (StoreBusy) and, having lost the collection, leaves the record to the
new holder, removing only chunks no document row points at.

Re-embedding (`ragserve reembed`): a Milvus collection's vector dimension is fixed, so the visible
chunks are copied with new vectors into a new chunks collection (`milvus_schema.reembedded_name`;
text, ids, BM25 terms unchanged) while readers keep searching the old one; `commit` then switches
the record's `chunks_collection`, model and dimension in one row write, as FAISS publishes a
version, and drops the old collection (a reader caught between the two searches again on the new
record). A writer killed before the switch leaves the new collection behind: the next writer drops
it, and readers never saw it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ingest.chunking import Chunk
from ingest.errors import IngestError
from ingest.loaders.base import LoadedDocument
from ingest.store import lexical
from ingest.store.backend import CollectionWriter
from ingest.store.collection import utc_now
from ingest.store.milvus_lease import LEASE_RENEW_S, WriterLease
from ingest.store.milvus_schema import (
    CHUNK_FIELDS,
    DOC_FIELDS,
    LEASE_ID,
    MAX_TEXT,
    RECORD_ID,
    bm25_text,
    chunks_collection,
    collection_names,
    quote,
    reembedded_name,
)

if TYPE_CHECKING:
    from ingest.store.milvus_backend import MilvusBackend

log = logging.getLogger(__name__)


class MilvusWriter(WriterLease, CollectionWriter):
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
        self.chunks_coll, self.docs_coll = collection_names(name)
        if record is not None:
            self.chunks_coll = chunks_collection(name, record)
        self._reembedded: dict[str, Any] | None = None  # the record fields a re-embedding switches
        self._changed = False
        self._lease = False
        self._renewed = -math.inf
        self._lost = False  # another writer took the lease over

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
        self.b.call("upsert", self.b.client.upsert, self.docs_coll, [row])

    def begin(self) -> None:
        """Take the writer lease, create a new collection, clean up after a writer that died."""
        if self.record is None:
            base = self._base()
            self.b.create_pair(self.name, base)
            # Hidden from readers ("creating") until the first commit, as a new FAISS collection is.
            self._pending_record = {
                **base, "version": 0, "documents": 0, "chunks": 0, "updated_at": utc_now(), "creating": True
            }  # fmt: skip
        else:
            self._pending_record = dict(self.record)
        if not self.b.lite:
            self._take_lease()
        stale = self._pending_record.get("pending")
        if stale:
            log.warning(
                "collection %s: cleaning up after an interrupted ingest (generation %s)", self.name, stale
            )
            self._sweep(str(stale))
        if self.record is not None:
            for coll in self.b.drop_chunks_except(self.name, keep=self.chunks_coll):
                log.warning("collection %s: dropped %s, left by an interrupted re-embedding", self.name, coll)
        self._pending_record["pending"] = self.gen
        self._put_row(RECORD_ID, self._pending_record)

    def _switched_to(self, gen: str) -> list[str]:
        """Documents whose row points at generation `gen`."""
        rows = self.b.call(
            "query", self.b.client.query, self.docs_coll, filter=f"gen == {quote(gen)}", output_fields=["gen"]
        )
        return [r["document_id"] for r in rows]

    def _sweep(self, gen: str) -> None:
        """Remove what an unfinished generation left: chunks of documents it never switched to,
        and the older chunks of documents it did switch."""
        switched = self._switched_to(gen)
        if switched:
            ids = ", ".join(quote(d) for d in switched)
            self.b.call(
                "delete",
                self.b.client.delete,
                self.chunks_coll,
                filter=f"gen == {quote(gen)} and not (document_id in [{ids}])",
            )
            self.b.call(
                "delete",
                self.b.client.delete,
                self.chunks_coll,
                filter=f"document_id in [{ids}] and gen != {quote(gen)}",
            )
        else:
            self.b.call("delete", self.b.client.delete, self.chunks_coll, filter=f"gen == {quote(gen)}")
        # Chunks of documents deleted while their row was already gone.
        documents = int(self._pending_record.get("documents", 0))
        live = {r["document_id"] for r in self.b.document_rows(self.name, ["document_id"], documents)}
        chunks = self.b.query_all(
            self.chunks_coll, 'document_id != ""', ["document_id"], int(self._pending_record.get("chunks", 0))
        )
        orphans = {r["document_id"] for r in chunks if r["document_id"] not in live}
        for i in range(0, len(orphans), 500):
            part = ", ".join(quote(d) for d in sorted(orphans)[i : i + 500])
            self.b.call("delete", self.b.client.delete, self.chunks_coll, filter=f"document_id in [{part}]")

    def fingerprints(self) -> dict[str, tuple[str, str, str | None]]:
        if self.record is None:
            return {}
        rows = self.b.document_rows(
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
                    "lexical": bm25_text(t)[:MAX_TEXT],
                    "metadata": c.metadata,
                    "vector": np.asarray(e, dtype=np.float32).tolist(),
                }
            )
        for i in range(0, len(rows), 256):
            self.b.call("insert", self.b.client.insert, self.chunks_coll, rows[i : i + 256])
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
        self.b.call("upsert", self.b.client.upsert, self.docs_coll, [doc_row])
        self.b.call(
            "delete",
            self.b.client.delete,
            self.chunks_coll,
            filter=f"document_id == {quote(doc.document_id)} and gen != {quote(self.gen)}",
        )
        self._changed = True

    def delete_document(self, document_id: str) -> bool:
        rows = self.b.call("get", self.b.client.get, self.docs_coll, ids=[document_id], output_fields=["gen"])
        if not rows or document_id in (RECORD_ID, LEASE_ID):
            return False
        self.b.call("delete", self.b.client.delete, self.docs_coll, ids=[document_id])
        self.b.call(
            "delete", self.b.client.delete, self.chunks_coll, filter=f"document_id == {quote(document_id)}"
        )
        self._changed = True
        return True

    def set_roots(self, roots: dict[str, str]) -> None:
        ids = list(roots)
        for i in range(0, len(ids), 500):
            rows = self.b.call(
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
                self.b.call("upsert", self.b.client.upsert, self.docs_coll, rows)
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
        """Copy the visible chunks into a new chunks collection with new vectors (module docstring)."""
        assert self.record is not None
        new = reembedded_name(self.name, self.gen)
        self.b.create_chunks(new, dimension)
        self._reembedded = {"chunks_collection": new}  # dropped by `abort` until the switch
        current = {
            r["document_id"]: (r["gen"], int(r["chunks"]))
            for r in self.b.document_rows(
                self.name, ["document_id", "gen", "chunks"], int(self.record.get("documents", 0))
            )
        }
        total = sum(n for _gen, n in current.values())
        done = 0
        for ids in _batches(current, REEMBED_BATCH):
            expr = "document_id in [" + ", ".join(quote(d) for d in ids) + "]"
            rows = self.b.query_all(
                self.chunks_coll, expr, ["pk", *CHUNK_FIELDS, "lexical"], sum(current[d][1] for d in ids)
            )
            rows = [r for r in rows if current[r["document_id"]][0] == r["gen"]]
            for start in range(0, len(rows), group):
                part = rows[start : start + group]
                vectors = np.asarray(encode(part), dtype=np.float32)
                copies = [
                    {**{k: r[k] for k in ("pk", *CHUNK_FIELDS, "lexical")}, "vector": v.tolist()}
                    for r, v in zip(part, vectors, strict=True)
                ]
                self.b.call("insert", self.b.client.insert, new, copies)
                done += len(part)
                progress(done, total)
                self._renew(every=LEASE_RENEW_S)
        self._reembedded.update(embedding_model=model, dimension=dimension)
        self._changed = True

    def commit(self) -> dict[str, Any]:
        self._check_lease()
        record = dict(self._pending_record)
        record.pop("pending", None)
        record.pop("creating", None)
        old_chunks = None
        if self._reembedded is not None:
            # Ready before the switch: flushed (Milvus Lite indexes flushed segments) and loaded.
            new = str(self._reembedded["chunks_collection"])
            self.b.call("flush", self.b.client.flush, new)
            self.b.load(new)
            record.update(self._reembedded)
            old_chunks, self.chunks_coll = self.chunks_coll, new
        if self._changed or self.record is None:
            counts = self.b.document_rows(self.name, ["chunks"], int(record.get("documents", 0)))
            record.update(
                version=int(record.get("version", 0)) + 1,
                documents=len(counts),
                chunks=sum(int(r["chunks"]) for r in counts),
                bm25_analyzer=lexical.DEFAULT.to_json(),
                updated_at=utc_now(),
            )
        self._put_row(RECORD_ID, record)  # the switch: one row
        if old_chunks is not None:
            self.b.drop_chunks_except(self.name, keep=self.chunks_coll)
            self._reembedded = None
        if self.b.lite:
            # Milvus Lite searches unflushed rows by a scan in Python (2k 512-d chunks: ~100-500 ms a
            # query here); flushed segments are indexed (FAISS HNSW, inverted BM25 postings). A server
            # seals and indexes segments itself, where a flush per ingest would only add small segments.
            for coll in (self.chunks_coll, self.docs_coll):
                self.b.call("flush", self.b.client.flush, coll)
        self.record = record
        self._pending_record = record
        self._changed = False
        return record

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            if self._reembedded is not None:  # never switched to: readers never saw it
                self.b.drop_chunks_except(self.name, keep=self.chunks_coll)
                self._reembedded = None
        if self._lost:  # the record is the new holder's: only chunks no document row points at go
            with contextlib.suppress(Exception):
                switched = self._switched_to(self.gen)
                ids = ", ".join(quote(d) for d in switched)
                keep = f" and not (document_id in [{ids}])" if switched else ""
                self.b.call(
                    "delete", self.b.client.delete, self.chunks_coll, filter=f"gen == {quote(self.gen)}{keep}"
                )
            return
        with contextlib.suppress(Exception):
            if self._pending_record.get("pending") == self.gen:
                self._sweep(self.gen)
                record = dict(self._pending_record)
                record.pop("pending", None)
                if self._changed:
                    counts = self.b.document_rows(self.name, ["chunks"], int(record.get("documents", 0)))
                    record.update(
                        version=int(record.get("version", 0)) + 1,
                        documents=len(counts),
                        chunks=sum(int(r["chunks"]) for r in counts),
                        updated_at=utc_now(),
                    )
                self._put_row(RECORD_ID, record)


REEMBED_BATCH = 2000  # chunks read per query while re-embedding (documents are not split)


def _batches(chunks_of: dict[str, tuple[str, int]], size: int) -> list[list[str]]:
    """Document ids in groups of about `size` chunks."""
    out: list[list[str]] = [[]]
    count = 0
    for doc_id, (_gen, n) in sorted(chunks_of.items()):
        if out[-1] and count + n > size:
            out.append([])
            count = 0
        out[-1].append(doc_id)
        count += n
    return [ids for ids in out if ids]
