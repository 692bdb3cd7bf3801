"""Versioned layout of a collection: version dirs, an atomically replaced manifest, a writer lock."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ingest.errors import StoreBusy

MANIFEST = "manifest.json"
LOCK = ".lock"
FORMAT = 1
_VERSION_DIR = re.compile(r"\Av(\d{6,})\Z")


def version_dir_name(version: int) -> str:
    """Directory name of a version: v000001, v000002, ..."""
    return f"v{version:06d}"


def fsync_path(path: Path) -> None:
    """fsync one file or directory."""
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """fsync every file and directory under root (deepest first), then root itself."""
    for dirpath, _dirs, files in os.walk(root, topdown=False):
        for f in files:
            fsync_path(Path(dirpath) / f)
        fsync_path(Path(dirpath))


def read_manifest(coll_dir: Path) -> dict[str, Any] | None:
    """The current manifest, or None when the collection has none (yet)."""
    try:
        data = json.loads((coll_dir / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return data if isinstance(data, dict) else None


def write_manifest(coll_dir: Path, data: dict[str, Any]) -> None:
    """Publish: write a temp file, fsync it, rename over the manifest, fsync the directory."""
    tmp = coll_dir / f".{MANIFEST}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump({**data, "format": FORMAT}, fh, indent=1, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, coll_dir / MANIFEST)
    fsync_path(coll_dir)


def version_dirs(coll_dir: Path) -> dict[int, Path]:
    """All version directories present, by number (committed or not)."""
    out: dict[int, Path] = {}
    with contextlib.suppress(FileNotFoundError):
        for p in coll_dir.iterdir():
            m = _VERSION_DIR.match(p.name)
            if m and p.is_dir():
                out[int(m.group(1))] = p
    return out


def collect_garbage(coll_dir: Path, keep: set[int]) -> None:
    """Remove version dirs not in `keep` and stale temp files (open files stay readable)."""
    for number, path in version_dirs(coll_dir).items():
        if number not in keep:
            shutil.rmtree(path, ignore_errors=True)
    for p in coll_dir.glob(f".{MANIFEST}.*.tmp"):
        p.unlink(missing_ok=True)


@contextlib.contextmanager
def writer_lock(coll_dir: Path, wait_s: float = 5.0) -> Iterator[None]:
    """Hold the collection's exclusive writer lock (flock; the kernel releases it if we die)."""
    deadline = time.monotonic() + wait_s
    while True:
        coll_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(coll_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            if time.monotonic() >= deadline:
                raise StoreBusy(
                    f"collection {coll_dir.name!r} is being written by another job; retry when it finishes"
                ) from None
            time.sleep(0.1)
            continue
        # The collection may have been deleted (lock file unlinked) while we waited: lock the live file.
        try:
            same = os.stat(coll_dir / LOCK).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        yield
    finally:
        os.close(fd)  # closing releases the flock
