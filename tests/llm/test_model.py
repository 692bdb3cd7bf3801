"""The model interface: usage and metrics counted once, streams, structured retries, errors.

`ScriptedModel` runs the real `ChatModel` code with an in-process transport; `EngineModel` is
checked over real HTTP against the scripted fake vLLM server.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from service.engine.client import EngineClient
from service.errors import APIError, InvalidModelOutput
from service.llm import EngineModel, ScriptedModel, StructuredAttempt, Usage
from service.llm.model import StructuredSpec
from service.llm.scripted import ScriptedReply
from service.observability.metrics import Metrics
from tests.utils.fake_vllm import MODEL, FakeVLLM
from tests.utils.servers import serve_in_thread


def tokens(metrics: Metrics, name: str, model: str) -> float:
    return float(metrics.registry.get_sample_value(f"ragserve_{name}_tokens_total", {"model": model}) or 0)


def body(text: str = "hello there", **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": text}], **extra}


async def test_complete_counts_usage_into_metrics_and_the_request() -> None:
    metrics = Metrics()
    model = ScriptedModel(metrics=metrics)
    model.script("one two three")
    usage = Usage()
    answer = await model.complete(body(), usage=usage, label="rag/default")
    assert answer.text == "one two three" and answer.finish_reason == "stop"
    assert usage.payload() == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
    assert tokens(metrics, "generation", "rag/default") == 3
    assert tokens(metrics, "prompt", "rag/default") == 2
    assert model.requests[-1]["messages"][0]["content"] == "hello there"


async def test_a_reply_longer_than_max_tokens_is_cut_with_finish_reason_length() -> None:
    model = ScriptedModel()
    model.script("a b c d e")
    answer = await model.complete(body(max_tokens=2))
    assert (answer.text, answer.finish_reason) == ("a b", "length")


async def test_stream_yields_events_and_counts_usage_when_closed() -> None:
    metrics = Metrics()
    model = ScriptedModel(metrics=metrics)
    model.script("alpha beta")
    usage = Usage()
    stream = await model.stream(body(), usage=usage)
    assert model.requests[-1]["stream"] is True
    assert model.requests[-1]["stream_options"] == {"include_usage": True}  # asked for, to count it
    events = [e async for e in stream.events()]
    assert tokens(metrics, "generation", "m") == 0  # counted on close, however the stream ends
    await stream.aclose()
    await stream.aclose()  # closing twice counts once
    assert tokens(metrics, "generation", "m") == 2 and usage.completion_tokens == 2
    assert len({e["id"] for e in events}) == 1
    assert events[-2]["choices"][0]["finish_reason"] == "stop" and events[-1]["choices"] == []


async def test_collect_passes_pieces_on_and_joins_them() -> None:
    model = ScriptedModel()
    model.script("x y z")
    pieces: list[str] = []

    async def on_delta(piece: str) -> None:
        pieces.append(piece)

    answer = await (await model.stream(body())).collect(on_delta)
    assert pieces == ["x", " y", " z"] and answer.text == "x y z" and answer.usage["completion_tokens"] == 3


def _parse(text: str) -> dict[str, Any]:
    data = json.loads(text)
    if not isinstance(data, dict) or "name" not in data:
        raise ValueError("no name")
    return data


async def test_structured_retries_with_the_callers_tighter_constraint() -> None:
    model = ScriptedModel()
    model.script('{"name": "cut', '{"name": "ok"}')
    seen: list[StructuredAttempt | None] = []

    def constraint(last: StructuredAttempt | None) -> dict[str, Any]:
        seen.append(last)
        return {"structured_outputs": {"json": {"maxLength": 100 if last is None else 10}}}

    usage = Usage()
    spec = StructuredSpec(what="thing", code="invalid_thing", retries=1)
    out = await model.structured(body(), constraint=constraint, parse=_parse, spec=spec, usage=usage)
    assert out == {"name": "ok"}
    assert seen[0] is None and seen[1] is not None and isinstance(seen[1].error, ValueError)
    assert [r["structured_outputs"]["json"]["maxLength"] for r in model.requests] == [100, 10]
    assert usage.completion_tokens == 4  # both attempts count


async def test_structured_gives_up_with_a_502_that_says_what_and_why() -> None:
    model = ScriptedModel()
    model.script("a b c d", "not json")
    spec = StructuredSpec(what="thing", code="invalid_thing", length_hint=" (cut off)", retries=1)
    with pytest.raises(InvalidModelOutput) as info:
        await model.structured(
            body(), constraint=lambda _: {"structured_outputs": {"json": {}}}, parse=_parse, spec=spec
        )
    err = info.value
    assert err.status_code == 502 and err.code == "invalid_thing" and err.finish_reason == "stop"
    assert "valid thing" in err.message and "(cut off)" not in err.message
    model.script("a b c d", "a b c d")
    with pytest.raises(InvalidModelOutput) as info:
        await model.structured(
            body(max_tokens=2),
            constraint=lambda _: {"structured_outputs": {"json": {}}},
            parse=_parse,
            spec=spec,
        )
    assert info.value.finish_reason == "length" and info.value.message.endswith("(cut off)")


async def test_structured_streams_each_attempt() -> None:
    model = ScriptedModel()
    model.script('{"name": "s"}')
    pieces: list[str] = []
    ends: list[int] = []

    async def on_delta(piece: str) -> None:
        pieces.append(piece)

    async def after() -> None:
        ends.append(1)

    spec = StructuredSpec(what="thing", code="invalid_thing")
    out = await model.structured(
        body(),
        constraint=lambda _: {"structured_outputs": {"json": {}}},
        parse=_parse,
        spec=spec,
        on_delta=on_delta,
        after_attempt=after,
    )
    assert out == {"name": "s"} and "".join(pieces) == '{"name": "s"}' and ends == [1]


async def test_an_engine_error_is_raised_as_is() -> None:
    model = ScriptedModel()
    model.script(ScriptedReply(error=APIError("too long", status_code=400, code="context_length_exceeded")))
    with pytest.raises(APIError) as info:
        await model.complete(body())
    assert info.value.status_code == 400 and info.value.code == "context_length_exceeded"


@pytest.fixture(scope="module")
def fake_engine() -> Iterator[tuple[FakeVLLM, str]]:
    fake = FakeVLLM(max_model_len=1536)
    with serve_in_thread(fake.app, ready_path="/health") as url:
        yield fake, url


class _Ready:
    ready = True
    state = "ready"


async def test_engine_model_over_http(fake_engine: tuple[FakeVLLM, str]) -> None:
    fake, url = fake_engine
    metrics = Metrics()
    client = EngineClient(url, health=_Ready())
    model = EngineModel(client, metrics=metrics)
    try:
        assert await model.context_length(MODEL) == 1536
        fake.script("plain answer", "streamed answer here")
        answer = await model.complete({**body(), "model": MODEL})
        assert answer.text == "plain answer"
        streamed = await (await model.stream({**body(), "model": MODEL})).collect()
        assert streamed.text == "streamed answer here" and streamed.finish_reason == "stop"
        assert tokens(metrics, "generation", MODEL) == 2 + 3
        with pytest.raises(APIError) as info:
            await model.complete({**body(), "model": "nope"})
        assert info.value.status_code == 404 and info.value.code == "model_not_found"
    finally:
        await client.aclose()
