"""Decoding budgets: a client's small max_tokens never turns into a server error.

Calls returned to the client are decoded under bounds derived from the client's max_tokens; when
even the tightest call is cut off, the answer is a 400 naming max_tokens and what would do. The
rounds of server tools decode within the gateway's own budget (tools.call_max_tokens), not the
final answer's max_tokens.
"""

from __future__ import annotations

import pytest

from service.tools.constrained import Bounds, fit_bounds, max_tokens_of
from service.tools.definitions import parse_tools
from tests.tools.conftest import ToolGateway
from tests.tools.test_tools_api import WEATHER, call_json, chat, error_of
from tests.utils.fake_vllm import MODEL

# The five tools of eval.tools_bench, from flat to nested with arrays.
BENCH_TOOLS = parse_tools(__import__("eval.tools_bench", fromlist=["TOOLS"]).TOOLS)


@pytest.mark.parametrize("max_tokens", [64, 96, 128, 192, 256])
def test_fitted_bounds_keep_the_longest_call_within_the_budget(max_tokens: int) -> None:
    for tool in BENCH_TOOLS:
        bounds = fit_bounds(Bounds(), [tool], max_tokens)
        from service.tools.constrained import call_schema

        assert max_tokens_of(call_schema(tool, bounds)) <= max_tokens, (tool.name, bounds)
    assert fit_bounds(Bounds(), BENCH_TOOLS, 4096) == Bounds()  # room enough: the configured bounds


def test_a_small_max_tokens_tightens_the_call_schema(gw: ToolGateway) -> None:
    gw.fake.script(call_json("get_weather", city="Paris"))
    data = chat(gw, tools=[WEATHER], tool_choice="required", max_tokens=64).json()
    assert data["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "get_weather"
    sent = gw.sent()[-1]
    schema = sent["structured_outputs"]["json"]
    assert sent["max_tokens"] == 64 and max_tokens_of(schema) <= 64
    assert schema["properties"]["arguments"]["properties"]["city"]["maxLength"] < Bounds().max_string_length


def test_a_call_that_cannot_fit_the_clients_max_tokens_is_a_400(
    gw: ToolGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gw.fake, "cut_at_max_tokens", True)
    long = call_json("get_weather", city="a b c d e f g h")
    gw.fake.script(long, long)
    err = error_of(chat(gw, tools=[WEATHER], tool_choice="required", max_tokens=4), 400)
    assert err["param"] == "max_tokens" and err["code"] == "max_tokens_too_small"
    assert "max_tokens=4" in err["message"] and "at least" in err["message"]
    retry = gw.sent()[-1]["structured_outputs"]["json"]["properties"]["arguments"]["properties"]["city"]
    assert retry["maxLength"] == 8  # the retry after the cut-off used the tightest bounds


def test_a_cut_off_within_the_servers_own_budget_stays_a_502(
    gw: ToolGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gw.fake, "cut_at_max_tokens", True)
    gw.settings.tools.call_max_tokens = 16
    long = call_json("get_weather", city=" ".join("word" for _ in range(30)))
    gw.fake.script(long, long)
    err = error_of(chat(gw, tools=[WEATHER], tool_choice="required"), 502)
    assert err["code"] == "invalid_tool_call" and "raise max_tokens" in err["message"]


def test_server_tool_rounds_are_not_limited_by_the_answers_max_tokens(
    gw: ToolGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gw.fake, "cut_at_max_tokens", True)
    gw.fake.script(call_json("search_knowledge_base", query="exit code 137 OOMKilled"), "answer", "OOM [1].")
    r = chat(
        gw,
        model=MODEL,
        messages=[{"role": "user", "content": "What does exit code 137 mean?"}],
        server_tools=["search_knowledge_base"],
        tool_choice="required",
        max_tokens=3,
    )
    assert r.status_code == 200, r.text
    first, _, last = gw.sent()
    assert first["max_tokens"] == gw.settings.tools.call_max_tokens  # the round: the gateway's budget
    assert last["max_tokens"] == 3  # the answer: the client's
    assert r.json()["tool_trace"][0]["error"] is None
