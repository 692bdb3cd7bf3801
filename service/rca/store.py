"""Stored analyses: one SQLite file under the data dir, deduplicated by alert fingerprint, bounded.

Tenants never touch each other's analyses: dedup, resolve and retention are scoped to the
(collection, owner) pair, the owner being the API key that created the analysis.

Every call is short (an indexed lookup or one row written) and runs under one lock, so the
dedup check and the insert of a new analysis are atomic for the whole process.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from service.rca.models import (
    AlertStatus,
    AlertSummary,
    AnalysisSource,
    AnalysisStatus,
    RcaResponse,
    StoredAnalysis,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS analyses (
    id TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    alertname TEXT NOT NULL,
    collection TEXT NOT NULL,
    source TEXT NOT NULL,
    status TEXT NOT NULL,
    alert_status TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    started_at REAL,
    completed_at REAL,
    resolved_at REAL,
    error TEXT,
    alert_json TEXT NOT NULL,
    request_json TEXT NOT NULL,
    result_json TEXT,
    owner TEXT NOT NULL DEFAULT '',
    owner_json TEXT,
    charged INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS analyses_fingerprint ON analyses (fingerprint, created_at);
CREATE INDEX IF NOT EXISTS analyses_created ON analyses (created_at, id);
"""

_ACTIVE = ("queued", "running")
_ADDED_COLUMNS = (
    ("owner", "TEXT NOT NULL DEFAULT ''"),
    ("owner_json", "TEXT"),
    ("charged", "INTEGER NOT NULL DEFAULT 0"),
)


def new_id() -> str:
    return "rca_" + uuid.uuid4().hex[:20]


def _ts(v: float | None) -> datetime | None:
    return datetime.fromtimestamp(v, UTC) if v is not None else None


class InvalidCursor(ValueError):
    """A `cursor` that this server did not hand out."""


def encode_cursor(created_at: float, analysis_id: str) -> str:
    raw = json.dumps([created_at, analysis_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, aid = json.loads(raw)
        return float(created), str(aid)
    except (ValueError, TypeError) as exc:
        raise InvalidCursor("cursor is not one this server returned in next_cursor") from exc


@dataclass(frozen=True)
class ListFilter:
    status: AnalysisStatus | None = None
    alert_status: AlertStatus | None = None
    alertname: str | None = None
    fingerprint: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    collections: frozenset[str] | None = None  # None: every collection


@dataclass(frozen=True)
class Enqueued:
    """Outcome of offering a firing alert: a new analysis, or the existing one it duplicates."""

    analysis_id: str
    created: bool


class AnalysisStore:
    def __init__(self, path: Path, *, max_rows: int, max_age_s: float) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_rows = max_rows
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        have = {r[1] for r in self._db.execute("PRAGMA table_info(analyses)")}
        for column, decl in _ADDED_COLUMNS:
            if column not in have:  # a store written by an older version
                self._db.execute(f"ALTER TABLE analyses ADD COLUMN {column} {decl}")
        self._db.execute(
            "CREATE INDEX IF NOT EXISTS analyses_scope ON analyses (collection, owner, created_at)"
        )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- writes -----------------------------------------------------------------------------

    def create(
        self,
        *,
        alert: AlertSummary,
        collection: str,
        source: AnalysisSource,
        request: dict[str, Any],
        status: AnalysisStatus = "queued",
        dedupe: bool = False,
        owner: str = "",
        owner_json: dict[str, Any] | None = None,
        charged: int = 0,
    ) -> Enqueued:
        """Insert a new analysis; with `dedupe`, return the live one for this firing alert instead.

        Live means: the alert is still firing and its analysis is queued, running or completed, in
        the same collection and created by the same `owner` (API key name). A failed analysis is
        retried; an alert that resolved and fires again gets a new analysis. `charged`: tokens taken
        from the owner's bucket for it, reconciled when it finishes.
        """
        now = time.time()
        with self._lock:
            if dedupe:
                live = self._live(alert.fingerprint, collection, owner)
                if live is not None:
                    return Enqueued(live, created=False)
            aid = new_id()
            self._db.execute(
                "INSERT INTO analyses (id, fingerprint, alertname, collection, source, status, alert_status, "
                "created_at, updated_at, started_at, alert_json, request_json, owner, owner_json, charged) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    aid, alert.fingerprint, alert.alertname, collection, source, status, alert.status, now,
                    now, now if status == "running" else None, alert.model_dump_json(), json.dumps(request),
                    owner, json.dumps(owner_json) if owner_json is not None else None, charged,
                ),
            )  # fmt: skip
            self._prune(now, collection, owner)
        return Enqueued(aid, created=True)

    def find_live(self, fingerprint: str, collection: str, owner: str) -> str | None:
        """The live analysis a firing alert would duplicate (see `create`), or None."""
        with self._lock:
            return self._live(fingerprint, collection, owner)

    def _live(self, fingerprint: str, collection: str, owner: str) -> str | None:
        row = self._db.execute(
            "SELECT id FROM analyses WHERE fingerprint = ? AND collection = ? AND owner = ? "
            "AND alert_status = 'firing' AND status != 'failed' ORDER BY created_at DESC LIMIT 1",
            (fingerprint, collection, owner),
        ).fetchone()
        return str(row["id"]) if row is not None else None

    def mark_running(self, analysis_id: str) -> bool:
        """Queued -> running; False if the row is gone (pruned) or not queued."""
        now = time.time()
        with self._lock:
            cur = self._db.execute(
                "UPDATE analyses SET status = 'running', started_at = ?, updated_at = ? "
                "WHERE id = ? AND status = 'queued'",
                (now, now, analysis_id),
            )
            return cur.rowcount == 1

    def complete(self, analysis_id: str, result: RcaResponse) -> None:
        now = time.time()
        with self._lock:
            self._db.execute(
                "UPDATE analyses SET status = 'completed', completed_at = ?, updated_at = ?, "
                "result_json = ?, error = NULL WHERE id = ?",
                (now, now, result.model_dump_json(), analysis_id),
            )

    def fail(self, analysis_id: str, error: str) -> None:
        now = time.time()
        with self._lock:
            self._db.execute(
                "UPDATE analyses SET status = 'failed', completed_at = ?, updated_at = ?, error = ? "
                "WHERE id = ?",
                (now, now, error[:2000], analysis_id),
            )

    def resolve(
        self, fingerprint: str, resolved_at: datetime | None, *, collection: str, owner: str = ""
    ) -> list[str]:
        """Mark this owner's analyses of this still-firing alert in this collection resolved; the ids."""
        now = time.time()
        when = resolved_at.timestamp() if resolved_at is not None else now
        with self._lock:
            rows = self._db.execute(
                "SELECT id, alert_json FROM analyses WHERE fingerprint = ? AND collection = ? AND owner = ? "
                "AND alert_status = 'firing'",
                (fingerprint, collection, owner),
            ).fetchall()
            for row in rows:
                alert = json.loads(row["alert_json"])
                alert["status"] = "resolved"
                alert["endsAt"] = datetime.fromtimestamp(when, UTC).isoformat()
                self._db.execute(
                    "UPDATE analyses SET alert_status = 'resolved', resolved_at = ?, updated_at = ?, "
                    "alert_json = ? WHERE id = ?",
                    (when, now, json.dumps(alert), row["id"]),
                )
        return [str(r["id"]) for r in rows]

    def requeue_interrupted(self) -> list[str]:
        """At start-up: analyses a previous process left queued or running go back to the queue."""
        now = time.time()
        with self._lock:
            rows = self._db.execute(
                "SELECT id FROM analyses WHERE status IN ('queued', 'running') ORDER BY created_at"
            ).fetchall()
            self._db.execute(
                "UPDATE analyses SET status = 'queued', started_at = NULL, updated_at = ? "
                "WHERE status = 'running'",
                (now,),
            )
        return [str(r["id"]) for r in rows]

    def _prune(self, now: float, collection: str | None = None, owner: str = "") -> None:
        """Retention: drop finished analyses older than max_age, then the oldest beyond max_rows
        within one (collection, owner) scope, so one tenant's alerts never evict another's."""
        self._db.execute(
            "DELETE FROM analyses WHERE created_at < ? AND status NOT IN ('queued', 'running')",
            (now - self.max_age_s,),
        )
        if collection is None:
            return
        scope = (collection, owner)
        (count,) = self._db.execute(
            "SELECT COUNT(*) FROM analyses WHERE collection = ? AND owner = ?", scope
        ).fetchone()
        excess = int(count) - self.max_rows
        if excess > 0:
            self._db.execute(
                "DELETE FROM analyses WHERE id IN (SELECT id FROM analyses "
                "WHERE collection = ? AND owner = ? "
                "ORDER BY (status IN ('queued', 'running')), created_at, id LIMIT ?)",
                (*scope, excess),
            )

    def prune(self) -> None:
        with self._lock:
            self._prune(time.time())

    def owner_of(self, analysis_id: str) -> tuple[dict[str, Any] | None, int]:
        """The stored owner (principal fields) of an analysis and the tokens charged for it."""
        with self._lock:
            row = self._db.execute(
                "SELECT owner_json, charged FROM analyses WHERE id = ?", (analysis_id,)
            ).fetchone()
        if row is None or not row["owner_json"]:
            return None, 0
        return json.loads(row["owner_json"]), int(row["charged"])

    # -- reads ------------------------------------------------------------------------------

    def request_of(self, analysis_id: str) -> tuple[dict[str, Any], str] | None:
        """The stored request body and its source, for a worker."""
        with self._lock:
            row = self._db.execute(
                "SELECT request_json, source FROM analyses WHERE id = ?", (analysis_id,)
            ).fetchone()
        if row is None:
            return None
        return json.loads(row["request_json"]), str(row["source"])

    def get(self, analysis_id: str) -> StoredAnalysis | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM analyses WHERE id = ?", (analysis_id,)).fetchone()
        return _to_model(row) if row is not None else None

    def list(
        self, flt: ListFilter, *, limit: int, offset: int = 0, cursor: str | None = None
    ) -> tuple[list[StoredAnalysis], int, int, str | None]:
        """(page, total matching, offset of the page, next cursor), newest first."""
        where, args = _where(flt)
        order = " ORDER BY created_at DESC, id DESC"
        with self._lock:
            (total,) = self._db.execute(f"SELECT COUNT(*) FROM analyses{where}", args).fetchone()
            if cursor is not None:
                created, aid = decode_cursor(cursor)
                after = " AND " if where else " WHERE "
                after += "(created_at < ? OR (created_at = ? AND id < ?))"
                cargs = [*args, created, created, aid]
                (newer,) = self._db.execute(
                    f"SELECT COUNT(*) FROM analyses{where}{' AND ' if where else ' WHERE '}"
                    "(created_at > ? OR (created_at = ? AND id >= ?))",
                    [*args, created, created, aid],
                ).fetchone()
                offset = int(newer)
                rows = self._db.execute(
                    f"SELECT * FROM analyses{where}{after}{order} LIMIT ?", [*cargs, limit]
                ).fetchall()
            else:
                rows = self._db.execute(
                    f"SELECT * FROM analyses{where}{order} LIMIT ? OFFSET ?", [*args, limit, offset]
                ).fetchall()
        page = [_to_model(r) for r in rows]
        more = offset + len(page) < int(total)
        nxt = encode_cursor(float(rows[-1]["created_at"]), str(rows[-1]["id"])) if more and rows else None
        return page, int(total), offset, nxt

    def count(self) -> int:
        with self._lock:
            (n,) = self._db.execute("SELECT COUNT(*) FROM analyses").fetchone()
        return int(n)


def _where(flt: ListFilter) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    for column, value in (
        ("status", flt.status),
        ("alert_status", flt.alert_status),
        ("alertname", flt.alertname),
        ("fingerprint", flt.fingerprint),
    ):
        if value is not None:
            clauses.append(f"{column} = ?")
            args.append(value)
    if flt.since is not None:
        clauses.append("created_at >= ?")
        args.append(flt.since.timestamp())
    if flt.until is not None:
        clauses.append("created_at < ?")
        args.append(flt.until.timestamp())
    if flt.collections is not None:
        names: Iterable[str] = sorted(flt.collections)
        marks = ",".join("?" for _ in flt.collections)
        clauses.append(f"collection IN ({marks})" if marks else "0")
        args.extend(names)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


def _to_model(row: sqlite3.Row) -> StoredAnalysis:
    return StoredAnalysis(
        id=row["id"],
        status=row["status"],
        alert_status=row["alert_status"],
        source=row["source"],
        alertname=row["alertname"],
        fingerprint=row["fingerprint"],
        collection=row["collection"],
        alert=AlertSummary.model_validate_json(row["alert_json"]),
        created_at=_ts(row["created_at"]),
        updated_at=_ts(row["updated_at"]),
        started_at=_ts(row["started_at"]),
        completed_at=_ts(row["completed_at"]),
        resolved_at=_ts(row["resolved_at"]),
        error=row["error"],
        result=RcaResponse.model_validate_json(row["result_json"]) if row["result_json"] else None,
    )
