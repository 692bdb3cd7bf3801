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


@pytest.fixture
def penalty(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> float:
    """A default penalty set in the settings (the fake engine's model is not in the catalog: 0 otherwise)."""
    monkeypatch.setattr(gateway.settings.rag, "default_frequency_penalty", 0.5)
    return 0.5


def test_grounded_free_text_gets_the_default_penalty(gateway: Gateway, penalty: float) -> None:
    default = penalty
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
def test_the_request_keeps_its_own_choice(gateway: Gateway, penalty: float, extra: dict[str, Any]) -> None:
    sent = _sent(gateway, {"model": "rag/default", "messages": QUESTION, **extra})
    assert sent.get("frequency_penalty") == extra.get("frequency_penalty")
    for k, v in extra.items():
        assert sent[k] == v


def test_plain_chat_is_passed_through_untouched(gateway: Gateway, penalty: float) -> None:
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


@pytest.mark.parametrize(
    ("engine", "configured", "expected"),
    [
        ({"model": "smollm2-135m-instruct"}, None, 0.5),  # loops under greedy decoding without it
        ({"model": "qwen2.5-coder-0.5b-instruct"}, None, 0.0),
        ({"model": "/models/x", "served_model_name": "smollm2-135m-instruct"}, None, 0.5),  # a prepared dir
        ({"model": "/models/x"}, None, 0.0),  # not a catalog model: no penalty
        ({"model": "qwen2.5-coder-0.5b-instruct"}, 0.3, 0.3),  # the settings win
    ],
)
def test_the_default_penalty_is_the_served_models_own(
    engine: dict[str, str], configured: float | None, expected: float
) -> None:
    from service.chat.grounding import Grounder
    from service.settings import Settings

    settings = Settings(engine=engine, rag={"default_frequency_penalty": configured})  # type: ignore[arg-type]
    grounder = Grounder(model=None, knowledge=None, guard=None, settings=settings)  # type: ignore[arg-type]
    assert grounder.frequency_penalty() == expected
