"""The runbook query-set builder: on a tiny tree written here, and on ../shared/data when present."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval.datasets.runbooks import (
    PARAPHRASED,
    PARAPHRASED_HELDOUT,
    PARAPHRASED_HELDOUT2,
    PARAPHRASED_TUNE,
    build,
    meaning_query,
)
from tests.conftest import SHARED_DATA

RUNBOOKS = SHARED_DATA / "runbooks-openshift"


def test_meaning_query_removes_the_alert_name() -> None:
    text = (
        "# EtcdNoLeader\n\n## Meaning\n\nThe `EtcdNoLeader` alert fires when [etcd][1] has no leader.\n"
        "\n## Impact\n\nx\n"
    )
    q = meaning_query(text, "EtcdNoLeader")
    assert q == "The the alert alert fires when etcd has no leader."
    assert meaning_query("# A\n\n## Impact\n\nno meaning section\n", "A") is None


def test_build_on_a_tiny_tree(tmp_path: Path) -> None:
    (tmp_path / "op").mkdir()
    (tmp_path / "op" / "DiskFull.md").write_text("# DiskFull\n\n## Meaning\n\nThe disk is full on a node.\n")
    sets = build(tmp_path)
    assert [q["relevant"] for q in sets["meaning"]] == [["op/DiskFull.md"]]
    assert len(sets["meaning_tune"]) + len(sets["meaning_test"]) == 1
    assert sets["impact_tune"] == sets["keywords_tune"] == []  # no Impact section; too few words to draw
    assert sets["paraphrased"] == []  # none of the hand-written queries' runbooks exist here


@pytest.mark.skipif(not RUNBOOKS.is_dir(), reason="shared runbooks data not present")
def test_hand_written_queries_point_at_real_runbooks() -> None:
    sets = build(RUNBOOKS)
    assert len(sets["paraphrased"]) == len(PARAPHRASED) >= 40
    assert len(sets["paraphrased_tune"]) == len(PARAPHRASED_TUNE)
    tune_docs = {q["relevant"][0] for q in sets["paraphrased_tune"]}
    assert not tune_docs & {q["relevant"][0] for q in sets["paraphrased"]}  # tuning never sees test runbooks
    assert len(sets["paraphrased_heldout"]) == len(PARAPHRASED_HELDOUT) >= 40
    held_docs = {q["relevant"][0] for q in sets["paraphrased_heldout"]}
    assert not held_docs & (tune_docs | {q["relevant"][0] for q in sets["paraphrased"]})
    assert len(sets["paraphrased_heldout2"]) == len(PARAPHRASED_HELDOUT2) >= 40
    held2_docs = {q["relevant"][0] for q in sets["paraphrased_heldout2"]}
    assert not held2_docs & (held_docs | tune_docs | {q["relevant"][0] for q in sets["paraphrased"]})
    test_docs = {q["relevant"][0] for q in sets["meaning_test"]}
    for name in ("impact_tune", "keywords_tune"):  # generated tuning queries never touch test documents
        assert len(sets[name]) > 80 and not {q["relevant"][0] for q in sets[name]} & test_docs
        assert all(len(q["query"].split()) >= 4 for q in sets[name])
    hand = ("paraphrased", "paraphrased_tune", "paraphrased_heldout", "paraphrased_heldout2")
    for q in (q for name in hand for q in sets[name]):
        alert = Path(q["relevant"][0]).stem.lower()
        assert alert not in q["query"].lower() and alert not in q["query"].lower().replace(" ", "")
