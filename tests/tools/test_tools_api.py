"""Function calling through real HTTP: shapes, validation, history, the server-tool loop.

The fake engine replies from a script, so each test scripts what a constrained engine would
produce (a call as JSON, a decision, an answer) and checks what the gateway made of it and what
it sent upstream.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx
import openai
import pytest

from service.tools.builtins import ServerTool, ToolContext, ToolError, ToolOutput
from tests.tools.conftest import ToolGateway
from tests.utils.fake_vllm import MODEL

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city"],
        },
    },
}
EMAIL = {
    "type": "function",
    "function": {
        "name": "send_email",
        "description": "Send an email.",
        "parameters": {
            "type": "object",
            "properties": {"to": {"type": "string"}, "body": {"type": "string"}},
            "required": ["to"],
        },
    },
}
CALL_ID = re.compile(r"^call_[0-9a-f]{24}$")


def chat(gw: ToolGateway, **body: Any) -> httpx.Response:
    body.setdefault("model", MODEL)
    body.setdefault("messages", [{"role": "user", "content": "What's the weather in Paris?"}])
    return httpx.post(gw.v1 + "/chat/completions", json=body, timeout=60)


def sse_chunks(gw: ToolGateway, **body: Any) -> list[dict[str, Any]]:
    body.setdefault("model", MODEL)
    body.setdefault("messages", [{"role": "user", "content": "What's the weather in Paris?"}])
    body["stream"] = True
    with httpx.stream("POST", gw.v1 + "/chat/completions", json=body, timeout=60) as r:
        assert r.status_code == 200, r.read()
        raw = r.read().decode()
    blocks = [b for b in raw.split("\n\n") if b]
    assert all(b.startswith("data: ") for b in blocks)
    assert blocks[-1] == "data: [DONE]"
    return [json.loads(b[6:]) for b in blocks[:-1]]


def error_of(r: httpx.Response, status: int = 400) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err: dict[str, Any] = r.json()["error"]
    return err


def call_json(tool: str, **arguments: Any) -> str:
    return json.dumps({"name": tool, "arguments": arguments})


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tools", "param", "needle"),
    [
        ([], "tools", "must not be empty"),
        ([{"type": "function", "function": {"name": "bad name!"}}], "tools[0].function.name", "invalid"),
        ([WEATHER, WEATHER], "tools[1].function.name", "more than once"),
        ([{"type": "retrieval"}], "tools[0].type", "only 'function'"),
        ([{"type": "function"}], "tools[0].function", "required"),
        (
            [WEATHER, {"type": "function", "function": {"name": "f", "parameters": {"type": "objekt"}}}],
            "tools[1].function.parameters",
            "not a valid JSON Schema",
        ),
        (
            [{"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}],
            "tools[0].function.parameters",
            "type 'object'",
        ),
        (
            [
                {
                    "type": "function",
                    "function": {
                        "name": "f",
                        "parameters": {"$ref": "#/$defs/a", "$defs": {"a": {"$ref": "#/$defs/a"}}},
                    },
                }
            ],
            "tools[0].function.parameters",
            "recursive",
        ),
    ],
)
def test_invalid_tool_definitions_are_400(gw: ToolGateway, tools: Any, param: str, needle: str) -> None:
    err = error_of(chat(gw, tools=tools))
    assert err["type"] == "invalid_request_error"
    assert err["param"] == param
    assert needle in err["message"]
    assert not gw.sent()  # nothing reached the engine


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
            "tool_choice.function.name",
        ),
        ({"tools": [WEATHER], "tool_choice": "sometimes"}, "tool_choice"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"server_tools": ["format_disk"]}, "server_tools[0]"),
        ({"server_tools": "search_knowledge_base"}, "server_tools"),
        ({"tools": [WEATHER], "parallel_tool_calls": "yes"}, "parallel_tool_calls"),
    ],
)
def test_invalid_choices_and_server_tools_are_400(gw: ToolGateway, extra: dict[str, Any], param: str) -> None:
    err = error_of(chat(gw, **extra))
    assert err["param"] == param, err


def test_server_tool_name_clash_and_missing_prometheus(gw: ToolGateway) -> None:
    clash = {"type": "function", "function": {"name": "get_document"}}
    assert "also defined" in error_of(chat(gw, tools=[clash], server_tools=["get_document"]))["message"]
    gw.settings.tools.prometheus_url = None
    err = error_of(chat(gw, server_tools=["prometheus_query"]))
    assert err["code"] == "tool_unavailable" and "RAGSERVE_TOOLS__PROMETHEUS_URL" in err["message"]


# -- client tools: shapes --------------------------------------------------------------------


def test_required_returns_a_schema_valid_call_in_openai_shape(gw: ToolGateway) -> None:
    gw.fake.script(call_json("get_weather", city="Paris", unit="c"))
    client = openai.OpenAI(base_url=gw.v1, api_key="x", max_retries=0)
    r = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER, EMAIL],  # type: ignore[list-item]
        tool_choice="required",
        parallel_tool_calls=False,
    )
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls or []
    assert CALL_ID.match(call.id) and call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris", "unit": "c"}
    assert r.usage is not None and r.usage.completion_tokens > 0
    # What the engine was asked: a grammar over both tools' calls, tools rendered as text.
    (sent,) = gw.sent()
    assert "tools" not in sent and "tool_choice" not in sent
    schema = sent["structured_outputs"]["json"]
    names = [c["properties"]["name"]["const"] for c in schema["anyOf"]]
    assert names == ["get_weather", "send_email"]
    city = schema["anyOf"][0]["properties"]["arguments"]["properties"]["city"]
    assert city["maxLength"] == gw.settings.tools.max_string_length  # runaway strings are bounded
    assert sent["messages"][0]["role"] == "system" and "get_weather" in sent["messages"][0]["content"]


def test_parallel_required_returns_several_calls_with_distinct_ids(gw: ToolGateway) -> None:
    gw.fake.script(
        json.dumps(
            [
                {"name": "get_weather", "arguments": {"city": "Paris"}},
                {"name": "get_weather", "arguments": {"city": "London"}},
                {"name": "get_weather", "arguments": {"city": "London"}},  # verbatim repeat: dropped
            ]
        )
    )
    data = chat(gw, tools=[WEATHER, EMAIL], tool_choice="required").json()
    calls = data["choices"][0]["message"]["tool_calls"]
    assert [json.loads(c["function"]["arguments"])["city"] for c in calls] == ["Paris", "London"]
    assert len({c["id"] for c in calls}) == 2
    schema = gw.sent()[0]["structured_outputs"]["json"]
    assert schema["type"] == "array" and schema["minItems"] == 1
    assert schema["maxItems"] == gw.settings.tools.max_parallel_calls


def test_named_choice_constrains_to_that_tool(gw: ToolGateway) -> None:
    gw.fake.script(call_json("send_email", to="ops@example.com"))
    choice = {"type": "function", "function": {"name": "send_email"}}
    data = chat(gw, tools=[WEATHER, EMAIL], tool_choice=choice).json()
    (call,) = data["choices"][0]["message"]["tool_calls"]
    assert call["function"]["name"] == "send_email"
    schema = gw.sent()[0]["structured_outputs"]["json"]
    assert schema["properties"]["name"] == {"const": "send_email"}  # one call, that tool only


def test_auto_decides_first_then_calls(gw: ToolGateway) -> None:
    gw.fake.script("get_weather", call_json("get_weather", city="Paris"))
    data = chat(gw, tools=[WEATHER, EMAIL], parallel_tool_calls=False).json()
    assert data["choices"][0]["finish_reason"] == "tool_calls"
    decision, call = gw.sent()
    assert decision["structured_outputs"] == {"choice": ["get_weather", "send_email", "answer"]}
    assert decision["max_tokens"] <= 32
    assert call["structured_outputs"]["json"]["properties"]["name"] == {"const": "get_weather"}


def test_auto_answer_and_none_strip_the_tools(gw: ToolGateway) -> None:
    gw.fake.script("answer", "It is sunny.")
    data = chat(gw, tools=[WEATHER], tool_choice="auto").json()
    assert data["choices"][0]["message"]["content"] == "It is sunny."
    assert data["choices"][0]["finish_reason"] == "stop"
    assert "tool_trace" not in data
    answer = gw.sent()[-1]
    assert not {"tools", "tool_choice", "structured_outputs"} & set(answer)
    gw.fake.script("Hello.")
    data = chat(gw, tools=[WEATHER], tool_choice="none").json()
    assert data["choices"][0]["message"]["content"] == "Hello." and len(gw.sent()) == 3
    gw.fake.script("No tools used.")
    data = chat(gw, server_tools=["search_knowledge_base"], tool_choice="none").json()
    assert data["tool_trace"] == [] and len(gw.sent()) == 4


def test_streamed_tool_call_has_openai_chunk_sequence(gw: ToolGateway) -> None:
    gw.fake.script(call_json("get_weather", city="Paris, the capital of France"))
    chunks = sse_chunks(gw, tools=[WEATHER], tool_choice="required", stream_options={"include_usage": True})
    assert len({c["id"] for c in chunks}) == 1
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == MODEL for c in chunks)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[0]["role"] == "assistant"
    head = deltas[1]["tool_calls"][0]
    assert head["index"] == 0 and CALL_ID.match(head["id"]) and head["type"] == "function"
    assert head["function"] == {"name": "get_weather", "arguments": ""}
    pieces = [d["tool_calls"][0]["function"]["arguments"] for d in deltas[2:-1]]
    assert len(pieces) > 1 and all(set(d["tool_calls"][0]) == {"index", "function"} for d in deltas[2:-1])
    assert json.loads("".join(pieces)) == {"city": "Paris, the capital of France"}
    finals = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finals[:-1] == [None] * (len(finals) - 1) and finals[-1] == "tool_calls"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0


def test_streamed_auto_answer_is_relayed(gw: ToolGateway) -> None:
    gw.fake.script("answer", "Sunny and warm today.")
    chunks = sse_chunks(gw, tools=[WEATHER])
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Sunny and warm today."
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert gw.sent()[-1]["stream"] is True  # the answer streamed from the engine, not replayed


def test_invalid_constrained_output_is_retried_then_refused(gw: ToolGateway) -> None:
    gw.fake.script(
        '{"name": "get_weather", "arguments": {"city": "Par', call_json("get_weather", city="Paris")
    )
    data = chat(gw, tools=[WEATHER], tool_choice="required").json()
    assert data["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "get_weather"
    gw.fake.script(call_json("get_weather", unit="c"), "not json")  # missing `city`, then garbage
    err = error_of(chat(gw, tools=[WEATHER], tool_choice="required"), 502)  # as RCA's: a bad gateway
    assert err["code"] == "invalid_tool_call" and "valid tool call" in err["message"]


# -- history -----------------------------------------------------------------------------------

HISTORY = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What's the weather in Paris?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_abc",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_abc", "content": "22 C and sunny"},
]


def test_tool_results_in_history_become_text_the_model_reads(gw: ToolGateway) -> None:
    gw.fake.script("answer", "It is 22 C and sunny.")
    r = openai.OpenAI(base_url=gw.v1, api_key="x", max_retries=0).chat.completions.create(
        model=MODEL,
        messages=HISTORY,  # type: ignore[arg-type]
        tools=[WEATHER],  # type: ignore[list-item]
    )
    assert r.choices[0].message.content == "It is 22 C and sunny."
    decision, answer = gw.sent()
    for sent in (decision, answer):
        assert all(isinstance(m["content"], str) for m in sent["messages"])
        assert {m["role"] for m in sent["messages"]} <= {"system", "user", "assistant"}
    # To decide, the model sees its call as JSON; to answer, only the result naming the call.
    assert any(m["role"] == "assistant" and '"get_weather"' in m["content"] for m in decision["messages"])
    last = answer["messages"][-1]["content"]
    assert last.startswith('Result of get_weather({"city": "Paris"}):\n22 C and sunny')
    assert "What's the weather in Paris?" in last
    assert answer["messages"][0]["content"].startswith("Be brief.")


def test_tool_history_without_tools_is_rendered_too(gw: ToolGateway) -> None:
    gw.fake.script("Sunny.")
    assert chat(gw, messages=HISTORY).status_code == 200
    (sent,) = gw.sent()
    assert all(isinstance(m["content"], str) for m in sent["messages"])
    assert "tool" not in {m["role"] for m in sent["messages"]}


def test_native_strategy_passes_tools_to_the_engine(gw: ToolGateway) -> None:
    gw.settings.tools.model_strategies = {MODEL: "native"}
    gw.fake.script("ok")
    assert chat(gw, tools=[WEATHER], tool_choice="auto").status_code == 200
    (sent,) = gw.sent()
    assert sent["tools"] == [WEATHER] and sent["tool_choice"] == "auto" and "structured_outputs" not in sent


# -- server tools --------------------------------------------------------------------------


def test_search_knowledge_base_loop_cites_hits(gw: ToolGateway) -> None:
    gw.fake.script(call_json("search_knowledge_base", query="exit code 137 OOMKilled"), "answer", "OOM [1].")
    data = chat(
        gw,
        messages=[{"role": "user", "content": "What does exit code 137 mean?"}],
        server_tools=["search_knowledge_base"],
        tool_choice="required",
    ).json()
    assert data["choices"][0]["message"]["content"] == "OOM [1]."
    (entry,) = data["tool_trace"]
    assert entry["name"] == "search_knowledge_base" and entry["error"] is None
    assert entry["arguments"] == {"query": "exit code 137 OOMKilled"}
    assert entry["duration_ms"] >= 0 and "passages from default" in entry["result"]
    cits = data["citations"]
    assert cits[0]["index"] == 1 and cits[0]["document_id"] == "runbooks/oom.md" and cits[0]["cited"] is True
    call, decision, answer = gw.sent()
    # The search tool's schema names the collections that exist, so the model cannot invent one.
    search = call["structured_outputs"]["json"]["items"]["properties"]["arguments"]
    assert search["properties"]["collection"]["enum"] == ["default"]
    assert decision["structured_outputs"]["choice"] == ["search_knowledge_base", "answer"]
    prompt = answer["messages"][-1]["content"]
    assert "[1] " in prompt and "exit code 137" in prompt and "What does exit code 137 mean?" in prompt


def test_get_document_reads_a_whole_document_in_order(gw: ToolGateway) -> None:
    gw.fake.script(call_json("get_document", document_id="runbooks/disk.md"), "answer", "Prune images.")
    data = chat(gw, server_tools=["get_document"], tool_choice="required").json()
    (entry,) = data["tool_trace"]
    assert entry["error"] is None and entry["result"].startswith("document runbooks/disk.md")
    assert "crictl rmi --prune" in gw.sent()[-1]["messages"][-1]["content"]


def test_failing_tool_reports_to_model_and_trace(gw: ToolGateway) -> None:
    gw.fake.script(call_json("get_document", document_id="nope.md"), "answer", "Not found.")
    r = chat(gw, server_tools=["get_document"], tool_choice="required")
    assert r.status_code == 200
    (entry,) = r.json()["tool_trace"]
    assert entry["result"] is None and "no document 'nope.md'" in entry["error"]
    assert "Error: no document 'nope.md'" in gw.sent()[-1]["messages"][-1]["content"]


class _Slow(ServerTool):
    name = "slow_tool"
    description = "Sleeps."

    def parameters(self, ctx: ToolContext) -> dict[str, Any]:
        return {"type": "object", "properties": {}}

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        await asyncio.sleep(30)
        return ToolOutput("never", "never")


class _Broken(ServerTool):
    name = "broken_tool"
    description = "Has a bug."

    def parameters(self, ctx: ToolContext) -> dict[str, Any]:
        return {"type": "object", "properties": {}}

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        raise KeyError("oops")


class _Restart(ServerTool):
    name = "restart_deployment"
    description = "Restarts a deployment."
    mutating = True

    def parameters(self, ctx: ToolContext) -> dict[str, Any]:
        return {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        if args["name"] == "db":
            raise ToolError("refusing to restart the database")
        return ToolOutput(f"restarted {args['name']}", "restarted")


def test_timeouts_and_tool_bugs_never_fail_the_request(gw: ToolGateway) -> None:
    gw.tools.registry.register(_Slow())
    gw.tools.registry.register(_Broken())
    gw.settings.tools.tool_timeout_s = 0.3
    gw.fake.script(
        json.dumps([{"name": "slow_tool", "arguments": {}}, {"name": "broken_tool", "arguments": {}}]),
        "answer",
        "Sorry.",
    )
    r = chat(gw, server_tools=["slow_tool", "broken_tool"], tool_choice="required")
    assert r.status_code == 200, r.text
    slow, broken = r.json()["tool_trace"]
    assert slow["error"] == "timed out after 0.3 s" and 250 <= slow["duration_ms"] < 5000
    assert broken["error"].startswith("internal error: KeyError")
    metrics = httpx.get(gw.url + "/metrics").text
    assert 'ragserve_tool_calls_total{outcome="timeout",tool="slow_tool"} 1.0' in metrics
    assert 'ragserve_tool_duration_seconds_count{tool="broken_tool"} 1.0' in metrics


def test_mutating_tools_are_refused_unless_allowed(gw: ToolGateway) -> None:
    gw.tools.registry.register(_Restart())
    err = error_of(chat(gw, server_tools=["restart_deployment"]), 403)
    assert err["code"] == "tool_not_allowed" and "allow_mutating" in err["message"]
    gw.settings.tools.allow_mutating = ["restart_deployment"]
    gw.fake.script(call_json("restart_deployment", name="web"), "answer", "Done.")
    data = chat(gw, server_tools=["restart_deployment"], tool_choice="required").json()
    assert data["tool_trace"][0]["result"] == "restarted"


def test_loop_is_bounded_by_iterations_and_repeats(gw: ToolGateway) -> None:
    gw.settings.tools.max_iterations = 2
    gw.fake.script(
        call_json("search_knowledge_base", query="disk"),
        "search_knowledge_base",
        call_json("search_knowledge_base", query="disk full"),
        "Answer [2].",  # no third round: the answer comes after max_iterations
    )
    data = chat(gw, server_tools=["search_knowledge_base"], tool_choice="required").json()
    assert [e["iteration"] for e in data["tool_trace"]] == [0, 1]
    assert len(data["citations"]) >= 2
    # A verbatim repeat ends the loop too.
    gw.settings.tools.max_iterations = 5
    gw.fake.script(
        call_json("search_knowledge_base", query="disk"),
        "search_knowledge_base",
        call_json("search_knowledge_base", query="disk"),
        "Answer.",
    )
    data = chat(gw, server_tools=["search_knowledge_base"], tool_choice="required").json()
    assert len(data["tool_trace"]) == 1


def test_deadline_stops_the_loop(gw: ToolGateway) -> None:
    gw.tools.registry.register(_Slow())
    gw.settings.tools.deadline_s = 0.5
    gw.settings.tools.tool_timeout_s = 5
    gw.fake.script(call_json("slow_tool"), "Out of time.")
    data = chat(gw, server_tools=["slow_tool"], tool_choice="required").json()
    assert "timed out" in data["tool_trace"][0]["error"]
    assert data["choices"][0]["message"]["content"] == "Out of time."


def test_client_and_server_tools_mixed(gw: ToolGateway) -> None:
    gw.fake.script(
        json.dumps(
            [
                {"name": "search_knowledge_base", "arguments": {"query": "disk full"}},
                {"name": "send_email", "arguments": {"to": "ops@example.com"}},
            ]
        )
    )
    data = chat(gw, tools=[EMAIL], server_tools=["search_knowledge_base"], tool_choice="required").json()
    (call,) = data["choices"][0]["message"]["tool_calls"]  # only the client's call comes back
    assert call["function"]["name"] == "send_email"
    assert data["choices"][0]["finish_reason"] == "tool_calls"
    assert [e["name"] for e in data["tool_trace"]] == ["search_knowledge_base"]
    assert data["citations"] and "cited" not in data["citations"][0]


def test_streamed_answer_carries_trace_and_citations_on_final_chunk(gw: ToolGateway) -> None:
    gw.fake.script(call_json("search_knowledge_base", query="OOMKilled"), "answer", "Memory limit [1].")
    chunks = sse_chunks(
        gw,
        server_tools=["search_knowledge_base"],
        tool_choice="required",
        stream_options={"include_usage": True},
    )
    assert all("tool_trace" not in c for c in chunks[:-1])
    final = chunks[-1]
    assert final["choices"] == [] and final["usage"]["completion_tokens"] > 0
    assert final["tool_trace"][0]["name"] == "search_knowledge_base"
    assert final["citations"][0]["cited"] is True
