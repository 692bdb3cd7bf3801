"""SQLite docstore: documents and chunks (text, metadata, BM25 tokens, embedding) of one version."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ingest.errors import InvalidName
from ingest.types import DocumentInfo

FILENAME = "docstore.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    document_id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    origin TEXT NOT NULL,          -- the file it came from (a JSONL file holds many documents)
    sha256 TEXT NOT NULL,
    chunks INTEGER NOT NULL,
    ingested_at TEXT NOT NULL,
    metadata TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    chunk_id TEXT NOT NULL UNIQUE,
    document_id TEXT NOT NULL,
    source TEXT NOT NULL,
    page INTEGER,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    text TEXT NOT NULL,
    tokens TEXT NOT NULL,          -- BM25 tokens joined by spaces, so rebuilding BM25 needs no re-tokenizing
    metadata TEXT NOT NULL,
    embedding BLOB NOT NULL        -- float32, so the vector index can be rebuilt without re-embedding
);
CREATE INDEX IF NOT EXISTS chunks_by_document ON chunks(document_id);
"""

_COLUMNS = {"document_id": "document_id", "source": "source", "page": "page", "chunk_id": "chunk_id"}


def open_writable(path: Path) -> sqlite3.Connection:
    """Open (creating) a docstore for writing; only the writer of a new version does this."""
    conn = sqlite3.connect(path)
    conn.executescript(_SCHEMA)
    return conn


def copy_docstore(src: Path, dst: Path) -> sqlite3.Connection:
    """Copy a published docstore into a new version with SQLite's backup API and open the copy."""
    source = sqlite3.connect(f"file:{src}?mode=ro&immutable=1", uri=True)
    try:
        conn = sqlite3.connect(dst)
        source.backup(conn)
    finally:
        source.close()
    conn.executescript(_SCHEMA)
    return conn


def filter_clause(filters: dict[str, Any]) -> tuple[str, list[Any]]:
    """SQL WHERE clause for equality filters on columns or metadata keys; a list value means any-of."""
    parts: list[str] = []
    params: list[Any] = []
    for key, value in filters.items():
        if not isinstance(key, str) or not key or '"' in key or "\\" in key:
            raise InvalidName(f"invalid filter key {key!r}")
        expr = _COLUMNS.get(key) or f"json_extract(metadata, '$.\"{key}\"')"
        values = list(value) if isinstance(value, (list, tuple, set)) else [value]
        if not values:
            parts.append("0")
            continue
        for v in values:
            if not isinstance(v, (str, int, float, bool)) and v is not None:
                raise InvalidName(f"filter {key!r}: values must be strings, numbers or booleans")
        parts.append(f"{expr} IN ({', '.join('?' * len(values))})")
        params.extend(values)
    return " AND ".join(parts) or "1", params


class DocstoreReader:
    """Read-only, thread-safe access to a published (immutable) docstore."""

    def __init__(self, path: Path) -> None:
        # immutable=1: published versions never change, so SQLite skips locking and journals.
        self._conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, check_same_thread=False)
        self._lock = threading.Lock()

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def documents(self) -> list[DocumentInfo]:
        """All documents, by id."""
        rows = self._query(
            "SELECT document_id, source, chunks, sha256, ingested_at FROM documents ORDER BY document_id"
        )
        return [DocumentInfo(*r) for r in rows]

    def fingerprints(self) -> dict[str, tuple[str, str]]:
        """document_id -> (sha256, origin file) for change detection."""
        return {d: (h, o) for d, h, o in self._query("SELECT document_id, sha256, origin FROM documents")}

    def chunk_rows(self, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """Chunks by internal row id."""
        ids = list(ids)
        out: dict[int, dict[str, Any]] = {}
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            rows = self._query(
                'SELECT id, chunk_id, document_id, source, page, start, "end", text, metadata FROM chunks '
                f"WHERE id IN ({', '.join('?' * len(part))})",
                part,
            )
            for rid, cid, did, src, page, start, end, text, meta in rows:
                md = json.loads(meta)
                md.update({"start": start, "end": end})
                out[rid] = {
                    "chunk_id": cid,
                    "document_id": did,
                    "source": src,
                    "page": page,
                    "text": text,
                    "metadata": md,
                }
        return out

    def matching_ids(self, filters: dict[str, Any]) -> np.ndarray:
        """Sorted internal row ids of chunks matching the filters."""
        where, params = filter_clause(filters)
        rows = self._query(f"SELECT id FROM chunks WHERE {where} ORDER BY id", params)
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def token_lists(self) -> list[list[str]]:
        """Every chunk's stored BM25 surface tokens, in row-id (index position) order."""
        rows = self._query("SELECT tokens FROM chunks ORDER BY id")
        return [tok.split(" ") if tok else [] for (tok,) in rows]

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()
