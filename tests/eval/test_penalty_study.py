"""The loop detector behind `eval.penalty_study` (the study itself runs against a live gateway)."""

from __future__ import annotations

import pytest

from eval.metrics import degenerate
from eval.penalty_study import QUESTIONS, SETTINGS


@pytest.mark.parametrize(
    "text",
    [
        "the pod crashed due to a kernel kernel kernel kernel kernel",
        "refs 1.1.1.1.1.1.1.1",
        "to be to be to be to be",
        "[1] [1] [1] [1]",
    ],
)
def test_loops_are_degenerate(text: str) -> None:
    assert degenerate(text)


@pytest.mark.parametrize(
    "text",
    [
        "the pod crashed due to a kernel kernel crash.",  # a stutter, not a loop
        "Exit code 137 means the container was OOMKilled: it used more memory than its limit.",
        "",
    ],
)
def test_ordinary_answers_are_not(text: str) -> None:
    assert not degenerate(text)


def test_every_setting_is_explicit_and_every_question_has_words() -> None:
    assert "frequency_penalty=0" in SETTINGS and all(SETTINGS.values())
    assert len(QUESTIONS) >= 20 and all(words for _q, words in QUESTIONS)
