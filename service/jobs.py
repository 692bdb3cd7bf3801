"""Background ingestion jobs: one writer thread, status persisted as JSON beside the data.

Bounded: at most `max_pending` jobs queued or running, their staged uploads at most
`max_staged_bytes`, the newest `max_records` finished jobs remembered. A job ends `succeeded` or
`failed` whatever happens (a full disk included), and its staging directory is always removed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from ingest.types import IngestSummary
from service.errors import APIError

logger = logging.getLogger("ragserve.jobs")

JobStatus = Literal["queued", "running", "succeeded", "failed"]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class Job:
    job_id: str
    collection: str
    status: JobStatus = "queued"
    created_at: str = field(default_factory=_now)
    started_at: str | None = None
    finished_at: str | None = None
    files: list[str] = field(default_factory=list)
    progress: dict[str, int] = field(default_factory=lambda: {"done": 0, "total": 0})
    error: str | None = None
    summary: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: v for k, v in d.items() if v is not None}


IngestFn = Callable[[str, list[tuple[str, Path]], Callable[[str, int, int], None]], IngestSummary]


class JobQueueFull(APIError):
    """Too many ingestion jobs, or too many staged upload bytes, are waiting: retry later."""

    status_code = 429
    error_type = "rate_limit_error"

    def __init__(self, message: str) -> None:
        super().__init__(message, code="job_queue_full", headers={"Retry-After": "30"})


class JobManager:
    """Runs ingestion jobs one at a time (the index has one writer) and remembers their status."""

    def __init__(
        self,
        jobs_dir: Path,
        ingest: IngestFn,
        *,
        on_finished: Callable[[Job, float], None] | None = None,
        staging_root: Path | None = None,
        max_pending: int = 16,
        max_staged_bytes: int = 1024**3,
        max_records: int = 1000,
    ) -> None:
        self.jobs_dir = jobs_dir
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self._ingest = ingest
        self._on_finished = on_finished
        self.max_pending = max_pending
        self.max_staged_bytes = max_staged_bytes
        self.max_records = max_records
        self._jobs: dict[str, Job] = {}
        self._staged: dict[str, int] = {}  # job_id -> bytes staged, while queued or running
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-job")
        self._recover()
        if staging_root is not None and staging_root.is_dir():
            # Uploads staged for jobs that died with the previous process: nothing will ingest them.
            for leftover in staging_root.iterdir():
                shutil.rmtree(leftover, ignore_errors=True)
        self._prune_records()

    def _recover(self) -> None:
        """Jobs that were queued or running when the process stopped did not finish: say so."""
        for p in self.jobs_dir.glob("*.json"):
            try:
                data = json.loads(p.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if data.get("status") in ("queued", "running"):
                data["status"] = "failed"
                data["error"] = "interrupted by a server restart; upload the files again"
                data["finished_at"] = _now()
                self._write(data)

    def _write(self, data: dict[str, Any]) -> None:
        path = self.jobs_dir / f"{data['job_id']}.json"
        tmp = path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:  # a full disk: the status in memory stays right while this process lives
            logger.warning("job %s: cannot record its status (%s)", data.get("job_id"), exc)
            tmp.unlink(missing_ok=True)

    def _save(self, job: Job) -> None:
        with self._lock:
            self._write(job.to_dict())

    def check_capacity(self, incoming_bytes: int = 0) -> None:
        """JobQueueFull when one more job (staging `incoming_bytes`) would pass the bounds."""
        with self._lock:
            pending, staged = len(self._staged), sum(self._staged.values())
        if pending >= self.max_pending:
            raise JobQueueFull(f"{pending} ingestion jobs are already waiting or running; retry later")
        if staged + incoming_bytes > self.max_staged_bytes:
            raise JobQueueFull(
                f"uploads waiting for ingestion hold {staged} bytes; this one would pass the limit of "
                f"{self.max_staged_bytes}; retry later"
            )

    def submit(
        self,
        collection: str,
        files: list[tuple[str, Path]],
        staging_dir: Path | None = None,
        *,
        staged_bytes: int = 0,
    ) -> Job:
        """Queue a job (JobQueueFull past the bounds; the caller then removes its staging directory)."""
        job = Job(job_id=f"job-{uuid.uuid4().hex[:16]}", collection=collection, files=[d for d, _ in files])
        job.progress["total"] = len(files)
        with self._lock:
            if len(self._staged) >= self.max_pending:
                raise JobQueueFull(
                    f"{len(self._staged)} ingestion jobs are already waiting or running; retry later"
                )
            self._jobs[job.job_id] = job
            self._staged[job.job_id] = staged_bytes
        self._save(job)
        self._pool.submit(self._run, job, files, staging_dir)
        return job

    def _run(self, job: Job, files: list[tuple[str, Path]], staging_dir: Path | None) -> None:
        t0 = time.monotonic()

        def progress(_source: str, done: int, total: int) -> None:
            job.progress = {"done": done, "total": total}

        status: JobStatus = "failed"
        error: str | None = "the job stopped unexpectedly"
        try:
            job.status = "running"
            job.started_at = _now()
            self._save(job)
            summary = self._ingest(job.collection, files, progress)
            job.summary = summary.to_dict()
            if summary.failed and summary.failed == len(files):
                error = "; ".join(f"{f.source}: {f.reason}" for f in summary.failures)[:2000]
            else:
                status, error = "succeeded", None
        except Exception as exc:
            logger.exception("ingestion job %s failed", job.job_id)
            error = str(exc) or type(exc).__name__
        finally:
            # Clean up first: once a job reads as finished, its staging directory is gone.
            if staging_dir is not None:
                shutil.rmtree(staging_dir, ignore_errors=True)
            job.finished_at = _now()
            job.progress["done"] = job.progress["total"]
            with self._lock:
                self._staged.pop(job.job_id, None)
                job.status, job.error = status, error
            self._save(job)
            self._prune_records()
            if self._on_finished:
                try:
                    self._on_finished(job, time.monotonic() - t0)
                except Exception:
                    logger.exception("job %s: finishing hook failed", job.job_id)

    def _prune_records(self) -> None:
        """Forget all but the newest `max_records` finished jobs, in memory and on disk."""
        with self._lock:
            done = [j for j in self._jobs.values() if j.job_id not in self._staged]
            for job in sorted(done, key=lambda j: j.finished_at or j.created_at)[
                : max(0, len(done) - self.max_records)
            ]:
                del self._jobs[job.job_id]
        try:
            records = sorted(self.jobs_dir.glob("*.json"), key=lambda p: p.stat().st_mtime)
        except OSError:
            return
        with self._lock:
            live = set(self._staged)
        old = [p for p in records if p.stem not in live]
        for p in old[: max(0, len(old) - self.max_records)]:
            p.unlink(missing_ok=True)

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None:
                return job.to_dict()
        if not job_id.replace("-", "").isalnum():
            return None
        path = self.jobs_dir / f"{job_id}.json"
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=True)
