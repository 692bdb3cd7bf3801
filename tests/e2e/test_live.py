"""End to end on the embedded default: real vLLM (SmolLM2-135M), real gateway, real clients.

The tests share one server and run in file order; the last two kill the engine (to see the
supervisor bring it back) and stop the server with SIGTERM mid-stream (to see it drain).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from typing import Any

import httpx
import jsonschema
import openai
import psutil
import pytest

from service.settings import DEFAULT_EMBEDDER
from tests.e2e.conftest import LiveServer

pytestmark = pytest.mark.engine

MODEL = "smollm2-135m-instruct"


def client(server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.v1, api_key="unused", timeout=120, max_retries=0)


def test_sample_corpus_is_seeded_and_listed(live_server: LiveServer) -> None:
    cols = httpx.get(live_server.v1 + "/collections").json()["data"]
    default = next(c for c in cols if c["name"] == "default")
    assert default["documents"] >= 6 and default["chunks"] >= default["documents"]
    ids = {m.id for m in client(live_server).models.list().data}
    assert MODEL in ids and "rag/default" in ids
    docs = httpx.get(live_server.v1 + "/collections/default/documents").json()["data"]
    assert "guide/ingesting-documents.md" in {d["document_id"] for d in docs}


def test_chat_non_streaming_with_usage(live_server: LiveServer) -> None:
    r = client(live_server).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=24, temperature=0,
    )  # fmt: skip
    assert r.object == "chat.completion" and r.id
    assert r.choices[0].finish_reason in ("stop", "length")
    assert "Paris" in (r.choices[0].message.content or "")
    assert r.usage is not None and r.usage.completion_tokens > 0 and r.usage.prompt_tokens > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_chat_streaming_framing(live_server: LiveServer) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 16,
            "stream": True, "stream_options": {"include_usage": True}}  # fmt: skip
    with httpx.stream("POST", live_server.v1 + "/chat/completions", json=body, timeout=120) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        raw = r.read().decode()
    blocks = [b for b in raw.split("\n\n") if b]
    assert all(b.startswith("data: ") for b in blocks)
    assert blocks[-1] == "data: [DONE]"
    chunks = [json.loads(b[6:]) for b in blocks[:-1]]
    assert len({c["id"] for c in chunks}) == 1
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    with_choices = [c for c in chunks if c["choices"]]
    assert all(c["choices"][0]["finish_reason"] is None for c in with_choices[:-1])
    assert with_choices[-1]["choices"][0]["finish_reason"] in ("stop", "length")
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0


def test_async_client_concurrent_requests(live_server: LiveServer) -> None:
    async def run() -> list[str]:
        ac = openai.AsyncOpenAI(base_url=live_server.v1, api_key="unused", timeout=120, max_retries=0)
        try:
            rs = await asyncio.gather(*(
                ac.chat.completions.create(model=MODEL, max_tokens=12, temperature=0,
                                           messages=[{"role": "user", "content": f"Count to {i}."}])
                for i in range(2, 6)
            ))  # fmt: skip
        finally:
            await ac.close()
        return [r.choices[0].message.content or "" for r in rs]

    answers = asyncio.run(run())
    assert len(answers) == 4 and all(answers)


def test_rag_answer_has_citations(live_server: LiveServer) -> None:
    r = client(live_server).chat.completions.create(
        model="rag/default", max_tokens=96, temperature=0,
        messages=[{"role": "user", "content": "How do I upload files over HTTP for ingestion?"}],
    )  # fmt: skip
    assert r.choices[0].message.content
    citations = (r.model_extra or {})["citations"]
    assert citations, "a grounded answer carries the passages it was given"
    assert [c["index"] for c in citations] == list(range(1, len(citations) + 1))
    assert "guide/ingesting-documents.md" in {c["document_id"] for c in citations}
    for c in citations:
        assert c["text"] and c["chunk_id"] and c["source"]


def test_rag_streaming_citations_on_final_chunk(live_server: LiveServer) -> None:
    stream = client(live_server).chat.completions.create(
        model="rag/default", max_tokens=48, temperature=0, stream=True,
        messages=[{"role": "user", "content": "What does exit code 137 mean for a pod?"}],
    )  # fmt: skip
    events = list(stream)
    assert (events[-1].model_extra or {}).get("citations")
    assert all(not (e.model_extra or {}).get("citations") for e in events[:-1])
    docs = {c["document_id"] for c in events[-1].model_extra["citations"]}  # type: ignore[index]
    assert "runbooks/pod-oomkilled.md" in docs


def test_response_format_json_schema_is_enforced(live_server: LiveServer) -> None:
    schema = {
        "type": "object",
        "properties": {"service": {"type": "string", "maxLength": 24},
                       "severity": {"type": "string", "enum": ["low", "high"]},
                       "replicas": {"type": "integer"}},
        "required": ["service", "severity", "replicas"],
        "additionalProperties": False,
    }  # fmt: skip
    r = client(live_server).chat.completions.create(
        model=MODEL, max_tokens=80, temperature=0,
        messages=[{"role": "user", "content": "Payments is down with 3 replicas. Describe it as JSON."}],
        response_format={"type": "json_schema", "json_schema": {"name": "incident", "schema": schema}},
    )  # fmt: skip
    # A 135M model happily writes a runaway string; the bounded schema is what keeps it finite.
    assert r.choices[0].finish_reason == "stop", r.choices[0].message.content
    data = json.loads(r.choices[0].message.content or "")
    jsonschema.validate(data, schema)
    r = client(live_server).chat.completions.create(
        model=MODEL, max_tokens=40, temperature=0, response_format={"type": "json_object"},
        messages=[{"role": "user", "content": "Give a JSON object with a key named status."}],
    )  # fmt: skip
    assert isinstance(json.loads(r.choices[0].message.content or ""), dict)


def test_sampling_parameters_seed_and_stop(live_server: LiveServer) -> None:
    c = client(live_server)
    kw: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 20,
        "temperature": 0.9,
        "top_p": 0.9,
        "seed": 1234,
        "messages": [{"role": "user", "content": "Write a short sentence about servers."}],
    }
    a = c.chat.completions.create(**kw).choices[0].message.content
    b = c.chat.completions.create(**kw).choices[0].message.content
    assert a == b, "the same seed gives the same sample"
    r = c.chat.completions.create(
        model=MODEL,
        max_tokens=40,
        temperature=0,
        stop=["3"],
        messages=[{"role": "user", "content": "Count from 1 to 10 with digits."}],
    )
    assert "3" not in (r.choices[0].message.content or "")
    assert r.choices[0].finish_reason == "stop"


def test_completions_endpoint(live_server: LiveServer) -> None:
    r = client(live_server).completions.create(
        model=MODEL, prompt="Kubernetes is", max_tokens=8, temperature=0
    )
    assert r.choices[0].text and r.usage is not None and r.usage.completion_tokens == 8


def test_errors_from_the_engine_are_openai_envelopes(live_server: LiveServer) -> None:
    c = client(live_server)
    with pytest.raises(openai.NotFoundError):
        c.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.BadRequestError) as exc:
        c.chat.completions.create(
            model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "incident " * 3000}]
        )
    err = exc.value.body
    assert isinstance(err, dict) and err.get("message")
    r = httpx.post(
        live_server.v1 + "/chat/completions",
        timeout=60,
        json={"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "y " * 3000}]},
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded"


def test_langchain_chat_and_embeddings(live_server: LiveServer) -> None:
    from langchain_openai import ChatOpenAI, OpenAIEmbeddings

    llm = ChatOpenAI(base_url=live_server.v1, api_key="unused", model=MODEL, stream_usage=True,
                     max_tokens=16, temperature=0)  # fmt: skip
    chunks = list(llm.stream("Name one Linux command."))
    total = chunks[0]
    for ch in chunks[1:]:
        total = total + ch
    assert str(total.content)
    assert total.usage_metadata is not None and total.usage_metadata["output_tokens"] > 0
    emb = OpenAIEmbeddings(base_url=live_server.v1, api_key="unused", model=DEFAULT_EMBEDDER,
                           check_embedding_ctx_length=False)  # fmt: skip
    assert len(emb.embed_query("disk pressure")) == 512


def test_metrics_after_traffic(live_server: LiveServer) -> None:
    text = httpx.get(live_server.url + "/metrics").text
    assert 'ragserve_generation_tokens_total{model="smollm2-135m-instruct"}' in text
    assert "ragserve_time_to_first_token_seconds_bucket" in text
    assert 'ragserve_rag_citations_count{collection="default"}' in text
    # vLLM's own statistics, read from the real engine's /metrics and re-exported
    assert "ragserve_engine_metrics_up 1.0" in text
    for name in ("requests_running", "requests_waiting", "kv_cache_usage_ratio", "preemptions_total"):
        assert f"ragserve_engine_{name} " in text, name
    assert "ragserve_engine_request_queue_time_seconds_bucket" in text
    assert 'ragserve_retrieval_duration_seconds_count{stage="embed"}' in text
    assert 'ragserve_index_chunks{collection="default"}' in text
    r = httpx.get(live_server.url + "/healthz", headers={"X-Request-ID": "e2e-probe"})
    assert r.headers["x-request-id"] == "e2e-probe"


def _vllm_child(server: LiveServer) -> psutil.Process:
    for child in psutil.Process(server.proc.pid).children(recursive=False):
        if "vllm.entrypoints.openai.api_server" in " ".join(child.cmdline()):
            return child
    raise AssertionError("no vLLM child process found")


def _wait_readiness(server: LiveServer, *, ready: bool, within_s: float, why: str) -> None:
    """Poll /readyz until it reports `ready`; fail with `why` after `within_s` seconds."""
    deadline = time.monotonic() + within_s
    while (httpx.get(server.url + "/readyz").status_code == 200) != ready:
        assert time.monotonic() < deadline, f"{why}\n{server.log_tail()}"
        time.sleep(0.3)


def _chat_during_outage(server: LiveServer) -> httpx.Response:
    r = httpx.post(server.v1 + "/chat/completions", timeout=10,
                   json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]})  # fmt: skip
    assert r.status_code == 503 and int(r.headers["retry-after"]) > 0
    assert r.json()["error"]["type"] == "service_unavailable"
    return r


def test_hung_engine_turns_readiness_off_and_back_on(live_server: LiveServer) -> None:
    child = _vllm_child(live_server)
    os.killpg(child.pid, signal.SIGSTOP)  # the API server stops answering, but does not exit
    try:
        _wait_readiness(live_server, ready=False, within_s=90, why="readiness did not notice the hung engine")
        _chat_during_outage(live_server)
    finally:
        os.killpg(child.pid, signal.SIGCONT)
    _wait_readiness(live_server, ready=True, within_s=60, why="readiness did not come back after the resume")
    assert _vllm_child(live_server).pid == child.pid, "a short hang does not cost a restart"


def test_engine_death_is_detected_and_recovered(live_server: LiveServer) -> None:
    child = _vllm_child(live_server)
    os.killpg(child.pid, signal.SIGKILL)
    _wait_readiness(live_server, ready=False, within_s=30, why="readiness did not notice the engine's death")
    _chat_during_outage(live_server)
    _wait_readiness(live_server, ready=True, within_s=400, why="the engine did not come back")
    assert _vllm_child(live_server).pid != child.pid
    r2 = client(live_server).chat.completions.create(
        model=MODEL, max_tokens=4, messages=[{"role": "user", "content": "hi"}]
    )
    assert r2.choices[0].message.content is not None
    assert "ragserve_engine_restarts_total 1.0" in httpx.get(live_server.url + "/metrics").text


def test_sigterm_drains_an_inflight_stream(live_server: LiveServer) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Tell a long story."}], "max_tokens": 96,
            "ignore_eos": True, "stream": True}  # fmt: skip
    result: dict[str, Any] = {}
    started = threading.Event()

    def consume() -> None:
        with httpx.stream("POST", live_server.v1 + "/chat/completions", json=body, timeout=120) as r:
            lines = []
            for line in r.iter_lines():
                if line.startswith("data: ") and not started.is_set():
                    started.set()
                lines.append(line)
            result["lines"] = lines

    t = threading.Thread(target=consume)
    t.start()
    assert started.wait(60)
    vllm_child = _vllm_child(live_server)
    live_server.proc.send_signal(signal.SIGTERM)
    t.join(120)
    assert result["lines"][-1] == "data: [DONE]" or result["lines"][-2:] == ["data: [DONE]", ""]
    content = [json.loads(x[6:]) for x in result["lines"] if x.startswith("data: {")]
    assert content[-1]["choices"][0]["finish_reason"] == "length"
    # uvicorn re-raises the SIGTERM it handled once shutdown is complete, hence -15 rather than 0.
    assert live_server.proc.wait(timeout=90) in (0, -signal.SIGTERM)
    assert "gateway stopped" in live_server.log_tail(5)
    assert not vllm_child.is_running() or vllm_child.status() == psutil.STATUS_ZOMBIE
