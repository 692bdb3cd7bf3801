"""`ragserve ingest / collections / delete` handlers, driven through argparse like the main CLI."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from ingest import cli
from ingest.embedding import Embedder

Run = Callable[..., int]


@pytest.fixture
def run(tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch) -> Run:
    """Parse argv with the registered subcommands and call the handler as service/cli.py does."""
    monkeypatch.setattr(Embedder, "load", classmethod(lambda cls, *a, **k: embedder))
    parser = argparse.ArgumentParser(prog="ragserve")
    cli.register(parser.add_subparsers(dest="command", required=True))

    def _run(*argv: str) -> int:
        args = parser.parse_args(list(argv))
        args.data_dir = tmp_path / "var"
        args.embedding_model = embedder.model_id
        return int(args.func(args))

    return _run


def test_ingest_collections_delete(
    run: Run, corpus: Path, embedder: Embedder, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("ingest", str(corpus), "--collection", "docs", "--exclude", "*.html", "--json") == 0
    out = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(out[-1])
    assert set(summary) == {"added", "updated", "unchanged", "deleted", "failed", "chunks", "seconds"}
    assert summary["added"] == 4 and summary["failed"] == 0

    (corpus / "bad.pdf").write_bytes(b"%PDF-1.4 nonsense")
    assert run("ingest", str(corpus), "-c", "docs", "--json") == 1
    captured = capsys.readouterr()
    assert "failed: bad.pdf:" in captured.err
    assert json.loads(captured.out.strip().splitlines()[-1])["failed"] == 1

    assert run("collections", "--json") == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row == {
        "name": "docs",
        "documents": 5,
        "chunks": row["chunks"],
        "embedding_model": embedder.model_id,
        "dimension": embedder.dimension,
    }

    assert run("reembed", "--collection", "docs", "--json") == 0  # already on the configured model
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["chunks"] == 0
    assert run("reembed", "--collection", "nope") == 1
    assert "does not exist" in capsys.readouterr().err

    assert run("delete", "--collection", "docs", "--document", "zh.md") == 0
    assert run("delete", "--collection", "docs", "--document", "zh.md") == 1
    assert "not in collection" in capsys.readouterr().err
    assert run("delete", "--collection", "docs") == 0
    assert run("collections", "--json") == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == []


def test_ingest_applies_the_torch_threads_setting(
    tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    monkeypatch.setattr(Embedder, "load", classmethod(lambda cls, *a, **k: embedder))
    before = torch.get_num_threads()
    emb = argparse.Namespace(torch_threads=1, device=None, batch_size=32)
    args = argparse.Namespace(
        data_dir=tmp_path, embedding_model="all-MiniLM-L6-v2", settings=argparse.Namespace(embedding=emb)
    )
    try:
        torch.set_num_threads(2)
        kb = cli._kb(args)
        assert torch.get_num_threads() == 2  # nothing happens before the model is needed
        assert kb.embedder is embedder
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
