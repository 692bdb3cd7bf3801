"""Follow-up questions search with the conversation (service/rag/condense.py), through the gateway."""

from __future__ import annotations

import httpx

from service.rag.condense import (
    CONDENSE_SYSTEM,
    clean_condensed,
    condense_request,
    earlier_user_texts,
    history_query,
)
from tests.utils.gateway import Gateway

CONVERSATION = [
    {"role": "user", "content": "Why was my container killed with exit code 137?"},
    {"role": "assistant", "content": "It exceeded its memory limit [1]."},
    {"role": "user", "content": "How do I check that?"},
]


def test_history_query_takes_the_earlier_user_questions() -> None:
    msgs = [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "answer"},
        {"role": "user", "content": [{"type": "text", "text": "second"}]},
        {"role": "assistant", "content": "answer"},
        {"role": "user", "content": "third?"},
    ]
    assert earlier_user_texts(msgs) == ["first", "second"]
    assert history_query(msgs, "third?", turns=1) == "second\nthird?"
    assert history_query(msgs, "third?", turns=2) == "first\nsecond\nthird?"
    assert history_query(msgs, "third?", turns=0) == "third?"
    assert earlier_user_texts([{"role": "user", "content": "only"}]) == []


def test_condense_prompt_quotes_the_conversation_and_cleans_the_reply() -> None:
    req = condense_request(CONVERSATION, "How do I check that?", "en")
    assert req[0]["content"] == CONDENSE_SYSTEM["en"]
    assert "user: Why was my container killed" in req[1]["content"]
    assert req[1]["content"].endswith("Last question: How do I check that?\nStandalone question:")
    assert clean_condensed('Standalone question: "How do I check an OOM kill?"\nmore', "x") == (
        "How do I check an OOM kill?"
    )
    assert clean_condensed("  \n", "fallback") == "fallback"


def _ask(gateway: Gateway, messages: list[dict[str, str]]) -> dict[str, object]:
    r = httpx.post(
        gateway.v1 + "/chat/completions",
        json={"model": "rag/default", "messages": messages, "rag": {"top_k": 1}},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    out: dict[str, object] = r.json()
    return out


def test_a_follow_up_searches_with_the_earlier_question(gateway: Gateway) -> None:
    # Alone, "How do I check that?" names nothing; with the earlier question it finds the OOM runbook.
    gateway.fake.script("Run kubectl describe pod [1].")
    out = _ask(gateway, CONVERSATION)
    assert out["retrieval_query"] == "Why was my container killed with exit code 137?\nHow do I check that?"
    assert out["citations"][0]["document_id"] == "runbooks/oom.md"  # type: ignore[index]
    # The model still gets the user's own follow-up as the question, after the conversation.
    sent = gateway.fake.requests[-1]["messages"]
    assert (
        sent[-1]["content"]
        .rstrip()
        .endswith("How do I check that?\nAnswer in one or two sentences using only the passages above.")
    )
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]

    gateway.fake.script("Scripted.")
    single = _ask(gateway, [{"role": "user", "content": "How do I check that?"}])
    assert "retrieval_query" not in single


def test_the_model_can_write_the_standalone_question(gateway: Gateway) -> None:
    gateway.settings.rag.condense = "model"
    try:
        gateway.fake.script("How do I check that a container was OOMKilled?", "Run kubectl describe pod [1].")
        before = len(gateway.fake.requests)
        out = _ask(gateway, CONVERSATION)
    finally:
        gateway.settings.rag.condense = "history"
    condense_call, answer_call = gateway.fake.requests[before:]
    assert condense_call["messages"][0]["content"] == CONDENSE_SYSTEM["en"]
    assert condense_call["max_tokens"] == 64 and condense_call["temperature"] == 0
    assert out["retrieval_query"] == "How do I check that a container was OOMKilled?"
    assert out["citations"][0]["document_id"] == "runbooks/oom.md"  # type: ignore[index]
    assert (
        answer_call["messages"][-1]["content"]
        .rstrip()
        .endswith("Answer in one or two sentences using only the passages above.")
    )
    metrics = httpx.get(gateway.url + "/metrics", timeout=10).text
    assert "ragserve_rag_condense_seconds_count 1.0" in metrics


def test_condensing_off_searches_with_the_last_message(gateway: Gateway) -> None:
    gateway.settings.rag.condense = "off"
    try:
        gateway.fake.script("Scripted.")
        out = _ask(gateway, CONVERSATION)
    finally:
        gateway.settings.rag.condense = "history"
    assert "retrieval_query" not in out
