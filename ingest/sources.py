"""What an ingest reads: files under the given paths, their document ids and source roots."""

from __future__ import annotations

import fnmatch
import hashlib
import os
import posixpath
from collections.abc import Iterator, Sequence
from pathlib import Path

from ingest.errors import InvalidName, SourceMissing
from ingest.loaders import is_supported
from ingest.types import FileFailure

MAX_DOCUMENT_ID = 1024
# (document id, file, source root): one file an ingest reads.
SourceFile = tuple[str, Path, str | None]


def normalize_document_id(raw: str) -> str:
    """A clean relative POSIX-style id; ids that escape upwards, are absolute or empty are InvalidName."""
    text = str(raw).replace("\\", "/").strip()
    if not text or any(ord(ch) < 32 for ch in text) or len(text) > MAX_DOCUMENT_ID:
        raise InvalidName(f"invalid document id {raw!r}")
    norm = posixpath.normpath(text)
    if text.startswith("/") or norm == ".." or norm.startswith("../") or norm == ".":
        raise InvalidName(f"invalid document id {raw!r}: it must be a relative path without '..'")
    return norm


def collect_files(
    paths: Sequence[Path],
    *,
    base_dir: Path | None,
    include: Sequence[str],
    exclude: Sequence[str],
    prune: bool,
) -> tuple[list[SourceFile], list[FileFailure], set[str]]:
    """The files to ingest, the paths that failed, and the source roots seen.

    Ids are paths relative to the directory or base_dir; each file's source root is the directory,
    or base_dir, or a file's folder. With `prune`, a missing path or a directory with no selected
    file is SourceMissing (before anything is written: an unmounted volume must not empty the
    collection); without it, a missing path is a failure.
    """
    files: list[SourceFile] = []
    failures: list[FileFailure] = []
    roots: set[str] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            root = root_key(base_dir or path)
            roots.add(root)
            before = len(files)
            for f in walk(path):
                rel = relative_id(f, base_dir or path)
                if selected(rel, include, exclude):
                    files.append((rel, f, root))
            if prune and len(files) == before:
                raise SourceMissing(
                    f"{path}: no files to ingest in this directory (is the volume mounted?); "
                    "with prune nothing was ingested or deleted"
                )
        elif path.is_file():
            rel = relative_id(path, base_dir) if base_dir else path.name
            root = root_key(base_dir or path.parent)
            roots.add(root)
            if selected(rel, include, exclude):
                files.append((rel, path, root))
        elif prune:
            raise SourceMissing(
                f"{path}: no such file or directory; with prune nothing was ingested or deleted"
            )
        else:
            failures.append(FileFailure(str(path), "no such file or directory"))
    return files, failures, roots


def file_sha256(path: Path) -> str:
    """A file's SHA-256, hex."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def walk(root: Path) -> Iterator[Path]:
    """Supported files under root, sorted, skipping hidden files and directories."""
    for dirpath, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for n in sorted(names):
            p = Path(dirpath) / n
            if not n.startswith(".") and is_supported(p):
                yield p


def root_key(root: Path) -> str:
    """How a source root is remembered: its absolute path, symlinks resolved."""
    return str(Path(root).resolve())


def relative_id(path: Path, root: Path) -> str:
    """Path relative to root as a POSIX id (the bare name if it is not under root)."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.name


def selected(rel: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    """Glob filters on the relative path or the file name."""
    name = rel.rsplit("/", 1)[-1]

    def hit(patterns: Sequence[str]) -> bool:
        return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(name, p) for p in patterns)

    return (not include or hit(include)) and not hit(exclude)
