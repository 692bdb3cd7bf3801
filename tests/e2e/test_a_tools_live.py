"""Function calling end to end on the real engine (SmolLM2-135M), with the `openai` client and LangChain.

The 135M model picks tools and argument values poorly; what these tests hold the gateway to is
the contract: OpenAI shapes, stream and non-stream, and calls that always validate against the
declared schema. The file sorts before test_live.py, whose last tests stop the server.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import openai
import pytest

from tests.e2e.conftest import LiveServer

pytestmark = pytest.mark.engine

MODEL = "smollm2-135m-instruct"
WEATHER_PARAMS = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 40},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["city", "unit"],
}
RESTART_PARAMS = {
    "type": "object",
    "properties": {
        "deployment": {"type": "string", "maxLength": 40},
        "replicas": {"type": "integer", "minimum": 1, "maximum": 10},
    },
    "required": ["deployment"],
}
TOOLS: list[dict[str, Any]] = [
    {"type": "function", "function": {"name": "get_weather", "description": "Current weather in a city",
                                      "parameters": WEATHER_PARAMS}},
    {"type": "function", "function": {"name": "restart_deployment", "description": "Restart a deployment",
                                      "parameters": RESTART_PARAMS}},
]  # fmt: skip
SCHEMAS = {"get_weather": WEATHER_PARAMS, "restart_deployment": RESTART_PARAMS}


def client(server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.v1, api_key="unused", timeout=300, max_retries=0)


def assert_valid(name: str, arguments: str) -> None:
    jsonschema.validate(json.loads(arguments), SCHEMAS[name])


def ask(server: LiveServer, content: str, **kw: Any) -> Any:
    kw.setdefault("max_tokens", 200)
    return client(server).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": content}], tools=TOOLS,  # type: ignore[arg-type]
        temperature=0, **kw,
    )  # fmt: skip


def test_required_and_named_calls_validate(live_server: LiveServer) -> None:
    r = ask(live_server, "What's the weather in Paris?", tool_choice="required", parallel_tool_calls=False)
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.id.startswith("call_") and call.type == "function"
    assert_valid(call.function.name, call.function.arguments)
    named = {"type": "function", "function": {"name": "restart_deployment"}}
    r = ask(live_server, "The checkout service is stuck; restart it.", tool_choice=named)
    (call,) = r.choices[0].message.tool_calls
    assert call.function.name == "restart_deployment"
    assert_valid(call.function.name, call.function.arguments)


def test_parallel_calls_validate_and_have_distinct_ids(live_server: LiveServer) -> None:
    r = ask(live_server, "Weather in Paris and in Tokyo, in celsius?", tool_choice="required", max_tokens=400)
    calls = r.choices[0].message.tool_calls
    assert 1 <= len(calls) <= 4 and len({c.id for c in calls}) == len(calls)
    for c in calls:
        assert_valid(c.function.name, c.function.arguments)


def test_auto_either_answers_or_calls_validly(live_server: LiveServer) -> None:
    for question in ("What's the weather in Berlin?", "Write one sentence about the sea."):
        choice = ask(live_server, question, tool_choice="auto", max_tokens=60).choices[0]
        if choice.finish_reason == "tool_calls":
            for c in choice.message.tool_calls:
                assert_valid(c.function.name, c.function.arguments)
        else:
            assert choice.message.content and not choice.message.tool_calls


def test_streamed_call_with_openai_client(live_server: LiveServer) -> None:
    stream = client(live_server).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Weather in Rome?"}], tools=TOOLS,  # type: ignore[arg-type]
        tool_choice="required", parallel_tool_calls=False, stream=True,
        stream_options={"include_usage": True}, max_tokens=200,
    )  # fmt: skip
    ids, names, args, finish, usage = set(), [], "", None, None
    for chunk in stream:
        ids.add(chunk.id)
        usage = chunk.usage or usage
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for tc in choice.delta.tool_calls or []:
                assert tc.index == 0
                if tc.id:
                    names.append(tc.function.name)
                args += tc.function.arguments or ""
    assert len(ids) == 1 and finish == "tool_calls" and len(names) == 1
    assert usage is not None and usage.completion_tokens > 0
    assert_valid(names[0], args)


def test_langchain_bind_tools_streams_tool_call_chunks(live_server: LiveServer) -> None:
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI

    @tool
    def get_weather(city: str, unit: str = "celsius") -> str:
        """Current weather in a city."""
        return f"20 degrees {unit} in {city}"

    llm = ChatOpenAI(model=MODEL, base_url=live_server.v1, api_key="unused", max_tokens=200, temperature=0)  # type: ignore[arg-type]
    bound = llm.bind_tools([get_weather], tool_choice="get_weather")
    merged = None
    n_chunks = 0
    for chunk in bound.stream("What's the weather in Madrid?"):
        merged = chunk if merged is None else merged + chunk
        n_chunks += 1
    assert merged is not None and n_chunks > 2
    assert merged.tool_call_chunks and merged.tool_call_chunks[0]["name"] == "get_weather"
    (call,) = merged.tool_calls  # type: ignore[attr-defined]
    assert call["name"] == "get_weather" and call["id"].startswith("call_")
    schema = get_weather.tool_call_schema.model_json_schema()
    jsonschema.validate(call["args"], schema)


def test_server_side_knowledge_base_search(live_server: LiveServer) -> None:
    r = client(live_server).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "What does exit code 137 mean for a pod?"}],
        tool_choice="required", max_tokens=96, temperature=0,
        extra_body={"server_tools": ["search_knowledge_base", "get_document"]},
    )  # fmt: skip
    extra = r.model_extra or {}
    trace = extra["tool_trace"]
    assert trace and all({"name", "arguments", "result", "duration_ms", "error"} <= set(e) for e in trace)
    assert r.choices[0].finish_reason in ("stop", "length") and r.choices[0].message.content
    if any(e["name"] == "search_knowledge_base" and e["error"] is None for e in trace):
        assert extra["citations"] and extra["citations"][0]["index"] == 1
