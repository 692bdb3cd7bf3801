"""A collection's versions: a read-only `Snapshot` of the published one, a `VersionWriter` for the next."""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import sqlite3
from dataclasses import dataclass, field
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
    read_manifest,
    version_dir_name,
    write_manifest,
)

ROWIDS = "rowids.npy"  # position in FAISS/BM25 -> docstore chunk id, ascending
TOMBSTONES = "tombstones.npy"  # positions whose chunk was replaced or deleted (carried-forward HNSW only)
# A carried-forward HNSW graph keeps replaced chunks as tombstones (still routing nodes, never results);
# past this share of all positions the next version rebuilds the graph from the live chunks.
MAX_TOMBSTONE_SHARE = 0.2
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
    dead: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # tombstoned positions

    @classmethod
    def load(cls, coll_dir: Path, manifest: dict[str, Any]) -> Snapshot:
        """Open the version the manifest names (raises FileNotFoundError if it vanished)."""
        vdir = coll_dir / str(manifest["dir"])
        rowids = np.load(vdir / ROWIDS)
        dead = _tombstones(vdir)
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
                live = live_positions(len(rowids), dead)
                bm25 = lexical.build(docs.token_lists(), positions=live, size=len(rowids))
        return cls(manifest, docs, index, bm25, rowids, dead)

    @property
    def version(self) -> int:
        """Published version number."""
        return int(self.manifest["version"])

    @property
    def chunks(self) -> int:
        """Live chunks (positions minus tombstones)."""
        return len(self.rowids) - len(self.dead)

    def positions_of(self, ids: np.ndarray) -> np.ndarray:
        """Index positions of docstore chunk ids (rowids is sorted; the docstore holds live ids only)."""
        return np.searchsorted(self.rowids, ids).astype(np.int64)


def live_positions(size: int, dead: np.ndarray) -> np.ndarray | None:
    """Positions holding a live chunk, ascending; None when none is tombstoned (all of 0..size-1)."""
    return np.setdiff1d(np.arange(size), dead) if len(dead) else None


def _tombstones(vdir: Path) -> np.ndarray:
    """Tombstoned positions of a version (none unless its HNSW graph was carried forward)."""
    path = vdir / TOMBSTONES
    return np.load(path).astype(np.int64) if path.is_file() else np.zeros(0, np.int64)


class VersionWriter:
    """Builds version N+1 in its own directory; `publish` makes it current atomically."""

    def __init__(self, coll_dir: Path, current: dict[str, Any] | None, base: dict[str, Any]) -> None:
        self.coll_dir = coll_dir
        self.current = current
        self.version = (int(current["version"]) if current else 0) + 1
        self.dir = coll_dir / version_dir_name(self.version)
        self._base = base  # manifest fields carried over (embedding model, dimension, created_at)
        self.analyzer = lexical.DEFAULT  # every published version is analyzed the current way
        self.published = False
        if self.dir.exists():  # left behind by a writer that died before publishing
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True)
        db = self.dir / docstore.FILENAME
        try:
            if current:
                self.conn = docstore.copy_docstore(coll_dir / str(current["dir"]) / docstore.FILENAME, db)
            else:
                self.conn = docstore.open_writable(db)
            # Durability comes from fsync before publishing; an unpublished directory is discarded anyway.
            self.conn.execute("PRAGMA synchronous=OFF")
            self.conn.execute("PRAGMA journal_mode=MEMORY")
        except BaseException:  # no writer object to abort: remove the half-made directory here
            shutil.rmtree(self.dir, ignore_errors=True)
            raise

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
        *,
        root: str | None = None,
    ) -> None:
        """Insert or replace a document with its chunks; `root`: the source root it came from."""
        self.delete_document(doc.document_id)
        self.conn.execute(
            "INSERT INTO documents (document_id, source, origin, sha256, chunks, ingested_at, metadata, "
            "root) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                doc.document_id,
                doc.source,
                origin,
                doc.sha256,
                len(chunks),
                utc_now(),
                _json(doc.metadata),
                root,
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

    def set_roots(self, roots: dict[str, str]) -> None:
        """Record another source root for unchanged documents (document_id -> root)."""
        self.conn.executemany(
            "UPDATE documents SET root = ? WHERE document_id = ?", [(r, d) for d, r in roots.items()]
        )

    def chunk_texts(self) -> list[dict[str, Any]]:
        """Every chunk's id, text and metadata (what `ingest.chunking.index_text` needs), by id."""
        return [
            {"id": rid, "text": text, "metadata": json.loads(meta) if meta else {}}
            for rid, text, meta in self.conn.execute("SELECT id, text, metadata FROM chunks ORDER BY id")
        ]

    def set_embeddings(self, ids: list[int], embeddings: np.ndarray) -> None:
        """Replace the stored vectors of these chunks (re-embedding with another model)."""
        self.conn.executemany(
            "UPDATE chunks SET embedding = ? WHERE id = ?",
            [
                (np.ascontiguousarray(e, dtype=np.float32).tobytes(), rid)
                for rid, e in zip(ids, embeddings, strict=True)
            ],
        )

    def publish(self, hnsw_threshold: int) -> dict[str, Any]:
        """Build FAISS and BM25 from the docstore, fsync everything, then swap the manifest.

        An HNSW collection carries the previous version's graph forward when it can (`_carry_hnsw`):
        building the graph is the one step of publishing that grows with the whole collection
        (minutes at 100k chunks), while a re-ingest usually changes a few documents.
        """
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
        carried = self._carry_hnsw(ids, matrix, toks) if len(ids) >= hnsw_threshold else None
        dead = np.zeros(0, np.int64)
        if carried is not None:
            index, rowids, toks, dead = carried
        else:
            index = vectors.build_index(matrix, hnsw_threshold)
            rowids = np.asarray(ids, dtype=np.int64)
        vectors.save_index(index, self.dir / vectors.FILENAME)
        if any(toks):
            live = live_positions(len(rowids), dead)
            live_toks = toks if live is None else [toks[p] for p in live]
            lex = lexical.build(live_toks, self.analyzer, positions=live, size=len(rowids))
            lexical.save(lex, self.dir / lexical.DIRNAME)
        np.save(self.dir / ROWIDS, rowids)
        if len(dead):
            np.save(self.dir / TOMBSTONES, dead)
        fsync_tree(self.dir)
        manifest = {
            **self._base,
            "version": self.version,
            "dir": self.dir.name,
            "documents": int(documents),
            "chunks": len(ids),
            "index": "hnsw" if len(ids) >= hnsw_threshold else "flat",
            "tombstones": len(dead),
            "bm25_analyzer": self.analyzer.to_json(),
            "updated_at": utc_now(),
        }
        try:
            write_manifest(self.coll_dir, manifest)
        except Exception as exc:
            if not self.is_published():
                raise
            # The rename happened (readers see the new version); only syncing the directory failed.
            log.warning("collection %s: version %d published, but %s", self.coll_dir.name, self.version, exc)
        # From here on the version is live: nothing below may remove it (see `abort`).
        self.published = True
        try:
            # Keep the previous version too: a reader that just read the old manifest may still be opening it.
            collect_garbage(self.coll_dir, {self.version, self.version - 1})
        except Exception as exc:  # old versions are left for the next publish to collect
            log.warning("collection %s: removing old versions failed: %s", self.coll_dir.name, exc)
        return manifest

    def is_published(self) -> bool:
        """Whether the manifest names this version (True when it cannot be read: never delete then)."""
        try:
            current = read_manifest(self.coll_dir)
        except (OSError, ValueError):
            return True
        return current is not None and current.get("dir") == self.dir.name

    def _carry_hnsw(
        self, ids: list[int], matrix: np.ndarray, toks: list[list[str]]
    ) -> tuple[Any, np.ndarray, list[list[str]], np.ndarray] | None:
        """The previous HNSW graph with this version's new chunks added and the gone ones tombstoned.

        Returns (index, rowids, tokens per position, tombstoned positions), or None when the graph
        must be built afresh: no previous HNSW version, ids that would not append in order (SQLite
        may reuse the largest id of a deleted chunk), a kept chunk whose stored vector differs from
        the graph's copy, or tombstones past MAX_TOMBSTONE_SHARE. The previous version's files are
        only read: the graph is loaded into memory and written into this version's directory.
        """
        cur = self.current
        if not cur or cur.get("index") != "hnsw":
            return None
        pdir = self.coll_dir / str(cur["dir"])
        try:
            prev_ids = np.load(pdir / ROWIDS)
            prev_dead = _tombstones(pdir)
            prev_index = vectors.load_index(pdir / vectors.FILENAME)
        except (OSError, ValueError, RuntimeError) as exc:
            log.warning("collection %s: previous HNSW unreadable (%s); rebuilding", self.coll_dir.name, exc)
            return None
        if not vectors.is_hnsw(prev_index) or prev_index.ntotal != len(prev_ids):
            return None
        new_ids = np.asarray(ids, dtype=np.int64)
        alive = np.ones(len(prev_ids), bool)
        alive[prev_dead] = False
        kept = alive & np.isin(prev_ids, new_ids)  # chunks of unchanged documents keep their ids
        added = new_ids[~np.isin(new_ids, prev_ids[kept])]
        if len(added) and len(prev_ids) and added.min() <= prev_ids.max():
            return None  # an id was reused: positions would no longer follow ids
        total = len(prev_ids) + len(added)
        dead = np.flatnonzero(~kept).astype(np.int64)
        if len(dead) > MAX_TOMBSTONE_SHARE * total:
            name = self.coll_dir.name
            log.info("collection %s: %d of %d positions gone; rebuilding HNSW", name, len(dead), total)
            return None
        row_of = {int(r): i for i, r in enumerate(ids)}
        kept_pos = np.flatnonzero(kept)
        kept_rows = np.fromiter((row_of[int(r)] for r in prev_ids[kept_pos]), np.int64, len(kept_pos))
        if not np.array_equal(vectors.vectors_at(prev_index, kept_pos), matrix[kept_rows]):
            return None  # a kept id holds another vector than the graph's: never serve a stale one
        if len(added):
            added_rows = np.fromiter((row_of[int(r)] for r in added), np.int64, len(added))
            prev_index.add(np.ascontiguousarray(matrix[added_rows], dtype=np.float32))
        rowids = np.concatenate([prev_ids, added]).astype(np.int64)
        by_pos: list[list[str]] = [[] for _ in range(total)]
        for p, r in zip(kept_pos.tolist(), kept_rows.tolist(), strict=True):
            by_pos[p] = toks[r]
        for j, r in enumerate(added.tolist()):
            by_pos[len(prev_ids) + j] = toks[row_of[r]]
        log.info(
            "collection %s: HNSW carried forward (+%d chunks, %d tombstones of %d positions)",
            self.coll_dir.name,
            len(added),
            len(dead),
            total,
        )
        return prev_index, rowids, by_pos, dead

    def abort(self) -> None:
        """Discard the version unless it was published (then it is the live one and stays)."""
        with contextlib.suppress(sqlite3.Error):
            self.conn.close()
        if self.published or self.is_published():
            return
        shutil.rmtree(self.dir, ignore_errors=True)
