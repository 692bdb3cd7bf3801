"""BM25 analysis (stemming recorded per index, old indexes still load) and evidence-weighted fusion."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import bm25s
import numpy as np
import pytest

from ingest import search as S
from ingest.embedding import Embedder
from ingest.knowledge_base import KnowledgeBase
from ingest.store import lexical
from ingest.store.collection import Snapshot
from ingest.store.docstore import DocstoreReader
from ingest.store.versions import read_manifest, write_manifest

FORWARDER = (
    "# Log forwarder errors\n\n## Meaning\n\nThe log forwarder drops records when its output rejects them "
    "and retries exhaust the buffer.\n"
)
ETCD = "# Etcd quota\n\n## Meaning\n\nThe etcd database size is close to its storage quota.\n"


def _corpus(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "forwarder.md").write_text(FORWARDER, encoding="utf-8")
    (root / "etcd.md").write_text(ETCD, encoding="utf-8")
    (root / "zh.md").write_text(
        "# 磁盘告警\n\n当磁盘使用率超过百分之九十时触发告警，需要扩容磁盘。\n", encoding="utf-8"
    )
    return root


def _version_dir(kb: KnowledgeBase, name: str) -> Path:
    manifest = read_manifest(kb.root / name)
    assert manifest is not None
    return kb.root / name / str(manifest["dir"])


def test_analyzer_stems_english_and_leaves_cjk_alone() -> None:
    a = lexical.DEFAULT
    assert a.stemmer == "english"
    assert a.apply(["forwarder", "forwarding", "drops", "dropped"]) == ["forward", "forward", "drop", "drop"]
    assert a.apply(["磁盘", "使用率", "pods"]) == ["磁盘", "使用率", "pod"]
    assert lexical.LEGACY.apply(["forwarding"]) == ["forwarding"]
    with pytest.raises(lexical.LexicalConfigError, match="scheme"):
        lexical.Analyzer.from_json({"scheme": lexical.SCHEME + 1, "stemmer": "english"})
    with pytest.raises(lexical.LexicalConfigError, match="stemmer"):
        lexical.Analyzer.from_json({"scheme": lexical.SCHEME, "stemmer": "klingon"})


def test_stemming_is_applied_and_recorded(kb: KnowledgeBase, tmp_path: Path) -> None:
    kb.ingest_paths("c", [_corpus(tmp_path / "docs")])
    record = json.loads((_version_dir(kb, "c") / lexical.DIRNAME / lexical.CONFIG).read_text())
    assert record == {"scheme": lexical.SCHEME, "stemmer": "english", "stopwords": "en"}
    manifest = read_manifest(kb.root / "c")
    assert manifest is not None and manifest["bm25_analyzer"] == record
    # Different word forms than the document's ("forwarder", "drops") meet through the stemmer.
    hits = kb.search("c", "forwarding dropped", mode="bm25")
    assert hits and hits[0].document_id == "forwarder.md"
    zh = kb.search("c", "磁盘使用率太高", mode="bm25")
    assert zh and zh[0].document_id == "zh.md"


def _make_legacy(kb: KnowledgeBase, name: str) -> None:
    """Rewrite the published version as the code before stemming wrote it: no analyzer record."""
    vdir = _version_dir(kb, name)
    reader = DocstoreReader(vdir / "docstore.sqlite")
    tokens = reader.token_lists()
    reader.close()
    shutil.rmtree(vdir / lexical.DIRNAME)
    old = bm25s.BM25()
    old.index(tokens, show_progress=False)
    old.save(str(vdir / lexical.DIRNAME), show_progress=False)
    manifest = read_manifest(kb.root / name)
    assert manifest is not None
    manifest.pop("bm25_analyzer")
    write_manifest(kb.root / name, manifest)


def test_old_index_without_analyzer_record_loads_and_is_rebuilt_on_reingest(
    kb: KnowledgeBase, tmp_path: Path
) -> None:
    docs = _corpus(tmp_path / "docs")
    kb.ingest_paths("c", [docs])
    _make_legacy(kb, "c")
    fresh = KnowledgeBase(kb.root, kb.embedder)  # a new reader, as a restarted gateway would be
    snap = fresh.backend.snapshot("c")
    assert snap.bm25 is not None and snap.bm25.analyzer == lexical.LEGACY
    # Queries are analyzed the way the index was built: unstemmed words still match, stemmed do not.
    assert fresh.search("c", "forwarder drops", mode="bm25")[0].document_id == "forwarder.md"
    assert fresh.search("c", "forwarding", mode="bm25") == []
    assert fresh.search("c", "forwarder drops")[0].document_id == "forwarder.md"  # hybrid too
    version = snap.version
    summary = fresh.ingest_paths("c", [docs])  # nothing changed, but the BM25 analysis is outdated
    assert (summary.added, summary.updated, summary.unchanged) == (0, 0, 3)
    snap = fresh.backend.snapshot("c")
    assert snap.version == version + 1 and snap.bm25 is not None and snap.bm25.analyzer == lexical.DEFAULT
    assert fresh.search("c", "forwarding", mode="bm25")[0].document_id == "forwarder.md"
    assert fresh.ingest_paths("c", [docs]).unchanged == 3
    assert fresh.backend.snapshot("c").version == version + 1  # up to date: a no-op stays a no-op


def test_unknown_analyzer_record_is_rebuilt_in_memory(
    kb: KnowledgeBase, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    kb.ingest_paths("c", [_corpus(tmp_path / "docs")])
    cfg = _version_dir(kb, "c") / lexical.DIRNAME / lexical.CONFIG
    cfg.write_text(json.dumps({"scheme": 99, "stemmer": "english"}), encoding="utf-8")
    manifest = read_manifest(kb.root / "c")
    assert manifest is not None
    with caplog.at_level(logging.WARNING):
        snap = Snapshot.load(kb.root / "c", manifest)
    assert "rebuilding its BM25 index" in caplog.text
    assert snap.bm25 is not None and snap.bm25.analyzer == lexical.DEFAULT
    fresh = KnowledgeBase(kb.root, kb.embedder)
    assert fresh.search("c", "forwarding dropped", mode="bm25")[0].document_id == "forwarder.md"


def test_lexical_coverage() -> None:
    idx = lexical.build([["log", "forwarder", "drops"], ["etcd", "quota"], ["log", "rotation"]])
    toks = idx.query_tokens("log forwarding drops")
    assert idx.coverage(toks, 0) == pytest.approx(1.0)
    assert 0.0 < idx.coverage(toks, 2) < 0.5  # only the common word "log"
    assert idx.coverage(toks, 1) == 0.0
    assert idx.coverage([], 0) == 0.0


# ----- fusion on constructed score lists -----------------------------------------------------------
# Pool of three chunks A, B, C; each ranker's reference list is its own top candidates' scores.
DENSE_REF = np.array([0.62, 0.60, 0.45, 0.44, 0.43, 0.42, 0.40, 0.38], np.float32)
BM25_REF = np.array([30.0, 26.0, 12.0, 10.0, 9.0, 8.0, 7.0, 6.0], np.float32)


def _top(query: str, dense: list[float], bm25: list[float], coverage: float, **kw: object) -> int:
    fused = S.fuse(
        query,
        np.array(dense, np.float32),
        np.array(bm25, np.float32),
        DENSE_REF,
        BM25_REF,
        multilingual_embedder=False,
        lexical_coverage=coverage,
        **kw,  # type: ignore[arg-type]
    )
    return int(np.argmax(fused))


def test_near_verbatim_query_follows_bm25_between_near_duplicates() -> None:
    # A and B are near-duplicate passages: BM25 (exact words) prefers A, the embedding slightly B.
    dense, bm25 = [0.55, 0.62, 0.40], [30.0, 26.0, 7.0]
    q = "no virt operator pod in a ready state has been detected for ten minutes"
    assert _top(q, dense, bm25, coverage=1.0) == 0  # every query word is in A's text: BM25 leads
    assert _top(q, dense, bm25, coverage=1.0, method="zscore-flat") == 1  # equal weights let dense win


def test_paraphrase_follows_a_clear_dense_winner() -> None:
    # Few query words in any passage (coverage 0.3); BM25 weakly prefers B, dense clearly prefers A.
    dense, bm25 = [0.62, 0.45, 0.40], [10.0, 12.0, 6.0]
    assert _top("the forwarder cannot ship logs", dense, bm25, coverage=0.3) == 0
    # The same scores for a query copied from B's text (coverage 1) would go BM25's way.
    assert _top("the forwarder cannot ship logs", dense, bm25, coverage=1.0) == 1


def test_weights_follow_the_evidence() -> None:
    def wd(query: str, coverage: float, multilingual: bool = False) -> float:
        return S.fusion_weights(
            query,
            multilingual_embedder=multilingual,
            bm25_found=True,
            dense_found=True,
            lexical_coverage=coverage,
        ).dense

    english = [wd("pods restart", c) for c in (0.0, 0.25, 0.5, 0.75, 1.0)]
    assert english[0] == pytest.approx(S.DENSE_SHARE_PARAPHRASE)
    assert english[-1] == pytest.approx(S.DENSE_SHARE_VERBATIM)
    assert english == sorted(english, reverse=True)
    # CJK untouched: an English-only embedder gets no say on a Chinese query, whatever the coverage.
    assert wd("磁盘使用率太高怎么办", 0.0) < 1e-6 and wd("磁盘使用率太高怎么办", 1.0) < 1e-6
    assert wd("磁盘使用率太高怎么办", 0.0, multilingual=True) == pytest.approx(0.5)
    lone = S.fusion_weights("x", multilingual_embedder=False, bm25_found=False, dense_found=True)
    assert (lone.dense, lone.bm25) == (1.0, 0.0)


def test_bm25_fades_across_scripts_with_a_multilingual_embedder() -> None:
    def wd(query: str, gap: float, multilingual: bool = True) -> float:
        return S.fusion_weights(
            query, multilingual_embedder=multilingual, bm25_found=True, dense_found=True, script_gap=gap
        ).dense

    # A Chinese question whose BM25 match is an English runbook (only "etcd" shared): the embedding leads.
    gap = S.script_gap("etcd 数据库快要超过配额了", "The etcd database size is close to its quota.")
    assert 0.7 < gap <= 1.0 and S.script_gap("磁盘满了", "磁盘使用率太高") == 0.0
    assert wd("etcd 数据库快要超过配额了", gap) > 0.99
    assert wd("pods restart", 0.0) == pytest.approx(S.DENSE_SHARE_PARAPHRASE)  # same script: as before
    shares = [wd("q", g) for g in (0.0, 0.25, 0.5, 0.75)]
    assert shares == sorted(shares) and shares[0] == pytest.approx(0.5)
    # An English-only embedder is never trusted over BM25 because of the gap (its own fade applies).
    assert wd("pods restart", 0.9, multilingual=False) == pytest.approx(S.DENSE_SHARE_PARAPHRASE)


def test_hybrid_equals_bm25_on_chinese_and_reports_its_evidence(
    minilm_embedder: Embedder, tmp_path: Path
) -> None:
    """A collection of the English-only embedder (the default before issue 21): Chinese goes to BM25."""
    kb = KnowledgeBase(tmp_path / "collections", minilm_embedder)
    kb.ingest_paths("c", [_corpus(tmp_path / "docs")])
    zh_h = kb.search("c", "磁盘使用率太高", top_k=3)
    zh_b = kb.search("c", "磁盘使用率太高", top_k=3, mode="bm25")
    # BM25's ranking, then the chunks only the (silenced) embedding proposed, with no say in the order
    assert [h.chunk_id for h in zh_h][: len(zh_b)] == [h.chunk_id for h in zh_b]
    assert zh_h[0].metadata["scores"]["dense_weight"] < 1e-6
    hit = kb.search("c", "The log forwarder drops records when its output rejects them", top_k=1)[0]
    assert hit.document_id == "forwarder.md"
    assert hit.metadata["scores"]["lexical_coverage"] == pytest.approx(1.0)
    assert hit.metadata["scores"]["dense_weight"] == pytest.approx(S.DENSE_SHARE_VERBATIM)


def test_question_words_do_not_pick_the_guide_with_example_questions(
    kb: KnowledgeBase, tmp_path: Path
) -> None:
    """The README's own question: a guide page that shows example questions ("How do I ...?") used to
    outscore the runbook on BM25, because "how", "do", "i" are rare in a small collection."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "guide.md").write_text(
        "# Asking questions\n\nSend a question such as `How do I ingest a PDF?` to `rag/default`. "
        "How do I list collections? Use the CLI.\n",
        encoding="utf-8",
    )
    (src / "oom.md").write_text(
        "# OOMKilled\n\n## Diagnosis\n\nRun `kubectl describe pod` and look for `Reason: OOMKilled` "
        "on the last terminated container.\n",
        encoding="utf-8",
    )
    kb.ingest_paths("q", [src])
    for mode in ("bm25", "hybrid"):
        hits = kb.search("q", "How do I confirm that a container was OOMKilled?", mode=mode, top_k=2)
        assert hits[0].document_id == "oom.md", mode
    snap_tokens = kb.backend.snapshot("q").bm25.query_tokens("How do I find what uses disk in us-east-1?")  # type: ignore[union-attr]
    assert "how" not in snap_tokens and "i" not in snap_tokens
    # a question made of question words only finds nothing lexically (dense still answers)
    assert kb.search("q", "how do I?", mode="bm25") == []


def test_chinese_question_words_are_dropped_from_queries() -> None:
    words = lexical.query_words("磁盘告警是什么时候触发的？为什么我们需要扩容？")
    for gone in ("什么", "时候", "为什么", "我们"):
        assert gone not in words
    assert {"磁盘", "告警", "触发", "扩容"} <= set(words)
    # 时候 alone is a word like any other; only "什么时候" (when) is a question form
    assert "时候" in lexical.query_words("升级的时候磁盘告警")


def test_chinese_question_words_do_not_pick_the_faq_page(kb: KnowledgeBase, tmp_path: Path) -> None:
    """Chinese question words are matched by nothing but pages of questions ("什么是...？"): they used
    to count as unmatched IDF mass in the lexical coverage that weighs the fusion (0.69 here, not 1)."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "faq.md").write_text(
        "# 常见问题\n\n什么是集合？什么是告警？为什么要分块？我们可以怎么订阅？\n", encoding="utf-8"
    )
    (src / "disk.md").write_text(
        "# 磁盘告警\n\n当磁盘使用率超过百分之九十时触发磁盘告警，需要扩容磁盘。\n", encoding="utf-8"
    )
    kb.ingest_paths("zq", [src])
    for mode in ("bm25", "hybrid"):
        hits = kb.search("zq", "磁盘告警在什么时候触发？", mode=mode, top_k=2)
        assert hits[0].document_id == "disk.md", mode
    best = kb.search("zq", "磁盘告警在什么时候触发？", top_k=1)[0]
    assert best.metadata["scores"]["lexical_coverage"] == pytest.approx(1.0)


def test_script_gap_is_judged_per_candidate() -> None:
    """Mixed zh/en collection: BM25's evidence fades only for chunks in the other script."""
    dense_ref = np.array([0.25, 0.24, 0.23, 0.20, 0.19, 0.18, 0.17, 0.16], np.float32)
    bm25_ref = np.array([11.0, 4.0, 3.5, 3.0, 2.5, 2.0, 1.5, 1.0], np.float32)

    def top(gaps: list[float] | float, coverage: float) -> int:
        fused = S.fuse(
            "q",
            np.array([0.24, 0.25], np.float32),  # A: the Chinese answer; B: an English chunk dense likes
            np.array([11.0, 0.0], np.float32),  # only A shares the question's words
            dense_ref,
            bm25_ref,
            multilingual_embedder=True,
            lexical_coverage=coverage,
            script_gap=np.array(gaps) if isinstance(gaps, list) else gaps,
        )
        return int(np.argmax(fused))

    # A Chinese question: A is Chinese (gap 0), B English (gap 1). Judged per chunk, BM25's clear
    # same-script match counts; one gap for the whole query (the larger of the two best chunks')
    # silenced BM25 and let the embedding's weak cross-script guess win.
    assert top([0.0, 1.0], coverage=0.8) == 0
    assert top(1.0, coverage=0.8) == 1
    # A Chinese question about an English runbook: BM25's best is a Chinese chunk sharing common words
    # (gap 0), the runbook (gap 0.9, one shared identifier) is dense's best: the embedding decides.
    fused = S.fuse(
        "q",
        np.array([0.18, 0.25], np.float32),
        np.array([11.0, 1.0], np.float32),
        dense_ref,
        bm25_ref,
        multilingual_embedder=True,
        lexical_coverage=0.2,
        script_gap=np.array([0.0, 0.9]),
    )
    assert int(np.argmax(fused)) == 1


def test_hybrid_reports_each_chunks_script_gap(kb: KnowledgeBase, tmp_path: Path) -> None:
    kb.ingest_paths("mix", [_corpus(tmp_path / "docs")])
    hits = kb.search("mix", "磁盘使用率太高，需要扩容", top_k=3)
    gaps = {h.document_id: h.metadata["scores"]["script_gap"] for h in hits}
    assert hits[0].document_id == "zh.md" and gaps["zh.md"] < 0.1
    assert all(g > 0.9 for d, g in gaps.items() if d != "zh.md")
    weights = {h.document_id: h.metadata["scores"]["dense_weight"] for h in hits}
    assert all(weights[d] > 0.99 for d in weights if d != "zh.md") and weights["zh.md"] < 0.6


def test_script_gaps_equal_script_gap_per_text() -> None:
    texts = [
        "",
        "abc 数据库 etcd",
        "磁盘使用率太高",
        "The etcd database 12",
        "",
        "ＡＢＣ全角",
        "À é 中文ひらがな한국어 @[`{",
        "𠀀 😀 x",
    ]
    for query in ("etcd 数据库快要超过配额了", "pods restart", ""):
        want = [S.script_gap(query, t) for t in texts]
        assert S.script_gaps(query, texts) == pytest.approx(want)
    assert len(S.script_gaps("q", [])) == 0


def test_a_lone_bm25_match_first_in_both_rankers_stays_first() -> None:
    """A small mixed collection: BM25 matches one Chinese chunk (A), which the embedding also ranks
    first; English chunks (gap 1) are judged by the embedding alone. A lone BM25 match used to stand
    at its own mean (z = 0) and lose to the embedding's second choice."""
    dense = np.array([0.51, 0.36, 0.22, 0.20], np.float32)  # A, then English chunks
    bm25 = np.array([2.8, 0.0, 0.0, 0.0], np.float32)
    kw = {
        "multilingual_embedder": True,
        "lexical_coverage": 1.0,
        "script_gap": np.array([0.0, 1.0, 1.0, 1.0]),
    }
    assert int(np.argmax(S.fuse("q", dense, bm25, dense, bm25[:1], bm25_ref_size=4, **kw))) == 0  # type: ignore[arg-type]
    assert int(np.argmax(S.fuse("q", dense, bm25, dense, bm25[:1], **kw))) == 1  # type: ignore[arg-type]
