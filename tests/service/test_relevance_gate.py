"""The relevance gate (service/rag/relevance.py): a question no passage can answer is answered with
the abstention sentence, without asking the model, in the exact OpenAI shapes."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import openai
import pytest

from service.rag.relevance import best_sentence_similarity, sentences
from tests.service.conftest import CORPUS
from tests.utils.fake_vllm import FakeVLLM
from tests.utils.gateway import Gateway, remote_settings, serve_gateway, write_corpus

UNANSWERABLE = "What is the phone number of the on-call database administrator?"
ANSWERABLE = "What does exit code 137 mean for a container?"


def test_sentences_split_english_chinese_and_lines() -> None:
    text = "# OOMKilled\n\nThe kernel killed it. Check the pod!\n服务返回错误时，应先检查发布。然后回滚。\n1."
    assert sentences(text) == [
        "# OOMKilled",
        "The kernel killed it.",
        "Check the pod!",
        "服务返回错误时，应先检查发布。",
    ]  # "然后回滚。" and "1." are too short to say anything


def test_the_closest_sentence_scores_higher_for_a_relevant_question(shared_embedder: object) -> None:
    passages = list(CORPUS.values())
    relevant = best_sentence_similarity(shared_embedder, ANSWERABLE, passages)  # type: ignore[arg-type]
    unrelated = best_sentence_similarity(shared_embedder, UNANSWERABLE, passages)  # type: ignore[arg-type]
    assert relevant is not None and unrelated is not None
    assert relevant > 0.36 > unrelated
    assert best_sentence_similarity(shared_embedder, ANSWERABLE, []) is None  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def gated(
    fake_engine: tuple[str, FakeVLLM], shared_embedder: object, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    engine_url, fake = fake_engine
    settings = remote_settings(
        tmp_path_factory.mktemp("gate-data"), engine_url, rag={"relevance_gate": "abstain"}
    )
    corpus = write_corpus(tmp_path_factory.mktemp("gate-corpus"), CORPUS)
    with serve_gateway(settings, shared_embedder, corpus) as (url, _app):
        yield Gateway(url=url, fake=fake, settings=settings)


def _ask(gw: Gateway, question: str, **extra: object) -> httpx.Response:
    body = {"model": "rag/default", "messages": [{"role": "user", "content": question}], **extra}
    return httpx.post(gw.v1 + "/chat/completions", json=body, timeout=30)


def test_an_unanswerable_question_is_answered_without_the_model(gated: Gateway) -> None:
    before = len(gated.fake.requests)
    r = _ask(gated, UNANSWERABLE)
    assert r.status_code == 200, r.text
    out = r.json()
    assert len(gated.fake.requests) == before  # the model was not asked
    assert out["object"] == "chat.completion" and out["model"] == "rag/default"
    assert [c["message"]["content"] for c in out["choices"]] == [
        "I don't know based on the provided documents."
    ]
    assert {c["finish_reason"] for c in out["choices"]} == {"stop"}
    assert out["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    g = out["grounding"]
    assert g["action"] == "abstained" and g["best_sentence_similarity"] < g["min_sentence_similarity"] == 0.36
    assert out["citations"] and not any(c["cited"] for c in out["citations"])

    r = _ask(gated, "值班数据库管理员的电话号码是多少？")
    assert r.json()["choices"][0]["message"]["content"] == "根据提供的文档，我不知道。"

    metrics = httpx.get(gated.url + "/metrics", timeout=10).text
    assert 'ragserve_rag_irrelevant_questions_total{collection="default"} 2.0' in metrics
    assert 'ragserve_rag_sentence_similarity_count{collection="default"}' in metrics


def test_an_answerable_question_reaches_the_model(gated: Gateway) -> None:
    gated.fake.script("The kernel killed the container: exit code 137 [1].")
    before = len(gated.fake.requests)
    out = _ask(gated, ANSWERABLE).json()
    assert len(gated.fake.requests) == before + 1
    assert "grounding" not in out
    assert out["choices"][0]["message"]["content"].startswith("The kernel killed the container")


def test_the_gated_stream_has_openai_framing(gated: Gateway) -> None:
    client = openai.OpenAI(base_url=gated.v1, api_key="unused")
    chunks = list(
        client.chat.completions.create(
            model="rag/default",
            messages=[{"role": "user", "content": UNANSWERABLE}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "I don't know based on the provided documents."
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 0
    assert len({c.id for c in chunks}) == 1
    extra = chunks[-1].model_extra or {}
    assert extra["grounding"]["action"] == "abstained" and extra["citations"]

    raw = _ask(gated, UNANSWERABLE, stream=True).text
    assert raw.endswith("data: [DONE]\n\n")
    events = [json.loads(b[6:]) for b in raw.split("\n\n") if b.startswith("data: {")]
    assert "usage" not in events[-1]  # not asked for
    assert events[-1]["choices"][0]["finish_reason"] == "stop" and "citations" in events[-1]


def test_tools_requests_and_gate_off_go_to_the_model(gated: Gateway) -> None:
    gated.settings.rag.relevance_gate = "off"
    try:
        gated.fake.script("No number is given.")
        before = len(gated.fake.requests)
        out = _ask(gated, UNANSWERABLE).json()
        assert len(gated.fake.requests) == before + 1 and out["choices"][0]["message"]["content"] == (
            "No number is given."
        )
    finally:
        gated.settings.rag.relevance_gate = "abstain"


def test_an_embedder_without_a_threshold_is_never_gated(gated: Gateway) -> None:
    saved = dict(gated.settings.rag.min_sentence_similarity)
    gated.settings.rag.min_sentence_similarity = {"some-other-embedder": 0.9}
    try:
        gated.fake.script("No number is given.")
        before = len(gated.fake.requests)
        _ask(gated, UNANSWERABLE)
        assert len(gated.fake.requests) == before + 1
    finally:
        gated.settings.rag.min_sentence_similarity = saved


def test_a_follow_up_counts_what_the_conversation_asked(gated: Gateway) -> None:
    """ "And how do I check it?" alone resembles no passage much; with the earlier question it is
    about exit code 137, which the passages cover: the model answers."""
    gated.fake.script("Run kubectl describe pod [1].")
    before = len(gated.fake.requests)
    messages = [
        {"role": "user", "content": ANSWERABLE},
        {"role": "assistant", "content": "It ran out of memory [1]."},
        {"role": "user", "content": "And how do I check it?"},
    ]
    r = httpx.post(
        gated.v1 + "/chat/completions", json={"model": "rag/default", "messages": messages}, timeout=30
    )
    assert r.status_code == 200, r.text
    assert len(gated.fake.requests) == before + 1 and "grounding" not in r.json()
