"""A failure or Ctrl-C at any step of writing a version leaves the last published one readable.

Issue 19, findings 4 and 15. Before the manifest swap the half-built version is removed and the
old one stays; after it, the new version is live and nothing (the abort path included) removes it.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import ingest.store.collection as collection
import ingest.store.versions as versions
from ingest.errors import StorageError
from ingest.knowledge_base import KnowledgeBase
from ingest.store import docstore, lexical, vectors
from ingest.store.versions import MANIFEST, read_manifest, version_dirs

# Steps of writing version 2, in order; the last two come after the manifest swap.
BEFORE_SWAP = [
    "copy_docstore",
    "put_document",
    "save_index",
    "lexical_save",
    "fsync_tree",
    "manifest_replace",
]
AFTER_SWAP = ["manifest_dir_fsync", "collect_garbage"]


def _enospc() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _inject(
    monkeypatch: pytest.MonkeyPatch, point: str, exc: Callable[[], BaseException], coll: Path
) -> None:
    def failing(real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            raise exc()

        return wrapper

    if point == "copy_docstore":
        monkeypatch.setattr(docstore, "copy_docstore", failing(docstore.copy_docstore))
    elif point == "put_document":
        monkeypatch.setattr(
            collection.VersionWriter, "put_document", failing(collection.VersionWriter.put_document)
        )
    elif point == "save_index":
        monkeypatch.setattr(vectors, "save_index", failing(vectors.save_index))
    elif point == "lexical_save":
        monkeypatch.setattr(lexical, "save", failing(lexical.save))
    elif point == "fsync_tree":
        monkeypatch.setattr(collection, "fsync_tree", failing(collection.fsync_tree))
    elif point == "manifest_replace":
        real_replace = os.replace

        def replace(src: Any, dst: Any, *a: Any, **k: Any) -> None:
            if Path(dst).name == MANIFEST:
                raise exc()
            real_replace(src, dst, *a, **k)

        monkeypatch.setattr(os, "replace", replace)
    elif point == "manifest_dir_fsync":
        real_fsync = versions.fsync_path

        def fsync_path(path: Path) -> None:
            if Path(path) == coll:
                raise exc()
            real_fsync(path)

        monkeypatch.setattr(versions, "fsync_path", fsync_path)
    elif point == "collect_garbage":
        monkeypatch.setattr(collection, "collect_garbage", failing(collection.collect_garbage))
    else:
        raise AssertionError(point)


@pytest.mark.parametrize("kind", ["ctrl-c", "disk-full"])
@pytest.mark.parametrize("point", BEFORE_SWAP + AFTER_SWAP)
def test_failure_at_each_step_keeps_a_readable_version(
    kb: KnowledgeBase, corpus: Path, monkeypatch: pytest.MonkeyPatch, point: str, kind: str
) -> None:
    kb.ingest_paths("c", [corpus / "network.txt"], base_dir=corpus)
    coll = kb.root / "c"
    exc: Callable[[], BaseException] = KeyboardInterrupt if kind == "ctrl-c" else _enospc
    with monkeypatch.context() as m:
        _inject(m, point, exc, coll)
        if point in AFTER_SWAP and kind == "disk-full":
            kb.ingest_paths("c", [corpus / "zh.md"], base_dir=corpus)  # published: the job succeeds
        else:
            with pytest.raises(KeyboardInterrupt if kind == "ctrl-c" else StorageError):
                kb.ingest_paths("c", [corpus / "zh.md"], base_dir=corpus)
    manifest = read_manifest(coll)
    assert manifest is not None
    published = manifest["version"]
    assert published == (2 if point in AFTER_SWAP else 1)
    assert (coll / manifest["dir"] / "docstore.sqlite").is_file()
    # Only the published version and the one before it remain: no leaked half-built directory.
    assert set(version_dirs(coll)) <= {published, published - 1}
    if point in BEFORE_SWAP:
        assert set(version_dirs(coll)) == {1}
    fresh = KnowledgeBase(kb.root, kb.embedder)
    docs = {d.document_id for d in fresh.list_documents("c")}
    assert docs == ({"network.txt", "zh.md"} if point in AFTER_SWAP else {"network.txt"})
    assert fresh.search("c", "CoreDNS pods are not ready", top_k=1)[0].document_id == "network.txt"
    # The next write works normally.
    fresh.ingest_paths("c", [corpus / "guide.html"], base_dir=corpus)
    assert read_manifest(coll)["version"] == published + 1  # type: ignore[index]


def test_create_and_delete_document_fail_cleanly(
    kb: KnowledgeBase, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kb.ingest_paths("c", [corpus / "network.txt", corpus / "zh.md"], base_dir=corpus)
    with monkeypatch.context() as m:
        _inject(m, "fsync_tree", _enospc, kb.root / "c")
        with pytest.raises(StorageError, match="published version is unchanged"):
            kb.delete_document("c", "zh.md")
        with pytest.raises(StorageError):
            kb.create_collection("other")
    assert {d.document_id for d in kb.list_documents("c")} == {"network.txt", "zh.md"}
    assert set(version_dirs(kb.root / "c")) == {1}
    assert not kb.exists("other") and not version_dirs(kb.root / "other")


CHILD = """
import os, signal, sys
from pathlib import Path
import pytest
from ingest.embedding import Embedder
from ingest.knowledge_base import KnowledgeBase
from tests.ingest.test_publish_safety import _inject

root, corpus, point = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
kb = KnowledgeBase(root, Embedder.load(device="cpu"))

def die() -> BaseException:
    os.kill(os.getpid(), signal.SIGKILL)
    return AssertionError("unreachable")

_inject(pytest.MonkeyPatch(), point, die, root / "c")
kb.ingest_paths("c", [corpus / "zh.md"], base_dir=corpus)
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "point", ["copy_docstore", "save_index", "manifest_replace", "manifest_dir_fsync", "collect_garbage"]
)
def test_kill_9_at_each_step_keeps_a_readable_version(kb: KnowledgeBase, corpus: Path, point: str) -> None:
    import signal
    import subprocess
    import sys

    kb.ingest_paths("c", [corpus / "network.txt"], base_dir=corpus)
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo), "HF_HUB_OFFLINE": "1"}
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(kb.root), str(corpus), point],
        cwd=repo,
        env=env,
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
    manifest = read_manifest(kb.root / "c")
    assert manifest is not None and manifest["version"] == (2 if point in AFTER_SWAP else 1)
    fresh = KnowledgeBase(kb.root, kb.embedder)
    assert fresh.search("c", "CoreDNS pods are not ready", top_k=1)[0].document_id == "network.txt"
    # The next writer discards whatever the dead one left and publishes normally.
    fresh.ingest_paths("c", [corpus / "guide.html"], base_dir=corpus)
    assert read_manifest(kb.root / "c")["version"] == manifest["version"] + 1  # type: ignore[index]
    assert {d.document_id for d in fresh.list_documents("c")} >= {"network.txt", "guide.html"}
