"""`eval.rerank_study` on a tiny collection built here with the real default embedder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval import rerank_study
from ingest.knowledge_base import KnowledgeBase

DOCS = {
    "oom.md": "# OOMKilled\n\n## Meaning\n\nThe kernel killed a container that exceeded its memory limit. "
    "The pod shows exit code 137 and reason OOMKilled.\n\n## Mitigation\n\nRaise the memory limit.\n",
    "disk.md": "# Disk pressure\n\n## Meaning\n\nThe node's root filesystem is almost full. The kubelet "
    "evicts pods and garbage-collects container images.\n",
    "cert.md": "# Certificate expiry\n\n## Meaning\n\nA TLS serving certificate expires in less than seven "
    "days. Clients will fail the handshake after that.\n",
    "zh.md": "# 错误率\n\n服务在五分钟内返回 5xx 错误的比例超过百分之五。应先检查最近一次发布，然后回滚。\n",
}
QUERIES = [
    {
        "id": "q1",
        "query": "container killed for using too much memory, exit code 137",
        "relevant": ["oom.md"],
    },
    {"id": "q2", "query": "node disk almost full and pods get evicted", "relevant": ["disk.md"]},
    {"id": "q3", "query": "TLS certificate about to expire", "relevant": ["cert.md"]},
    {"id": "q4", "query": "5xx 错误比例超过百分之五怎么办", "relevant": ["zh.md"]},
]


def test_sentences_split_on_sentence_ends_and_lines_in_both_scripts() -> None:
    assert rerank_study.sentences("The pod restarts. Check its logs!\nThen roll back?") == [
        "The pod restarts.",
        "Check its logs!",
        "Then roll back?",
    ]
    assert rerank_study.sentences("服务返回大量错误。应先检查最近一次发布。") == [
        "服务返回大量错误。",
        "应先检查最近一次发布。",
    ]
    assert rerank_study.sentences("ok.") == ["ok."]  # nothing long enough: the text itself


def test_weight_zero_replays_hybrid_search_and_reranking_reports_both_ways(
    tmp_path: Path, shared_embedder: object, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in DOCS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    kb = KnowledgeBase(tmp_path / "data" / "collections", shared_embedder)  # type: ignore[arg-type]
    kb.ingest_paths("c", [corpus])
    queries = tmp_path / "queries_tiny.jsonl"
    queries.write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in QUERIES), encoding="utf-8")
    out = tmp_path / "table.json"
    rc = rerank_study.main(
        ["--data-dir", str(tmp_path / "data"), "--collection", "c", "--queries", str(queries),
         "--cache-dir", str(tmp_path / "cache"), "--top-n", "3", "--weights", "0,1", "--latency", "2",
         "--json", str(out)]
    )  # fmt: skip
    assert rc == 0
    rows = {r["weight"]: r for r in json.loads(out.read_text(encoding="utf-8"))}
    assert set(rows) == {0.0, 1.0} and all(r["queries"] == "tiny" and r["n"] == 4 for r in rows.values())
    # w = 0 is the production hybrid ranking: the same first documents as KnowledgeBase.search.
    firsts = [kb.search("c", q["query"], top_k=1, mode="hybrid")[0].document_id for q in QUERIES]
    hybrid_hit1 = sum(f == q["relevant"][0] for f, q in zip(firsts, QUERIES, strict=True)) / len(QUERIES)
    assert rows[0.0]["hit@1"] == pytest.approx(hybrid_hit1)
    assert 0.0 <= rows[1.0]["hit@1"] <= 1.0 and rows[1.0]["hit@3"] >= rows[1.0]["hit@1"]
    assert "rerank cost" in capsys.readouterr().out
    assert list((tmp_path / "cache").glob("c-v1-*-sentences.npz"))  # sentence vectors cached


def test_unknown_collection_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    queries = tmp_path / "q.jsonl"
    queries.write_text(json.dumps(QUERIES[0]) + "\n", encoding="utf-8")
    rc = rerank_study.main(
        ["--data-dir", str(tmp_path), "--collection", "nope", "--queries", str(queries),
         "--cache-dir", str(tmp_path / "cache")]
    )  # fmt: skip
    assert rc == 1
    assert "no collection 'nope'" in capsys.readouterr().err
