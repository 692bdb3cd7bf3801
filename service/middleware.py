"""Pure-ASGI middleware: request ids, access logs and server spans; size limits; HTTP metrics.

Pure ASGI rather than `BaseHTTPMiddleware` so streams are timed to their last byte and nothing
buffers a response.
"""

from __future__ import annotations

import json
import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import error_envelope
from service.observability import tracing
from service.observability.context import accept_request_id, request_id_var
from service.observability.metrics import Metrics

access_logger = logging.getLogger("ragserve.access")

# Methods outside this set are counted as "other": the label stays bounded whatever clients send.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Scraped and probed every few seconds: logged at DEBUG so they do not drown the access log.
_QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})


async def send_error(send: Send, status: int, message: str, error_type: str, code: str | None) -> None:
    body = json.dumps(error_envelope(message, error_type, None, code)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def too_large(send: Send, limit: int) -> None:
    await send_error(
        send,
        413,
        f"request body is larger than the limit of {limit} bytes",
        "invalid_request_error",
        "request_too_large",
    )


class _TooLarge(Exception):
    pass


class BodySizeLimit:
    """413 for bodies over the limit, whether announced by Content-Length or streamed chunked."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, upload_max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.upload_max_bytes = upload_max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        limit = self.upload_max_bytes if path.endswith("/documents") else self.max_bytes
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await too_large(send, limit)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await too_large(send, limit)


_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_PROBES = frozenset({"/healthz", "/readyz"})  # kubelets probe with the pod IP as Host


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def host_name(host: str) -> str:
    """The name part of a Host header or an Origin's authority: no port, no IPv6 brackets, lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class BrowserGuard:
    """What keeps web pages from driving the API through a visitor's browser (docs/security.md).

    - JSON routes take only JSON: a POST/PUT/PATCH body must be `application/json` (or `+json`),
      else 415. Browsers send text/plain, form and multipart bodies cross-site without a preflight;
      only the upload route (multipart by design) takes another type.
    - Without API keys (`check_host`), the Host header must name an allowed host (DNS rebinding
      makes a page's own origin resolve to 127.0.0.1), and unsafe methods that carry an `Origin`
      must come from an allowed host or a CORS origin (a cross-site form upload otherwise works).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        check_host: bool,
        allowed_hosts: list[str],
        allowed_origins: list[str] | None = None,
    ) -> None:
        self.app = app
        self.check_host = check_host and "*" not in allowed_hosts
        self.allowed_hosts = {host_name(h) for h in allowed_hosts}
        self.allowed_origins = {o.rstrip("/").lower() for o in allowed_origins or []}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        method: str = scope["method"]
        path: str = scope["path"]
        if self.check_host and path not in _PROBES:
            host = host_name(headers.get("host", ""))
            if host not in self.allowed_hosts:
                await send_error(
                    send, 400, "the Host header names a host this server does not answer for without API "
                    "keys (server.allowed_hosts)", "invalid_request_error", "invalid_host",
                )  # fmt: skip
                return
            origin = headers.get("origin")
            if method in _UNSAFE and origin is not None and not self._origin_allowed(origin):
                await send_error(
                    send, 403, "cross-site requests are refused without API keys (allowed: "
                    "server.allowed_hosts and cors.allow_origins)", "permission_error", "cross_site_request",
                )  # fmt: skip
                return
        if method in ("POST", "PUT", "PATCH") and not path.endswith("/documents"):
            ctype = headers.get("content-type")
            has_body = headers.get("content-length", "0") not in ("", "0") or "transfer-encoding" in headers
            if (ctype is not None and not _is_json(ctype)) or (ctype is None and has_body):
                await send_error(
                    send, 415, f"send the body as application/json (got {ctype or 'no Content-Type'})",
                    "invalid_request_error", "unsupported_media_type",
                )  # fmt: skip
                return
        await self.app(scope, receive, send)

    def _origin_allowed(self, origin: str) -> bool:
        origin = origin.rstrip("/").lower()
        if "*" in self.allowed_origins or origin in self.allowed_origins:
            return True
        authority = origin.split("://", 1)[-1]
        return origin != "null" and host_name(authority) in self.allowed_hosts


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


class RequestContext:
    """Request id from `X-Request-ID` (or a new one) in logs and the response; access log; server span."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = accept_request_id(headers.get("x-request-id"))
        token = request_id_var.set(request_id)
        t0 = time.perf_counter()
        status = 500
        rid_header = (b"x-request-id", request_id.encode())

        async def wrapped_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [
                    *(h for h in message.get("headers", []) if h[0].lower() != b"x-request-id"),
                    rid_header,
                ]
            await send(message)

        method = scope["method"]
        try:
            with tracing.server_span(method, headers, **{"http.request.method": method}) as span:
                try:
                    await self.app(scope, receive, wrapped_send)
                finally:
                    if span is not None:
                        route = _route_template(scope)
                        span.update_name(f"{method} {route}")
                        span.set_attributes({"http.route": route, "http.response.status_code": status})
                        if status >= 500:
                            from opentelemetry.trace import Status, StatusCode

                            span.set_status(Status(StatusCode.ERROR))
        finally:
            route = _route_template(scope)
            ms = (time.perf_counter() - t0) * 1000
            access_logger.log(
                logging.DEBUG if route in _QUIET_ROUTES else logging.INFO,
                "%s %s %d %.1f ms", method, scope["path"], status, ms,
                extra={"method": method, "route": route, "status": status, "duration_ms": round(ms, 1)},
            )  # fmt: skip
            request_id_var.reset(token)


class HTTPMetrics:
    """Counts requests by route template, method and status; times them until the last byte."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500

        async def wrapped_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        self.metrics.http_in_flight.inc()
        try:
            await self.app(scope, receive, wrapped_send)
        finally:
            self.metrics.http_in_flight.dec()
            template = _route_template(scope)
            method = scope["method"] if scope["method"] in _METHODS else "other"
            self.metrics.http_requests.labels(template, method, str(status)).inc()
            self.metrics.http_duration.labels(template, method).observe(time.perf_counter() - t0)
