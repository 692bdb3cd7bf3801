"""kill -9 during an ingest leaves the last committed version loadable and intact."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ingest.embedding import Embedder
from ingest.knowledge_base import KnowledgeBase
from ingest.store import vectors
from ingest.store.versions import read_manifest

REPO = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from ingest.embedding import Embedder
    from ingest.knowledge_base import KnowledgeBase
    import ingest.store.collection as collection

    root, corpus, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    if mode.endswith("before-publish"):
        # Die at the worst moment: the new version is complete and fsync'd, the manifest not yet swapped.
        def die(*_a, **_k):
            os.kill(os.getpid(), signal.SIGKILL)
        collection.write_manifest = die
    threshold = 1 if mode.startswith("hnsw") else collection.vectors.HNSW_THRESHOLD
    kb = KnowledgeBase(root, Embedder.load(device="cpu"), embed_group=4, hnsw_threshold=threshold)
    print("ready", flush=True)
    kb.ingest_paths("c", [corpus])
    print("finished", flush=True)
    """
)


def _spawn(tmp_path: Path, root: Path, corpus: Path, mode: str) -> subprocess.Popen[str]:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, str(script), str(root), str(corpus), mode],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _assert_intact(root: Path, embedder: Embedder, expected_docs: set[str]) -> None:
    kb = KnowledgeBase(root, embedder)
    manifest = read_manifest(root / "c")
    assert manifest is not None and manifest["version"] == 1
    # The vector index of the committed version is whole (a carried-forward HNSW graph is read from
    # it and written elsewhere, never modified in place).
    index = vectors.load_index(root / "c" / manifest["dir"] / vectors.FILENAME)
    assert index.ntotal == manifest["chunks"]
    db = root / "c" / manifest["dir"] / "docstore.sqlite"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert {d.document_id for d in kb.list_documents("c")} == expected_docs
    assert kb.search("c", "CoreDNS pods are not ready", top_k=1)[0].document_id == "network.txt"


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["mid-ingest", "before-publish", "hnsw-before-publish"])
def test_kill_9_keeps_last_committed_version(
    tmp_path: Path, corpus: Path, embedder: Embedder, mode: str
) -> None:
    root = tmp_path / "collections"
    threshold = 1 if mode.startswith("hnsw") else vectors.HNSW_THRESHOLD  # hnsw: the graph is carried forward
    KnowledgeBase(root, embedder, hnsw_threshold=threshold).ingest_paths(
        "c", [corpus / "network.txt"], base_dir=corpus
    )
    assert read_manifest(root / "c")["index"] == ("hnsw" if threshold == 1 else "flat")  # type: ignore[index]
    for i in range(40):
        (corpus / f"note{i:02d}.txt").write_text(
            f"Note {i}: "
            + " ".join(f"the node pool {i} scaled to {j} machines after the alert." for j in range(12))
        )
    child = _spawn(tmp_path, root, corpus, mode)
    try:
        if mode == "mid-ingest":
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
            staging = root / "c" / "v000002" / "docstore.sqlite"
            deadline = time.monotonic() + 60
            while not staging.exists():
                assert time.monotonic() < deadline and child.poll() is None, "writer never started"
                time.sleep(0.01)
            time.sleep(0.5)  # well inside embedding 40 files in groups of 4 chunks
            assert child.poll() is None, "ingest finished before it could be killed"
            child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=120) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    _assert_intact(root, embedder, {"network.txt"})
    # The next writer discards the dead one's half-built directory and publishes normally.
    s = KnowledgeBase(root, embedder, hnsw_threshold=threshold).ingest_paths(
        "c", [corpus / "network.txt"], base_dir=corpus
    )
    assert s.unchanged == 1
    s = KnowledgeBase(root, embedder, hnsw_threshold=threshold).ingest_paths(
        "c", [corpus / "zh.md"], base_dir=corpus
    )
    assert s.added == 1
    manifest = read_manifest(root / "c")
    assert manifest is not None and manifest["version"] == 2 and manifest["documents"] == 2
