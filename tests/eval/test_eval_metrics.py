"""Metric functions against hand-computed values."""

from __future__ import annotations

import math

import pytest

from eval import metrics as m
from eval.qa import abstains, abstention_phrases


def test_rank_metrics_by_hand() -> None:
    ranked = ["a", "b", "c", "d"]
    rel = {"c", "x"}
    assert m.hit_at(ranked, rel, 1) == 0.0
    assert m.hit_at(ranked, rel, 3) == 1.0
    assert m.reciprocal_rank(ranked, rel, 10) == pytest.approx(1 / 3)
    assert m.reciprocal_rank(ranked, rel, 2) == 0.0
    assert m.recall_at(ranked, rel, 10) == 0.5
    # DCG = 1/log2(4); ideal with 2 relevant = 1 + 1/log2(3)
    assert m.ndcg_at(ranked, rel, 10) == pytest.approx((1 / math.log2(4)) / (1 + 1 / math.log2(3)))
    assert m.ndcg_at(["x", "c"], rel, 10) == pytest.approx(1.0)
    assert m.first_relevant_rank(ranked, rel) == 3
    assert m.first_relevant_rank(ranked, {"z"}) is None


def test_summary_and_curve() -> None:
    rankings = [["a", "b"], ["b", "a"], ["c", "d"]]
    relevants = [{"a"}, {"a"}, {"a"}]
    s = m.retrieval_summary(rankings, relevants, [10.0, 20.0, 30.0])
    assert s["hit@1"] == pytest.approx(1 / 3, abs=1e-4)
    assert s["hit@5"] == pytest.approx(2 / 3, abs=1e-4)
    assert s["mrr@10"] == pytest.approx((1 + 0.5 + 0) / 3, abs=1e-4)
    assert s["n_queries"] == 3
    assert s["latency_ms_p50"] == 20.0
    assert s["latency_ms_p99"] == pytest.approx(29.8)
    assert m.hit_curve(rankings, relevants, 3) == pytest.approx([1 / 3, 2 / 3, 2 / 3])
    assert m.dedupe(["a", "b", "a", "c", "b"]) == ["a", "b", "c"]


def test_answer_metrics_english() -> None:
    assert m.exact_match("The exit code 137 [1].", ["exit code 137"]) == 1.0
    assert m.exact_match("137", ["exit code 137"]) == 0.0
    # pred tokens: exit code 137 was (4); gold: exit code 137 (3); common 3 -> P 3/4, R 1
    assert m.token_f1("Exit code 137 was [2]", ["exit code 137"]) == pytest.approx(2 * 0.75 / 1.75)
    assert m.token_f1("nothing", ["exit code 137"]) == 0.0
    assert m.contains_answer("It exited with exit code 137 today.", ["Exit code 137"])
    assert not m.contains_answer("exit code 1370", ["exit code 137"])


def test_answer_metrics_chinese_characters() -> None:
    assert m.answer_tokens("4分钟。") == ["4", "分", "钟"]
    assert m.exact_match("4 分钟", ["4分钟"]) == 1.0
    # pred: 踢 爆 了 (3), gold: 踢 爆 (2) -> P 2/3, R 1, F1 0.8
    assert m.token_f1("踢爆了", ["踢爆"]) == pytest.approx(0.8)
    assert m.contains_answer("生命数耗完即算为踢爆。", ["踢爆"])


def test_abstention_phrases_are_the_gateway_sentences_and_kin() -> None:
    phrases = abstention_phrases()
    assert any("don t know based on" in p for p in phrases), phrases
    assert any("我不知道" in p for p in phrases), phrases
    assert abstains("I don't know based on the provided documents.", phrases)
    assert abstains("根据提供的文档，我不知道。", phrases)
    assert not abstains("Restart the pod [1].", phrases)
