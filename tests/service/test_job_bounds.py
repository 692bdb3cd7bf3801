"""Ingestion jobs under full disks and floods: they always finish, staging is removed, queues are bounded.

Issue 19, finding 15. The JobManager runs real jobs on a real file system; the HTTP tests go through a
real gateway.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ingest.errors import StorageError
from ingest.types import IngestSummary
from service.jobs import JobManager, JobQueueFull
from tests.utils.fake_vllm import FakeVLLM
from tests.utils.gateway import remote_settings, serve_gateway


def _wait(jobs: JobManager, job_id: str, timeout_s: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = jobs.get(job_id)
        assert job is not None
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} still {jobs.get(job_id)} after {timeout_s} s")


def _staged(root: Path, name: str) -> tuple[list[tuple[str, Path]], Path]:
    staging = root / name
    staging.mkdir(parents=True)
    f = staging / "a.txt"
    f.write_text("some text\n")
    return [("a.txt", f)], staging


def _ok(_c: str, files: list[tuple[str, Path]], _p: Callable[[str, int, int], None]) -> IngestSummary:
    return IngestSummary(added=len(files))


def test_a_full_disk_fails_the_job_and_removes_its_staging(tmp_path: Path) -> None:
    def disk_full(_c: str, _f: list[tuple[str, Path]], _p: Callable[[str, int, int], None]) -> IngestSummary:
        raise StorageError("collection 'c': writing failed ([Errno 28] No space left on device)")

    jobs = JobManager(tmp_path / "jobs", disk_full)
    files, staging = _staged(tmp_path / "uploads", "u1")
    job = _wait(jobs, jobs.submit("c", files, staging).job_id)
    assert job["status"] == "failed" and "No space left" in job["error"]
    assert not staging.exists()
    jobs.shutdown()


def test_status_writes_failing_never_leave_a_job_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = JobManager(tmp_path / "jobs", _ok)
    real = Path.write_text

    def enospc(self: Path, *a: Any, **k: Any) -> int:
        if self.parent == tmp_path / "jobs":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "write_text", enospc)
    files, staging = _staged(tmp_path / "uploads", "u1")
    job = _wait(jobs, jobs.submit("c", files, staging).job_id)
    assert job["status"] == "succeeded" and not staging.exists()
    assert not list((tmp_path / "jobs").glob("*.tmp"))
    jobs.shutdown()


def test_the_queue_and_staged_bytes_are_bounded(tmp_path: Path) -> None:
    release = threading.Event()

    def slow(_c: str, files: list[tuple[str, Path]], _p: Callable[[str, int, int], None]) -> IngestSummary:
        release.wait(30)
        return IngestSummary(added=len(files))

    jobs = JobManager(tmp_path / "jobs", slow, max_pending=2, max_staged_bytes=1000)
    ids = []
    for i in range(2):
        files, staging = _staged(tmp_path / "uploads", f"u{i}")
        ids.append(jobs.submit("c", files, staging, staged_bytes=100).job_id)
    with pytest.raises(JobQueueFull) as exc:
        jobs.check_capacity()
    assert exc.value.status_code == 429 and exc.value.headers["Retry-After"]
    with pytest.raises(JobQueueFull):
        jobs.submit("c", [], None)
    release.set()
    for job_id in ids:
        assert _wait(jobs, job_id)["status"] == "succeeded"
    jobs.check_capacity(900)
    with pytest.raises(JobQueueFull, match="bytes"):
        jobs.check_capacity(1001)
    jobs.shutdown()


def test_job_records_are_bounded_and_leftover_staging_is_removed(tmp_path: Path) -> None:
    leftover = tmp_path / "uploads" / "from-a-crash"
    leftover.mkdir(parents=True)
    (leftover / "x.txt").write_text("x")
    jobs = JobManager(tmp_path / "jobs", _ok, staging_root=tmp_path / "uploads", max_records=3)
    assert not leftover.exists()
    ids = [jobs.submit("c", [], None).job_id for _ in range(6)]
    _wait(jobs, ids[-1])  # one writer thread: the others finished before it
    time.sleep(0.1)
    assert len(list((tmp_path / "jobs").glob("*.json"))) == 3
    assert jobs.get(ids[0]) is None and jobs.get(ids[-1]) is not None
    jobs.shutdown()


@pytest.fixture(scope="module")
def full_disk_gateway(tmp_path_factory: pytest.TempPathFactory, shared_embedder: object) -> Iterator[str]:
    fake = FakeVLLM()
    from tests.utils.servers import serve_in_thread

    with serve_in_thread(fake.app, ready_path="/health") as engine_url:
        settings = remote_settings(
            tmp_path_factory.mktemp("full-disk"),
            engine_url,
            server={"min_free_disk_bytes": 1 << 60},  # more than any disk: it is always "full"
        )
        with serve_gateway(settings, shared_embedder) as (url, _app):
            yield url


def test_upload_to_a_full_disk_is_a_507_and_writes_nothing(full_disk_gateway: str, tmp_path: Path) -> None:
    r = httpx.post(
        full_disk_gateway + "/v1/collections/newcoll/documents",
        files={"file": ("a.txt", b"hello world\n", "text/plain")},
        timeout=30,
    )
    assert r.status_code == 507, r.text
    assert r.json()["error"]["code"] == "insufficient_storage" and r.headers["Retry-After"]
    names = [c["name"] for c in httpx.get(full_disk_gateway + "/v1/collections", timeout=10).json()["data"]]
    assert "newcoll" not in names
