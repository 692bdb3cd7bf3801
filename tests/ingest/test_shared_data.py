"""Retrieval quality on small slices of ../shared/data (CMRC 2018, OpenShift runbooks), if present."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ingest.embedding import Embedder
from ingest.knowledge_base import KnowledgeBase

from .conftest import SHARED_DATA

CMRC = SHARED_DATA / "cmrc2018" / "cmrc2018_trial.json"
RUNBOOKS = SHARED_DATA / "runbooks-openshift"
RUNBOOK_DIRS = ("cluster-etcd-operator", "cluster-kube-apiserver-operator")


def _first_hit(kb: KnowledgeBase, name: str, queries: list[tuple[str, str]], mode: str) -> float:
    hits = 0
    for query, relevant in queries:
        res = kb.search(name, query, top_k=1, mode=mode)
        hits += bool(res) and res[0].document_id == relevant
    return hits / len(queries)


@pytest.mark.slow
@pytest.mark.skipif(not CMRC.is_file(), reason="shared CMRC 2018 data not present")
def test_cmrc_hybrid_keeps_bm25_quality(tmp_path: Path, embedder: Embedder) -> None:
    contexts = json.loads(CMRC.read_text(encoding="utf-8"))[:20]
    corpus = tmp_path / "cmrc.jsonl"
    corpus.write_text(
        "\n".join(
            json.dumps({"id": c["context_id"], "text": c["context_text"]}, ensure_ascii=False)
            for c in contexts
        ),
        encoding="utf-8",
    )
    queries = [(q["query_text"], c["context_id"]) for c in contexts for q in c["qas"]]
    kb = KnowledgeBase(tmp_path / "collections", embedder)
    assert kb.ingest_paths("cmrc", [corpus]).added == 20
    scores = {mode: _first_hit(kb, "cmrc", queries, mode) for mode in ("dense", "bm25", "hybrid")}
    # Naive RRF would fall far below BM25 here; evidence-weighted fusion must not.
    assert scores["hybrid"] >= scores["bm25"] >= 0.9, scores
    assert scores["hybrid"] >= scores["dense"], scores  # never below either ranker


@pytest.mark.slow
@pytest.mark.skipif(not RUNBOOKS.is_dir(), reason="shared runbooks data not present")
def test_runbooks_hybrid_not_worse_than_best_single(tmp_path: Path, embedder: Embedder) -> None:
    kb = KnowledgeBase(tmp_path / "collections", embedder)
    dirs = [RUNBOOKS / d for d in RUNBOOK_DIRS if (RUNBOOKS / d).is_dir()]
    summary = kb.ingest_paths("rb", dirs, base_dir=RUNBOOKS, include=["*.md"])
    assert summary.failed == 0 and summary.added > 10
    queries = []
    for doc in kb.list_documents("rb"):
        text = (RUNBOOKS / doc.document_id).read_text(encoding="utf-8")
        m = re.search(r"^## Meaning\s*\n(.+?)(?=^#|\Z)", text, re.M | re.S)
        if m:
            alert = Path(doc.document_id).stem
            meaning = re.sub(re.escape(alert), "the alert", " ".join(m.group(1).split()), flags=re.I)
            queries.append((meaning.replace("`", "")[:300], doc.document_id))
    assert len(queries) >= 10
    scores = {mode: _first_hit(kb, "rb", queries, mode) for mode in ("dense", "bm25", "hybrid")}
    assert scores["hybrid"] >= max(scores["dense"], scores["bm25"]) - 0.05, scores


@pytest.mark.skipif(not RUNBOOKS.is_dir(), reason="shared runbooks data not present")
def test_chinese_questions_find_english_runbooks(tmp_path: Path, embedder: Embedder) -> None:
    """Issue 21: the default embedder bridges languages (tuning-half queries; held-out ones are reported)."""
    from eval.datasets.crosslingual import records, split

    tune, _heldout = split(records("zh_en"))
    kb = KnowledgeBase(tmp_path / "collections", embedder)
    folder = "openshift-virtualization-operator"  # 89 runbooks, many near-duplicates
    kb.ingest_paths("rb", [RUNBOOKS / folder], base_dir=RUNBOOKS, include=["*.md"])
    queries = [(q["query"], q["relevant"][0]) for q in tune if q["relevant"][0].startswith(folder)]
    assert len(queries) >= 8
    top3 = {
        mode: sum(
            doc in [h.document_id for h in kb.search("rb", q, top_k=3, mode=mode)] for q, doc in queries
        )
        / len(queries)
        for mode in ("dense", "bm25", "hybrid")
    }
    assert top3["hybrid"] >= max(top3["dense"], top3["bm25"]) and top3["hybrid"] >= 0.7, top3
