"""The embedded store: one directory per collection, versions published by an atomic manifest swap.

Readers hold an immutable `Snapshot` (FAISS + SQLite docstore + BM25) of the published version and
reopen it when the manifest changes, whichever process wrote it; a writer builds version N+1
beside it under an flock and publishes it whole (`ingest.store.collection`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ingest.chunking import Chunk
from ingest.errors import CollectionNotFound, IngestError, StorageError, one_line
from ingest.loaders.base import LoadedDocument
from ingest.search import search as run_search
from ingest.store import lexical
from ingest.store.backend import CollectionWriter, QueryEncoder, StoreBackend
from ingest.store.collection import Snapshot, VersionWriter
from ingest.store.docstore import FILENAME as DOCSTORE_FILE
from ingest.store.docstore import DocstoreReader
from ingest.store.names import NAME_RE, validate_name
from ingest.store.vectors import HNSW_THRESHOLD
from ingest.store.versions import MANIFEST, read_manifest, writer_lock
from ingest.types import DocumentInfo, SearchHit

log = logging.getLogger(__name__)


def lexical_outdated(manifest: dict[str, Any]) -> bool:
    """Whether a published version's BM25 index was built with another analysis than today's."""
    return int(manifest.get("chunks", 0)) > 0 and manifest.get("bm25_analyzer") != lexical.DEFAULT.to_json()


def carry(manifest: dict[str, Any]) -> dict[str, Any]:
    """Manifest fields every version of a collection keeps."""
    return {k: manifest[k] for k in ("embedding_model", "dimension", "created_at") if k in manifest}


class FaissWriter(CollectionWriter):
    """A write to one FAISS collection: version N+1 is made on first change and published by `commit`."""

    def __init__(
        self, coll: Path, record: dict[str, Any] | None, base: dict[str, Any], hnsw_threshold: int
    ) -> None:
        self.coll = coll
        self.record = record
        self._base = base
        self._hnsw_threshold = hnsw_threshold
        self._version: VersionWriter | None = None

    def _writer(self) -> VersionWriter:
        if self._version is None:
            self._version = VersionWriter(self.coll, self.record, self._base)
        return self._version

    def fingerprints(self) -> dict[str, tuple[str, str, str | None]]:
        if self.record is None:
            return {}
        reader = DocstoreReader(self.coll / str(self.record["dir"]) / DOCSTORE_FILE)
        try:
            return reader.fingerprints()
        finally:
            reader.close()

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
        if tokens is None:
            tokens = [lexical.tokenize(c.index_text) for c in chunks]
        self._writer().put_document(doc, origin, chunks, embeddings, tokens, root=root)

    def delete_document(self, document_id: str) -> bool:
        return self._writer().delete_document(document_id)

    def set_roots(self, roots: dict[str, str]) -> None:
        self._writer().set_roots(roots)

    def reembed(
        self,
        encode: Callable[[list[dict[str, Any]]], np.ndarray],
        *,
        model: str,
        dimension: int,
        group: int,
        progress: Callable[[int, int], None],
    ) -> None:
        self._base = {**self._base, "embedding_model": model, "dimension": dimension}
        writer = self._writer()
        rows = writer.chunk_texts()
        for start in range(0, len(rows), group):
            part = rows[start : start + group]
            writer.set_embeddings([int(r["id"]) for r in part], encode(part))
            progress(start + len(part), len(rows))

    def commit(self) -> dict[str, Any]:
        if self._version is None:
            if self.record is not None and not lexical_outdated(self.record):
                return self.record  # nothing changed: no new version
            if self.record is not None:
                # Built before the current BM25 analysis (e.g. without stemming): a re-ingest,
                # even with nothing changed, republishes it with BM25 rebuilt the current way.
                log.info("collection %s: rebuilding BM25 with %s", self.coll.name, lexical.DEFAULT.to_json())
        # A new collection is published even when nothing was ingested.
        return self._writer().publish(self._hnsw_threshold)

    def abort(self) -> None:
        if self._version is not None:
            self._version.abort()


class FaissBackend(StoreBackend):
    """All collections under `root` (`<data_dir>/collections`)."""

    name = "faiss"

    def __init__(self, root: Path, *, hnsw_threshold: int = HNSW_THRESHOLD, lock_wait_s: float = 5.0) -> None:
        self.root = Path(root)
        self.hnsw_threshold = hnsw_threshold
        self.lock_wait_s = lock_wait_s
        self._lock = threading.Lock()
        self._snapshots: dict[str, tuple[tuple[int, int, int], Snapshot]] = {}

    # ----- reading --------------------------------------------------------------------------------
    def _dir(self, name: str) -> Path:
        return self.root / validate_name(name)

    def snapshot(self, name: str) -> Snapshot:
        """The published version, reopened when the manifest changed (any process may have written)."""
        coll = self._dir(name)
        for attempt in range(5):
            try:
                st = os.stat(coll / MANIFEST)
            except FileNotFoundError:
                with self._lock:
                    self._snapshots.pop(name, None)
                raise CollectionNotFound(f"collection {name!r} does not exist") from None
            # os.replace gives the manifest a new inode on every publish: a stat is enough to notice.
            key = (st.st_ino, st.st_mtime_ns, st.st_size)
            with self._lock:
                cached = self._snapshots.get(name)
            if cached and cached[0] == key:
                return cached[1]
            manifest = read_manifest(coll)
            if manifest is None:
                continue
            try:
                snap = Snapshot.load(coll, manifest)
            except FileNotFoundError:
                time.sleep(0.05 * (attempt + 1))  # a newer version was published and GC'd this one meanwhile
                continue
            with self._lock:
                self._snapshots[name] = (key, snap)
            return snap
        raise IngestError(f"collection {name!r} could not be opened (it keeps changing or is damaged)")

    def exists(self, name: str) -> bool:
        return bool(NAME_RE.match(name)) and (self.root / name / MANIFEST).is_file()

    def records(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        if not self.root.is_dir():
            return out
        for p in sorted(self.root.iterdir()):
            if not NAME_RE.match(p.name):
                continue
            try:
                m = read_manifest(p)
            except (OSError, ValueError):
                continue
            if m is not None:
                out[p.name] = m
        return out

    def record(self, name: str) -> dict[str, Any]:
        m = read_manifest(self._dir(name))
        if m is None:
            raise CollectionNotFound(f"collection {name!r} does not exist")
        return m

    def _read(self, name: str, fn: Callable[[Snapshot], Any]) -> Any:
        """fn(snapshot), once more on a fresh snapshot if the version vanished meanwhile.

        A reader thread opens its own docstore connection on first use; by then two newer versions
        may have been published and the old one collected (a busy writer on a loaded machine).
        """
        snap = self.snapshot(name)
        try:
            return fn(snap)
        except sqlite3.OperationalError:
            with self._lock:
                if self._snapshots.get(name, (None, None))[1] is snap:
                    self._snapshots.pop(name, None)
            fresh = self.snapshot(name)
            if fresh is snap:
                raise
            return fn(fresh)

    def list_documents(self, name: str) -> list[DocumentInfo]:
        docs: list[DocumentInfo] = self._read(name, lambda snap: snap.docs.documents())
        return docs

    def chunk_count(self, name: str) -> int:
        return self.snapshot(name).chunks

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
        def run(snap: Snapshot) -> list[SearchHit]:
            if encoder is not None and mode != "bm25":
                encoder.check(name, snap.manifest)
            return run_search(
                snap,
                query,
                embed=encoder.encode if encoder is not None else None,
                multilingual_embedder=encoder.multilingual if encoder is not None else False,
                top_k=top_k,
                mode=mode,
                filters=filters,
                timings=timings,
            )

        hits: list[SearchHit] = self._read(name, run)
        return hits

    # ----- writing --------------------------------------------------------------------------------
    @contextlib.contextmanager
    def writing(
        self, name: str, *, create: bool, base: Callable[[], dict[str, Any]]
    ) -> Iterator[CollectionWriter]:
        """Hold the writer lock; a write error (disk full, read-only, I/O) becomes StorageError.

        Writers build a new version beside the published one and abort it on any error, so a
        StorageError always means the published version is unchanged.
        """
        coll = self._dir(name)
        if not create and read_manifest(coll) is None:
            raise CollectionNotFound(f"collection {name!r} does not exist")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with writer_lock(coll, self.lock_wait_s):
                manifest = read_manifest(coll)  # re-read under the lock: the authoritative state
                if manifest is None and not create:
                    raise CollectionNotFound(f"collection {name!r} does not exist")
                fields = carry(manifest) if manifest is not None else base()
                writer = FaissWriter(coll, manifest, fields, self.hnsw_threshold)
                try:
                    yield writer
                except BaseException:
                    writer.abort()
                    raise
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(
                f"collection {name!r}: writing failed ({one_line(exc)}); the published version is unchanged"
            ) from exc

    def delete_collection(self, name: str) -> None:
        coll = self._dir(name)
        if read_manifest(coll) is None:
            raise CollectionNotFound(f"collection {name!r} does not exist")
        try:
            with writer_lock(coll, self.lock_wait_s):
                if read_manifest(coll) is None:
                    raise CollectionNotFound(f"collection {name!r} does not exist")
                (coll / MANIFEST).unlink()
                # Move aside first so the name is free at once; readers with open files keep working.
                trash = self.root / f".trash-{name}-{uuid.uuid4().hex[:8]}"
                os.replace(coll, trash)
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"collection {name!r}: deleting failed ({one_line(exc)})") from exc
        shutil.rmtree(trash, ignore_errors=True)
        with self._lock:
            self._snapshots.pop(name, None)
