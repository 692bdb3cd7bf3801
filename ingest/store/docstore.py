"""SQLite docstore: documents and chunks (text, metadata, BM25 tokens, embedding) of one version."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ingest.errors import IngestError, InvalidFilter, QueryTimeout
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
    metadata TEXT NOT NULL,
    root TEXT                      -- source root of the run that wrote it (None: an upload); prune scope
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

COLUMNS = {"document_id": "document_id", "source": "source", "page": "page", "chunk_id": "chunk_id"}
# Filter keys: plain names only (docs/security.md). The key reaches SQL as a bound JSON path, never as text.
FILTER_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,63}", re.ASCII)
MAX_FILTER_KEYS = 32
MAX_FILTER_VALUES = 1000  # all keys together; SQLite allows 32,766 bound parameters per statement
# A docstore statement running longer than this is interrupted (SQLite progress handler).
STATEMENT_TIMEOUT_S = 10.0


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a copied docstore to the current schema (columns added since it was written)."""
    if "root" not in _columns(conn, "documents"):
        conn.execute("ALTER TABLE documents ADD COLUMN root TEXT")


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


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
    _migrate(conn)
    return conn


def parse_filters(filters: dict[str, Any]) -> list[tuple[str, list[Any]]]:
    """Validated (key, values) pairs of a search filter; a list value means any-of.

    Keys must match FILTER_KEY_RE and values be strings, numbers, booleans or null; anything else
    (and too many keys or values) is InvalidFilter. Every backend turns these into its own query
    with the values bound or quoted, never as text taken from the request.
    """
    if not isinstance(filters, dict):
        raise InvalidFilter("filters must be an object of metadata key -> value or list of values")
    if len(filters) > MAX_FILTER_KEYS:
        raise InvalidFilter(f"filters: at most {MAX_FILTER_KEYS} keys, got {len(filters)}")
    out: list[tuple[str, list[Any]]] = []
    count = 0
    for key, value in filters.items():
        if not isinstance(key, str) or not FILTER_KEY_RE.fullmatch(key):
            raise InvalidFilter(
                f"invalid filter key {str(key)[:80]!r}: use 1-64 ASCII letters, digits, '_', '.', ':', '-', "
                "starting with a letter or '_'"
            )
        values = list(value) if isinstance(value, (list, tuple, set)) else [value]
        for v in values:
            if not isinstance(v, (str, int, float, bool)) and v is not None:
                raise InvalidFilter(f"filter {key!r}: values must be strings, numbers or booleans")
        count += len(values)
        if count > MAX_FILTER_VALUES:
            raise InvalidFilter(f"filters: at most {MAX_FILTER_VALUES} values in all")
        out.append((key, values))
    return out


def filter_clause(filters: dict[str, Any]) -> tuple[str, list[Any]]:
    """SQL WHERE clause for equality filters on columns or metadata keys (`parse_filters`).

    Every value is a bound parameter, the JSON path included, so no part of a request ever
    becomes SQL text.
    """
    parts: list[str] = []
    params: list[Any] = []
    for key, values in parse_filters(filters):
        if not values:
            parts.append("0")
            continue
        if key in COLUMNS:
            expr = COLUMNS[key]
        else:
            expr = "json_extract(metadata, ?)"
            params.append(f'$."{key}"')
        parts.append(f"{expr} IN ({', '.join('?' * len(values))})")
        params.extend(values)
    return " AND ".join(parts) or "1", params


class DocstoreReader:
    """Read-only, thread-safe access to a published (immutable) docstore.

    Each thread gets its own connection, so no lock is held while a statement runs: a slow query
    delays only its own caller. Every statement is interrupted past `statement_timeout_s`.
    """

    def __init__(self, path: Path, *, statement_timeout_s: float = STATEMENT_TIMEOUT_S) -> None:
        # immutable=1: published versions never change, so SQLite skips locking and journals.
        self._uri = f"file:{path}?mode=ro&immutable=1"
        self.statement_timeout_s = statement_timeout_s
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()  # guards _conns only; never held around a statement
        self._closed = False
        self._conn()  # open once here, so a missing or broken file fails at load time

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._uri, uri=True, check_same_thread=False)
            with self._lock:
                if self._closed:
                    conn.close()
                    raise IngestError("the docstore was closed (the collection changed); retry")
                self._conns.append(conn)
            self._local.conn = conn
        return conn

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        conn = self._conn()
        deadline = time.monotonic() + self.statement_timeout_s

        def past_deadline() -> int:
            return 1 if time.monotonic() > deadline else 0  # non-zero interrupts the statement

        conn.set_progress_handler(past_deadline, 10_000)
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            if time.monotonic() > deadline:
                raise QueryTimeout(
                    f"the search filter query ran past {self.statement_timeout_s:g} s and was stopped"
                ) from exc
            raise
        finally:
            conn.set_progress_handler(None, 0)

    def documents(self) -> list[DocumentInfo]:
        """All documents, by id."""
        rows = self._query(
            "SELECT document_id, source, chunks, sha256, ingested_at FROM documents ORDER BY document_id"
        )
        return [DocumentInfo(*r) for r in rows]

    def fingerprints(self) -> dict[str, tuple[str, str, str | None]]:
        """document_id -> (sha256, origin file, source root) for change detection and pruning."""
        has_root = "root" in {r[1] for r in self._query("PRAGMA table_info(documents)")}
        root = "root" if has_root else "NULL"  # written before roots were recorded: never pruned
        rows = self._query(f"SELECT document_id, sha256, origin, {root} FROM documents")
        return {d: (h, o, r) for d, h, o, r in rows}

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

    def document_rows(self) -> list[dict[str, Any]]:
        """Every document's full row (what a copy to another store needs), by id."""
        has_root = "root" in {r[1] for r in self._query("PRAGMA table_info(documents)")}
        root = "root" if has_root else "NULL"
        rows = self._query(
            "SELECT document_id, source, origin, sha256, chunks, ingested_at, metadata, "
            f"{root} FROM documents ORDER BY document_id"
        )
        keys = ("document_id", "source", "origin", "sha256", "chunks", "ingested_at", "metadata", "root")
        out = [dict(zip(keys, r, strict=True)) for r in rows]
        for d in out:
            d["metadata"] = json.loads(d["metadata"]) if d["metadata"] else {}
        return out

    def chunk_export(self, document_id: str) -> list[dict[str, Any]]:
        """A document's chunks in order, with their stored embedding (float32) and BM25 surface tokens."""
        rows = self._query(
            'SELECT chunk_id, document_id, source, page, start, "end", text, tokens, metadata, embedding '
            "FROM chunks WHERE document_id = ? ORDER BY id",
            (document_id,),
        )
        keys = (
            "chunk_id",
            "document_id",
            "source",
            "page",
            "start",
            "end",
            "text",
            "tokens",
            "metadata",
            "embedding",
        )
        out = [dict(zip(keys, r, strict=True)) for r in rows]
        for c in out:
            c["metadata"] = json.loads(c["metadata"]) if c["metadata"] else {}
            c["tokens"] = c["tokens"].split(" ") if c["tokens"] else []
            c["embedding"] = np.frombuffer(c["embedding"], dtype=np.float32)
        return out

    def token_lists(self) -> list[list[str]]:
        """Every chunk's stored BM25 surface tokens, in row-id (index position) order."""
        rows = self._query("SELECT tokens FROM chunks ORDER BY id")
        return [tok.split(" ") if tok else [] for (tok,) in rows]

    def close(self) -> None:
        """Close every thread's connection."""
        with self._lock:
            self._closed = True
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()
