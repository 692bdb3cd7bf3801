"""`eval qa` through a real gateway in front of the scripted fake engine (tests/utils/fake_vllm.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from eval.data import Query
from eval.qa import evaluate
from service.settings import EngineSettings, Settings
from tests.utils.fake_vllm import MODEL, FakeVLLM
from tests.utils.servers import serve_in_thread

CORPUS = [
    {
        "id": "oom",
        "text": "A container that exceeds its memory limit is killed with exit code 137 (OOMKilled).",
    },
    {"id": "disk", "text": "When the node disk is full, prune unused images with crictl rmi --prune."},
    {"id": "cert", "text": "Renew the serving certificate before it expires in seven days."},
]
QUERIES = [
    Query("q1", "Which exit code does an OOMKilled container have?", ["oom"], ["exit code 137", "137"]),
    Query("q2", "How do I free disk space on a node?", ["disk"], ["crictl rmi --prune"]),
]


@pytest.fixture(scope="module")
def engine() -> Iterator[tuple[str, FakeVLLM]]:
    fake = FakeVLLM()
    with serve_in_thread(fake.app, ready_path="/health") as url:
        yield url, fake


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in CORPUS), encoding="utf-8")
    return path


def _settings(engine_url: str, data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir,
        engine=EngineSettings(mode="remote", url=engine_url, served_model_name=MODEL, model=MODEL),
    )


def _check(doc: dict[str, object], out: Path) -> None:
    assert doc["n_queries"] == 2 and doc["n_withheld"] == 1 and doc["errors"] == 0
    assert doc["exact_match"] == 0.5  # "Exit code 137 [1]." matches; the second answer does not
    assert 0.5 < float(doc["f1"]) < 1.0  # type: ignore[arg-type]
    assert doc["answer_in_passages"] == 1.0
    assert doc["cited_rate"] == 0.5 and doc["answer_in_citations"] == 0.5
    assert doc["citation_precision"] == 1.0  # q1 cites [1], the OOM passage
    assert doc["abstention_rate"] == 1.0 and doc["false_abstention_rate"] == 0.0
    saved = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert saved["exact_match"] == doc["exact_match"]
    for png in ("qa_metrics.png", "f1_hist.png", "latency_hist.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    assert "Answer-quality evaluation" in (out / "report.md").read_text(encoding="utf-8")
    rows = [json.loads(line) for line in (out / "answers.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["withheld"] for r in rows] == [False, False, True]
    # The withheld question was answered from other documents only.
    relevant = {q.id: q.relevant for q in QUERIES}[rows[-1]["id"]]
    assert rows[-1]["citations"] and not set(rows[-1]["citations"]) & set(relevant)


def _script(fake: FakeVLLM) -> None:
    fake.requests.clear()
    fake.replies.clear()
    # Asked in order (concurrency 1): q1, q2, then the withheld one.
    fake.script(
        "Exit code 137 [1].", "Use the prune command.", "I don't know based on the provided documents."
    )


def test_qa_in_process_gateway(
    tmp_path: Path, corpus: Path, engine: tuple[str, FakeVLLM], shared_embedder: object
) -> None:
    url, fake = engine
    _script(fake)
    out = tmp_path / "out"
    doc = evaluate(
        queries=QUERIES, out_dir=out, corpus=corpus, settings=_settings(url, tmp_path / "unused"),
        embedder=shared_embedder, withhold=1, seed=1, options={"max_tokens": 32}, concurrency=1,  # type: ignore[arg-type]
    )  # fmt: skip
    _check(doc, out)
    assert doc["gateway"] == "in-process"


def test_qa_against_a_running_gateway(
    tmp_path: Path, corpus: Path, engine: tuple[str, FakeVLLM], shared_embedder: object
) -> None:
    from service.app import create_app

    url, fake = engine
    app = create_app(_settings(url, tmp_path / "data"), embedder=shared_embedder)  # type: ignore[arg-type]
    with serve_in_thread(app) as root:
        _script(fake)
        out = tmp_path / "out"
        doc = evaluate(
            queries=QUERIES, out_dir=out, corpus=corpus, url=root, withhold=1, seed=1,
            options={"max_tokens": 32}, concurrency=1,
        )  # fmt: skip
        _check(doc, out)
        assert doc["gateway"] == root and str(doc["collection"]).startswith("eval-")
        # The temporary collection is deleted afterwards.
        assert not (tmp_path / "data" / "collections" / str(doc["collection"])).exists()


def test_qa_with_a_chosen_model_grounds_through_the_rag_field(
    tmp_path: Path, corpus: Path, engine: tuple[str, FakeVLLM], shared_embedder: object
) -> None:
    """`--model` (e.g. a LoRA adapter): asked as that model with `rag: {"collection": ...}`."""
    url, fake = engine
    _script(fake)
    fake.adapters["ops-format"] = "/adapters/ops-format"  # listed by the engine as a LoRA adapter
    out = tmp_path / "out"
    try:
        doc = evaluate(
            queries=QUERIES, out_dir=out, corpus=corpus, settings=_settings(url, tmp_path / "unused"),
            embedder=shared_embedder, withhold=1, seed=1,
            options={"max_tokens": 32, "model": "ops-format"}, concurrency=1,  # type: ignore[arg-type]
        )  # fmt: skip
    finally:
        fake.adapters.clear()
    _check(doc, out)  # grounded: the same passages and citations as with rag/<collection>
    assert doc["model"] == "ops-format"
    chats = [r for r in fake.requests if "messages" in r]
    assert chats and all(r["model"] == "ops-format" for r in chats)


def test_a_corpus_with_subfolders_is_refused_before_anything_is_created(
    tmp_path: Path, engine: tuple[str, FakeVLLM], shared_embedder: object
) -> None:
    from service.app import create_app

    nested = tmp_path / "corpus" / "runbooks"
    nested.mkdir(parents=True)
    (nested / "oom.md").write_text("# OOMKilled\n\nExit code 137 means the memory limit was hit.\n")
    url, _fake = engine
    app = create_app(_settings(url, tmp_path / "data"), embedder=shared_embedder)  # type: ignore[arg-type]
    with serve_in_thread(app) as root:
        with pytest.raises(ValueError, match="ragserve ingest"):
            evaluate(queries=QUERIES, out_dir=tmp_path / "out", corpus=tmp_path / "corpus", url=root)
        names = [c["name"] for c in httpx.get(root + "/v1/collections", timeout=10).json()["data"]]
        assert not [n for n in names if n.startswith("eval-")]
