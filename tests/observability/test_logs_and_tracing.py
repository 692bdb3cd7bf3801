"""Request ids (in responses, logs and engine calls), JSON logs, and OTLP tracing end to end."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response

from service.app import create_app
from service.observability.logging import JsonFormatter, RequestIdFilter, logging_config
from service.settings import TracingSettings
from tests.observability.conftest import FakeVLLMWithMetrics, Gateway, gateway_settings, seed
from tests.utils.fake_vllm import MODEL
from tests.utils.servers import serve_in_thread

MSGS = [{"role": "user", "content": "What does exit code 137 mean?"}]


def test_request_id_is_echoed_generated_and_forwarded(obs_gateway: Gateway) -> None:
    fake = obs_gateway.fake
    r = httpx.post(
        obs_gateway.v1 + "/chat/completions",
        json={"model": MODEL, "messages": MSGS},
        headers={"X-Request-ID": "incident-42.a"},
    )
    assert r.status_code == 200 and r.headers["x-request-id"] == "incident-42.a"
    engine_calls = [h for h in fake.headers if h.get("x-request-id") == "incident-42.a"]
    assert engine_calls, "the request id goes on to vLLM as X-Request-Id"

    generated = httpx.get(obs_gateway.url + "/healthz").headers["x-request-id"]
    assert (
        len(generated) == 32 and generated != httpx.get(obs_gateway.url + "/healthz").headers["x-request-id"]
    )
    # unusable ids (too long, odd characters) are replaced, never echoed into logs and headers
    r = httpx.get(obs_gateway.url + "/healthz", headers={"X-Request-ID": "a b\tc" + "x" * 200})
    assert r.headers["x-request-id"] != "a b\tc" and len(r.headers["x-request-id"]) == 32
    # errors produced by middleware (413) carry it too
    r = httpx.post(
        obs_gateway.v1 + "/chat/completions",
        content=b"x" * (obs_gateway.settings.server.max_request_bytes + 1),
        headers={"X-Request-ID": "too-big", "Content-Type": "application/json"},
    )
    assert r.status_code == 413 and r.headers["x-request-id"] == "too-big"


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Captures the gateway's log records as the JSON formatter writes them."""
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger("ragserve")
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield buf
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def test_json_log_lines_carry_the_request_id(obs_gateway: Gateway, json_log: io.StringIO) -> None:
    r = httpx.post(
        obs_gateway.v1 + "/chat/completions",
        json={"model": "rag/default", "messages": MSGS},
        headers={"X-Request-ID": "trace-me-1"},
    )
    assert r.status_code == 200
    httpx.get(obs_gateway.url + "/v1/models", headers={"X-Request-ID": "trace-me-2"})
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    access = [x for x in lines if x["logger"] == "ragserve.access"]
    chat = next(x for x in access if x.get("request_id") == "trace-me-1")
    assert chat["route"] == "/v1/chat/completions" and chat["status"] == 200 and chat["method"] == "POST"
    assert chat["level"] == "info" and chat["duration_ms"] >= 0 and chat["ts"].endswith("+00:00")
    assert any(x.get("request_id") == "trace-me-2" and x["route"] == "/v1/models" for x in access)


def test_logging_config_switches_format() -> None:
    text = logging_config("text", "info")
    assert "request_id" in text["formatters"]["default"]["fmt"]
    assert text["formatters"]["default"]["()"].endswith("SafeTextFormatter")
    as_json = logging_config("json", "debug")
    assert as_json["formatters"]["default"]["()"].endswith("JsonFormatter")
    assert as_json["root"]["level"] == "DEBUG" and as_json["loggers"]["uvicorn.access"]["propagate"]
    rec = logging.LogRecord("ragserve.x", logging.ERROR, __file__, 1, "boom %s", ("!",), None)
    RequestIdFilter().filter(rec)
    out = json.loads(JsonFormatter().format(rec))
    assert out["message"] == "boom !" and out["level"] == "error" and "request_id" not in out


# -- tracing --------------------------------------------------------------------------------


class FakeCollector:
    """An OTLP/HTTP trace receiver that decodes what it is sent."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.app = FastAPI()

        @self.app.get("/healthz")
        async def health() -> dict[str, str]:
            return {"status": "ok"}

        @self.app.post("/v1/traces")
        async def traces(request: Request) -> Response:
            from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

            req = ExportTraceServiceRequest()
            req.ParseFromString(await request.body())
            for rs in req.resource_spans:
                service = {a.key: a.value.string_value for a in rs.resource.attributes}["service.name"]
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        self.spans.append(
                            {
                                "name": s.name,
                                "service": service,
                                "trace_id": s.trace_id.hex(),
                                "span_id": s.span_id.hex(),
                                "parent": s.parent_span_id.hex(),
                                "attributes": {a.key: a.value for a in s.attributes},
                            }
                        )
            return Response(b"", media_type="application/x-protobuf")


def test_tracing_exports_spans_for_request_retrieval_and_engine(
    obs_engine: tuple[str, FakeVLLMWithMetrics],
    shared_embedder: object,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    engine_url, fake = obs_engine
    collector = FakeCollector()
    caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    with serve_in_thread(collector.app) as collector_url:
        settings = gateway_settings(
            tmp_path_factory.mktemp("trace-data"),
            engine_url,
            tracing=TracingSettings(otlp_endpoint=collector_url, service_name="ragserve-test"),
        )
        seed(settings, shared_embedder, tmp_path_factory.mktemp("trace-corpus"))
        app = create_app(settings, embedder=shared_embedder)  # type: ignore[arg-type]
        with serve_in_thread(app) as url:
            r = httpx.post(
                url + "/v1/chat/completions",
                json={"model": "rag/default", "messages": MSGS},
                headers={"traceparent": f"00-{caller_trace}-00f067aa0ba902b7-01"},
            )
            assert r.status_code == 200
            sent = fake.headers[-1]
        # the gateway's shutdown flushed the batch to the collector
    by_name = {s["name"]: s for s in collector.spans}
    server = by_name["POST /v1/chat/completions"]
    retrieval = by_name["retrieval"]
    engine = by_name["engine POST /v1/chat/completions"]
    assert server["service"] == "ragserve-test"
    assert server["trace_id"] == retrieval["trace_id"] == engine["trace_id"] == caller_trace
    assert server["parent"] == "00f067aa0ba902b7", "the caller's span is the parent"
    assert retrieval["parent"] == server["span_id"] and engine["parent"] == server["span_id"]
    assert retrieval["attributes"]["collection"].string_value == "default"
    # vLLM receives the trace context of the engine span
    assert sent["traceparent"].split("-")[1:3] == [caller_trace, engine["span_id"]]
