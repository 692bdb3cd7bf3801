"""`--prune` deletes only what earlier runs of the same source root created (issue 19, #5).

That uploads and other source roots survive a prune is part of the store contract, on both
backends: tests/ingest/test_store_contract.py::test_prune_only_touches_its_own_source_root.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.errors import SourceMissing
from ingest.knowledge_base import KnowledgeBase
from ingest.store.versions import read_manifest

REPO = Path(__file__).resolve().parents[2]


def _docs(kb: KnowledgeBase, name: str = "c") -> set[str]:
    return {d.document_id for d in kb.list_documents(name)}


def test_missing_or_empty_source_root_deletes_nothing(
    kb: KnowledgeBase, corpus: Path, tmp_path: Path
) -> None:
    kb.ingest_paths("c", [corpus])
    before = _docs(kb)
    version = read_manifest(kb.root / "c")["version"]  # type: ignore[index]
    empty = tmp_path / "unmounted"
    empty.mkdir()
    (empty / ".hidden.md").write_text("not selected\n")
    for paths in ([tmp_path / "gone"], [empty], [corpus, tmp_path / "gone"]):
        with pytest.raises(SourceMissing, match="nothing was ingested or deleted"):
            kb.ingest_paths("c", paths, prune=True)
    with pytest.raises(SourceMissing):  # every file filtered out is an empty source too
        kb.ingest_paths("c", [corpus], include=["*.nothing"], prune=True)
    assert _docs(kb) == before
    assert read_manifest(kb.root / "c")["version"] == version  # type: ignore[index]


def test_documents_from_before_roots_were_recorded_are_claimed_not_pruned(
    kb: KnowledgeBase, corpus: Path
) -> None:
    kb.ingest_paths("c", [corpus])
    # A docstore written before source roots existed: no root column at all.
    db = kb.root / "c" / read_manifest(kb.root / "c")["dir"] / "docstore.sqlite"  # type: ignore[index]
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE documents DROP COLUMN root")
    (corpus / "network.txt").unlink()
    s = kb.ingest_paths("c", [corpus], prune=True)
    assert s.deleted == 0 and "network.txt" in _docs(kb)  # unknown origin: kept
    # The run claimed the documents it saw; the next one prunes within them.
    (corpus / "zh.md").unlink()
    s = kb.ingest_paths("c", [corpus], prune=True)
    assert s.deleted == 1 and "zh.md" not in _docs(kb) and "network.txt" in _docs(kb)


@pytest.mark.slow
def test_cli_prune_of_a_missing_path_is_an_error(kb: KnowledgeBase, corpus: Path, tmp_path: Path) -> None:
    kb.ingest_paths("c", [corpus])
    data = kb.root.parent
    shutil.rmtree(corpus / "runbooks")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "service.cli",
            "--data-dir",
            str(data),
            "ingest",
            str(tmp_path / "nope"),
            "-c",
            "c",
            "--prune",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert lines[-1].startswith("ragserve ingest: error: ") and "nothing was ingested or deleted" in lines[-1]
    assert {"runbooks/pods.md", "network.txt"} <= _docs(kb)
