"""`eval retrieval` end to end on a tiny corpus written here, with the real embedder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.data import EvalDataError, Query, load_queries
from eval.retrieval import evaluate, parse_modes

DOCS = {
    "oom.md": "# OOMKilled\n\n## Meaning\n\nThe kernel killed a container that exceeded its memory limit; "
    "the pod shows exit code 137 and reason OOMKilled.\n",
    "disk.md": "# Disk pressure\n\n## Meaning\n\nThe node's root filesystem is almost full; the kubelet "
    "evicts pods and garbage-collects container images.\n",
    "cert.md": "# Certificate expiry\n\n## Meaning\n\nA TLS serving certificate expires in less than seven "
    "days; clients will fail the handshake after that.\n",
    "zh.md": "# 错误率\n\n服务在五分钟内返回 5xx 错误的比例超过百分之五时，"
    "应先检查最近一次发布，然后回滚。\n",
}
QUERIES = [
    Query("q1", "container killed for using too much memory, exit code 137", ["oom.md"]),
    Query("q2", "node disk almost full and pods get evicted", ["disk.md"]),
    Query("q3", "TLS certificate about to expire", ["cert.md"]),
    Query("q4", "5xx 错误比例超过百分之五怎么办", ["zh.md"]),
    Query("q5", "something nobody wrote about", ["missing.md"]),
]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    root.mkdir()
    for name, text in DOCS.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_retrieval_end_to_end(tmp_path: Path, corpus: Path, shared_embedder: object) -> None:
    out = tmp_path / "out"
    doc = evaluate(
        queries=QUERIES, modes=["hybrid", "dense", "bm25"], out_dir=out, corpus=corpus,
        embedder=shared_embedder, top_k=3,  # type: ignore[arg-type]
    )  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert set(metrics["modes"]) == {"hybrid", "dense", "bm25"}
    for row in metrics["modes"].values():
        for key in ("hit@1", "hit@5", "hit@10", "mrr@10", "ndcg@10", "recall@10", "n_queries"):
            assert key in row
        assert row["n_queries"] == 5
        assert row["latency_ms_p50"] > 0 and row["latency_ms_p99"] >= row["latency_ms_p50"]
    # Top-level figures are the first mode's; q5's document does not exist, so at most 4/5.
    assert metrics["mode"] == "hybrid" and metrics["hit@1"] == metrics["modes"]["hybrid"]["hit@1"]
    assert metrics["modes"]["hybrid"]["hit@1"] == pytest.approx(0.8)
    assert metrics["modes"]["bm25"]["hit@1"] >= 0.6
    assert metrics["relevant_ids_not_in_collection"] == 1
    assert metrics["documents"] == 4 and doc["collection"] == "(temporary)"
    for png in ("hit_at_k.png", "latency_hist.png", "modes.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "| hybrid |" in report and "Worst queries: hybrid" in report and "q5" in report
    rows = [json.loads(line) for line in (out / "per_query.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 15 and {r["mode"] for r in rows} == {"hybrid", "dense", "bm25"}


def test_named_collection_is_reused(tmp_path: Path, corpus: Path, shared_embedder: object) -> None:
    kwargs = {
        "queries": QUERIES[:2],
        "modes": ["bm25"],
        "collection": "evalset",
        "data_dir": tmp_path / "data",
    }
    first = evaluate(out_dir=tmp_path / "a", corpus=corpus, embedder=shared_embedder, **kwargs)  # type: ignore[arg-type]
    assert first["ingest"]["added"] == 4
    second = evaluate(out_dir=tmp_path / "b", corpus=corpus, embedder=shared_embedder, **kwargs)  # type: ignore[arg-type]
    assert second["ingest"]["unchanged"] == 4 and second["ingest"]["added"] == 0
    third = evaluate(out_dir=tmp_path / "c", corpus=None, embedder=shared_embedder, **kwargs)  # type: ignore[arg-type]
    assert third["hit@1"] == 1.0 and third["mode"] == "bm25"


def test_inputs_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown mode"):
        parse_modes("hybrid,sparse")
    assert parse_modes("bm25, dense,bm25") == ["bm25", "dense"]
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"id": "1", "query": "x", "relevant": "a.md"}\n', encoding="utf-8")
    with pytest.raises(EvalDataError, match="line 1"):
        load_queries(bad)


def test_ingest_bench_smoke(shared_embedder: object) -> None:
    from eval.ingest_bench import bench_noop, bench_query

    noop = bench_noop(4, shared_embedder)
    assert noop["noop_unchanged"] == 4 and noop["full_chunks"] == 4
    assert noop["one_changed_seconds_median"] >= noop["one_changed_publish_seconds_median"] > 0
    res = bench_query([300], 5, shared_embedder, torch_threads=[1])
    row = res["sizes"][0]
    assert row["index"] == "flat" and row["recall_at_10_vs_exact"] == 1.0
    assert row["hybrid_ms_p50"] > 0 and res["embed_query_ms_p50"] > 0
    assert row["t1_retrieval_ms_p50"] > row["t1_embed_ms_p50"] > 0  # the whole path includes the embedding
