"""Background ingestion jobs: one writer thread, status persisted as JSON beside the data."""

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


class JobManager:
    """Runs ingestion jobs one at a time (the index has one writer) and remembers their status."""

    def __init__(
        self,
        jobs_dir: Path,
        ingest: IngestFn,
        *,
        on_finished: Callable[[Job, float], None] | None = None,
    ) -> None:
        self.jobs_dir = jobs_dir
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self._ingest = ingest
        self._on_finished = on_finished
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-job")
        self._recover()

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
        tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)

    def _save(self, job: Job) -> None:
        with self._lock:
            self._write(job.to_dict())

    def submit(self, collection: str, files: list[tuple[str, Path]], staging_dir: Path | None = None) -> Job:
        job = Job(job_id=f"job-{uuid.uuid4().hex[:16]}", collection=collection, files=[d for d, _ in files])
        job.progress["total"] = len(files)
        with self._lock:
            self._jobs[job.job_id] = job
        self._save(job)
        self._pool.submit(self._run, job, files, staging_dir)
        return job

    def _run(self, job: Job, files: list[tuple[str, Path]], staging_dir: Path | None) -> None:
        t0 = time.monotonic()
        job.status = "running"
        job.started_at = _now()
        self._save(job)

        def progress(_source: str, done: int, total: int) -> None:
            job.progress = {"done": done, "total": total}

        try:
            summary = self._ingest(job.collection, files, progress)
            job.summary = summary.to_dict()
            if summary.failed and summary.failed == len(files):
                job.status = "failed"
                job.error = "; ".join(f"{f.source}: {f.reason}" for f in summary.failures)[:2000]
            else:
                job.status = "succeeded"
        except Exception as exc:
            logger.exception("ingestion job %s failed", job.job_id)
            job.status = "failed"
            job.error = str(exc) or type(exc).__name__
        finally:
            job.finished_at = _now()
            job.progress["done"] = job.progress["total"]
            self._save(job)
            if staging_dir is not None:
                shutil.rmtree(staging_dir, ignore_errors=True)
            if self._on_finished:
                self._on_finished(job, time.monotonic() - t0)

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
