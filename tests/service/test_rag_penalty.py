"""Grounded answers get a default frequency_penalty, unless the request controls repetition or asks for
structure (tool calls, response_format): what the engine receives, through real HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.service.conftest import Gateway
from tests.utils.fake_vllm import MODEL

QUESTION = [{"role": "user", "content": "Why was my container killed with exit code 137?"}]


def _sent(gw: Gateway, body: dict[str, Any]) -> dict[str, Any]:
    gw.fake.script("It ran out of memory [1].")
    r = httpx.post(gw.v1 + "/chat/completions", json=body, timeout=30)
    assert r.status_code == 200, r.text
    sent: dict[str, Any] = gw.fake.requests[-1]
    return sent


def test_grounded_free_text_gets_the_default_penalty(gateway: Gateway) -> None:
    default = gateway.settings.rag.default_frequency_penalty
    assert default > 0
    assert _sent(gateway, {"model": "rag/default", "messages": QUESTION})["frequency_penalty"] == default
    # the rag field on the base model is grounded too, and a text response_format is still free text
    body = {
        "model": MODEL,
        "messages": QUESTION,
        "rag": {"collection": "default"},
        "response_format": {"type": "text"},
    }
    assert _sent(gateway, body)["frequency_penalty"] == default


@pytest.mark.parametrize(
    "extra",
    [
        {"frequency_penalty": 0},  # an explicit zero is the client's choice
        {"frequency_penalty": 1.5},
        {"presence_penalty": 0.3},
        {"repetition_penalty": 1.1},  # vLLM's own
        {"response_format": {"type": "json_object"}},
        {"structured_outputs": {"choice": ["yes", "no"]}},
    ],
)
def test_the_request_keeps_its_own_choice(gateway: Gateway, extra: dict[str, Any]) -> None:
    sent = _sent(gateway, {"model": "rag/default", "messages": QUESTION, **extra})
    assert sent.get("frequency_penalty") == extra.get("frequency_penalty")
    for k, v in extra.items():
        assert sent[k] == v


def test_plain_chat_is_passed_through_untouched(gateway: Gateway) -> None:
    sent = _sent(gateway, {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]})
    assert "frequency_penalty" not in sent


def test_zero_turns_the_default_off(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gateway.settings.rag, "default_frequency_penalty", 0.0)
    assert "frequency_penalty" not in _sent(gateway, {"model": "rag/default", "messages": QUESTION})


def test_tool_requests_are_structured_output() -> None:
    from service.chat.grounding import free_text_without_penalty as _free_text_without_penalty

    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    assert not _free_text_without_penalty({"messages": QUESTION, "tools": [tool]})
    assert not _free_text_without_penalty({"messages": QUESTION, "functions": [tool["function"]]})
    assert _free_text_without_penalty({"messages": QUESTION, "tools": []})
