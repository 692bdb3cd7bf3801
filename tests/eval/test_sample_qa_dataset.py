"""The hand-written QA set over the sample corpus: answers occur in their documents, halves by document."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.datasets import sample_qa


def test_every_gold_answer_occurs_in_its_document() -> None:
    sample_qa.check(sample_qa.default_corpus())


def test_a_wrong_answer_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    bad = (("runbooks/pod-oomkilled.md", "en", "Exit code?", ("139",)),)
    monkeypatch.setattr(sample_qa, "QA", bad)
    with pytest.raises(ValueError, match="139"):
        sample_qa.check(sample_qa.default_corpus())


def test_the_halves_share_no_document_and_both_hold_chinese_questions(tmp_path: Path) -> None:
    assert sample_qa.main(["--out", str(tmp_path)]) == 0
    halves = {}
    for name in ("tune", "heldout"):
        rows = [json.loads(line) for line in (tmp_path / f"queries_{name}.jsonl").read_text().splitlines()]
        halves[name] = rows
        assert rows and any(r["language"] == "zh" for r in rows) and all(r["answers"] for r in rows)
    docs = [{r["relevant"][0] for r in rows} for rows in halves.values()]
    assert not docs[0] & docs[1]
    assert len(halves["tune"]) + len(halves["heldout"]) == len(sample_qa.QA)
