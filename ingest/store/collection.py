"""A collection's versions: a read-only `Snapshot` of the published one, a `VersionWriter` for the next."""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ingest.chunking import Chunk
from ingest.loaders.base import LoadedDocument
from ingest.store import docstore, lexical, vectors
from ingest.store.versions import (
    collect_garbage,
    fsync_tree,
    version_dir_name,
    write_manifest,
)

ROWIDS = "rowids.npy"  # position in FAISS/BM25 -> docstore chunk id, ascending
log = logging.getLogger(__name__)


def utc_now() -> str:
    """Current time, ISO-8601 UTC with seconds."""
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _json(value: Any) -> str:
    """Compact JSON that keeps non-ASCII text readable in the database."""
    return json.dumps(value, ensure_ascii=False, default=str)


@dataclass
class Snapshot:
    """Everything needed to search one published version; immutable once loaded."""

    manifest: dict[str, Any]
    docs: docstore.DocstoreReader
    index: Any  # faiss index
    bm25: lexical.LexicalIndex | None
    rowids: np.ndarray

    @classmethod
    def load(cls, coll_dir: Path, manifest: dict[str, Any]) -> Snapshot:
        """Open the version the manifest names (raises FileNotFoundError if it vanished)."""
        vdir = coll_dir / str(manifest["dir"])
        rowids = np.load(vdir / ROWIDS)
        index = vectors.load_index(vdir / vectors.FILENAME)
        db = vdir / docstore.FILENAME
        if not db.is_file():
            raise FileNotFoundError(db)
        docs = docstore.DocstoreReader(db)
        bm25 = None
        if (vdir / lexical.DIRNAME).is_dir():
            try:
                bm25 = lexical.load(vdir / lexical.DIRNAME)
                if bm25.analyzer != lexical.DEFAULT:
                    log.info(
                        "collection %s: BM25 built with %s, queried that way; `ragserve ingest` upgrades it",
                        coll_dir.name,
                        bm25.analyzer.to_json(),
                    )
            except lexical.LexicalConfigError as exc:
                # Built by another version with an analysis this one cannot apply to queries: rebuild
                # it in memory from the stored surface tokens (the next ingest publishes it for good).
                log.warning("collection %s: %s; rebuilding its BM25 index in memory", coll_dir.name, exc)
                bm25 = lexical.build(docs.token_lists())
        return cls(manifest, docs, index, bm25, rowids)

    @property
    def version(self) -> int:
        """Published version number."""
        return int(self.manifest["version"])

    def positions_of(self, ids: np.ndarray) -> np.ndarray:
        """Index positions of docstore chunk ids (rowids is sorted)."""
        return np.searchsorted(self.rowids, ids).astype(np.int64)


class VersionWriter:
    """Builds version N+1 in its own directory; `publish` makes it current atomically."""

    def __init__(self, coll_dir: Path, current: dict[str, Any] | None, base: dict[str, Any]) -> None:
        self.coll_dir = coll_dir
        self.current = current
        self.version = (int(current["version"]) if current else 0) + 1
        self.dir = coll_dir / version_dir_name(self.version)
        self._base = base  # manifest fields carried over (embedding model, dimension, created_at)
        self.analyzer = lexical.DEFAULT  # every published version is analyzed the current way
        if self.dir.exists():  # left behind by a writer that died before publishing
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True)
        db = self.dir / docstore.FILENAME
        if current:
            self.conn = docstore.copy_docstore(coll_dir / str(current["dir"]) / docstore.FILENAME, db)
        else:
            self.conn = docstore.open_writable(db)
        # Durability comes from fsync before publishing; an unpublished directory is discarded anyway.
        self.conn.execute("PRAGMA synchronous=OFF")
        self.conn.execute("PRAGMA journal_mode=MEMORY")

    def delete_document(self, document_id: str) -> bool:
        """Remove a document and its chunks; False if it was not there."""
        self.conn.execute("DELETE FROM chunks WHERE document_id = ?", (document_id,))
        cur = self.conn.execute("DELETE FROM documents WHERE document_id = ?", (document_id,))
        return cur.rowcount > 0

    def put_document(
        self,
        doc: LoadedDocument,
        origin: str,
        chunks: list[Chunk],
        embeddings: np.ndarray,
        tokens: list[list[str]],
    ) -> None:
        """Insert or replace a document with its chunks."""
        self.delete_document(doc.document_id)
        self.conn.execute(
            "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                doc.document_id,
                doc.source,
                origin,
                doc.sha256,
                len(chunks),
                utc_now(),
                _json(doc.metadata),
            ),
        )
        self.conn.executemany(
            'INSERT INTO chunks (chunk_id, document_id, source, page, start, "end", text, tokens, '
            "metadata, embedding) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    c.chunk_id,
                    c.document_id,
                    c.source,
                    c.page,
                    c.start,
                    c.end,
                    c.text,
                    " ".join(t),
                    _json(c.metadata),
                    np.ascontiguousarray(e, dtype=np.float32).tobytes(),
                )
                for c, e, t in zip(chunks, embeddings, tokens, strict=True)
            ],
        )

    def publish(self, hnsw_threshold: int) -> dict[str, Any]:
        """Build FAISS and BM25 from the docstore, fsync everything, then swap the manifest."""
        self.conn.commit()
        dim = int(self._base["dimension"])
        ids: list[int] = []
        vecs: list[np.ndarray] = []
        toks: list[list[str]] = []
        for rid, emb, tok in self.conn.execute("SELECT id, embedding, tokens FROM chunks ORDER BY id"):
            ids.append(rid)
            vecs.append(np.frombuffer(emb, dtype=np.float32))
            toks.append(tok.split(" ") if tok else [])
        documents = self.conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
        self.conn.close()
        matrix = np.vstack(vecs) if vecs else np.zeros((0, dim), np.float32)
        index = vectors.build_index(matrix, hnsw_threshold)
        vectors.save_index(index, self.dir / vectors.FILENAME)
        if any(toks):
            lexical.save(lexical.build(toks, self.analyzer), self.dir / lexical.DIRNAME)
        np.save(self.dir / ROWIDS, np.asarray(ids, dtype=np.int64))
        fsync_tree(self.dir)
        manifest = {
            **self._base,
            "version": self.version,
            "dir": self.dir.name,
            "documents": int(documents),
            "chunks": len(ids),
            "index": "hnsw" if len(ids) >= hnsw_threshold else "flat",
            "bm25_analyzer": self.analyzer.to_json(),
            "updated_at": utc_now(),
        }
        write_manifest(self.coll_dir, manifest)
        # Keep the previous version too: a reader that just read the old manifest may still be opening it.
        collect_garbage(self.coll_dir, {self.version, self.version - 1})
        return manifest

    def abort(self) -> None:
        """Discard the unpublished version."""
        with contextlib.suppress(sqlite3.Error):
            self.conn.close()
        shutil.rmtree(self.dir, ignore_errors=True)
