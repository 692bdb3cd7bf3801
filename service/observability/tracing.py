"""Optional OpenTelemetry tracing (OTLP exporter), off unless `RAGSERVE_TRACING__OTLP_ENDPOINT` is set.

When off, `span()` is a no-op that never imports OpenTelemetry. When on, the gateway opens a
server span per HTTP request (continuing a caller's W3C `traceparent`), child spans for retrieval,
engine calls and safety guards, and passes `traceparent` on to vLLM (which can export its own
spans to the same collector with `--otlp-traces-endpoint`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from service.settings import TracingSettings

logger = logging.getLogger("ragserve.observability")

_tracer: Any = None  # an opentelemetry Tracer while tracing is configured


def enabled() -> bool:
    return _tracer is not None


def configure_tracing(settings: TracingSettings, *, version: str) -> Callable[[], None] | None:
    """Install a tracer exporting to the configured collector; returns its shutdown, or None when off."""
    global _tracer
    if not settings.otlp_endpoint:
        return None
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
    except ImportError as exc:  # pragma: no cover - vLLM depends on these, so they are normally present
        raise RuntimeError(
            "tracing needs OpenTelemetry: pip install opentelemetry-sdk opentelemetry-exporter-otlp"
        ) from exc
    endpoint = settings.otlp_endpoint
    exporter: Any
    if settings.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        exporter = GrpcExporter(endpoint=endpoint, insecure=endpoint.startswith("http://"))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

        if urlsplit(endpoint).path in ("", "/"):
            endpoint = endpoint.rstrip("/") + "/v1/traces"
        exporter = HttpExporter(endpoint=endpoint)
    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.service_name, "service.version": version}),
        sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)),
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    _tracer = provider.get_tracer("ragserve", version)
    logger.info("tracing: exporting spans to %s (%s)", endpoint, settings.protocol)

    def shutdown() -> None:
        global _tracer
        _tracer = None
        provider.shutdown()  # flushes what is still batched

    return shutdown


@contextmanager
def span(name: str, **attributes: str | int | float | bool | None) -> Iterator[Any]:
    """A child span of the current one when tracing is on; yields the span (or None)."""
    if _tracer is None:
        yield None
        return
    attrs = {k: v for k, v in attributes.items() if v is not None}
    with _tracer.start_as_current_span(name, attributes=attrs) as s:
        yield s


@contextmanager
def server_span(name: str, headers: Mapping[str, str], **attributes: str | int) -> Iterator[Any]:
    """The span of one incoming HTTP request, continuing the caller's trace if it sent one."""
    if _tracer is None:
        yield None
        return
    from opentelemetry import propagate
    from opentelemetry.trace import SpanKind

    ctx = propagate.extract(dict(headers))
    with _tracer.start_as_current_span(name, context=ctx, kind=SpanKind.SERVER, attributes=attributes) as s:
        yield s


def set_attributes(s: Any, **attributes: str | int | float | bool) -> None:
    if s is not None:
        s.set_attributes(attributes)


def inject_trace_headers(headers: MutableMapping[str, str]) -> None:
    """Add `traceparent` for the current span (no-op when tracing is off)."""
    if _tracer is None:
        return
    from opentelemetry import propagate

    propagate.inject(headers)


# -- outgoing engine calls (httpx event hooks) ------------------------------------------------


async def on_engine_request(request: Any) -> None:
    """httpx request hook: forward the request id to vLLM and open a client span for the call."""
    from service.observability.context import current_request_id

    rid = current_request_id()
    if rid:
        request.headers["X-Request-Id"] = rid  # vLLM uses it for its own request ids and logs
    if _tracer is None:
        return
    from opentelemetry import propagate, trace
    from opentelemetry.trace import SpanKind

    s = _tracer.start_span(
        f"engine {request.method} {request.url.path}",
        kind=SpanKind.CLIENT,
        attributes={"http.request.method": request.method, "url.full": str(request.url)},
    )
    request.extensions["ragserve_span"] = s
    propagate.inject(request.headers, context=trace.set_span_in_context(s))


async def on_engine_response(response: Any) -> None:
    """httpx response hook: close the call's span when the headers arrive (streams keep flowing)."""
    s = response.request.extensions.get("ragserve_span")
    if s is not None:
        s.set_attribute("http.response.status_code", response.status_code)
        if response.status_code >= 500:
            from opentelemetry.trace import Status, StatusCode

            s.set_status(Status(StatusCode.ERROR))
        s.end()


ENGINE_EVENT_HOOKS: dict[str, list[Callable[[Any], Any]]] = {
    "request": [on_engine_request],
    "response": [on_engine_response],
}
