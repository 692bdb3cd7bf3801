"""Pure-ASGI auth middleware: who is calling (401), requests per minute (429), rate-limit headers.

It binds the request's `RequestAccess` (principal, usage tally) for everything downstream, puts
the principal on `request.state.principal`, adds OpenAI's `x-ratelimit-*` headers to every
response of a limited key, and counts requests by key name and refusals by status and reason.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.auth import context
from service.auth.context import RequestAccess
from service.auth.gate import METRICS_PATH, AccessControl, is_public
from service.auth.principal import PermissionDenied
from service.auth.ratelimit import retry_headers
from service.errors import APIError

GENERATION_PATHS = frozenset({"/v1/chat/completions", "/v1/completions"})
# Default reason per refused status when nothing more specific was recorded.
_STATUS_REASONS = {
    401: "invalid_api_key",
    403: "permission",
    429: "rate_limit",
    503: "unavailable",
    504: "timeout",
}


class AuthMiddleware:
    def __init__(self, app: ASGIApp, *, access: AccessControl) -> None:
        self.app = app
        self.access = access
        self._metrics_public = not access.enabled or access.settings.auth.public_metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or is_public(path) or (path == METRICS_PATH and self._metrics_public):
            await self.app(scope, receive, send)
            return
        metrics = self.access.metrics
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        client = (scope.get("client") or ("unknown", 0))[0]
        if self.access.enabled and (wait := await self.access.auth_failures_wait(client)) is not None:
            metrics.rejected_requests.labels("429", "auth_failures").inc()
            await _send_api_error(send, _too_many_failures(wait))
            return
        try:
            principal = self.access.authenticate(headers)
        except APIError as exc:
            sent = "authorization" in headers or "api-key" in headers
            reason = "invalid_api_key" if sent else "missing_api_key"
            metrics.rejected_requests.labels("401", reason).inc()
            if sent:
                await self.access.record_auth_failure(client)
            await _send_api_error(send, exc)
            return
        if path == METRICS_PATH and not principal.may("metrics"):
            metrics.rejected_requests.labels("403", "permission").inc()
            await _send_api_error(
                send,
                PermissionDenied(
                    f"the API key '{principal.name}' may not read metrics (they name every collection "
                    "and key); give a key the 'metrics' permission for the scraper",
                    code="permission_denied",
                ),
            )
            return
        ra = RequestAccess(principal)
        scope.setdefault("state", {})["principal"] = principal
        token = context.bind(ra)
        try:
            metrics.key_requests.labels(principal.name).inc()
            try:
                await self.access.admit_request(ra)
                if scope["path"] in GENERATION_PATHS and self.access.queue.full:
                    ra.rejection = "queue_full"  # refused before the body is even read: cheap under a flood
                    raise self.access.queue.overloaded()
            except APIError as exc:
                metrics.rejected_requests.labels(str(exc.status_code), ra.rejection or "requests").inc()
                await _send_api_error(send, exc)
                return

            async def send_with_headers(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    if status in _STATUS_REASONS:
                        reason = ra.rejection or _STATUS_REASONS[status]
                        metrics.rejected_requests.labels(str(status), reason).inc()
                    if ra.rate_headers:
                        present = {k.lower() for k, _ in message.get("headers", [])}
                        message["headers"] = [
                            *message.get("headers", []),
                            *((k.encode(), v.encode()) for k, v in ra.rate_headers.items()
                              if k.encode() not in present),
                        ]  # fmt: skip
                await send(message)

            await self.app(scope, receive, send_with_headers)
        finally:
            context.unbind(token)


def _too_many_failures(wait_s: float) -> APIError:
    return APIError(
        "too many failed authentications from this address; retry later with a valid API key",
        status_code=429,
        error_type="rate_limit_error",
        code="too_many_auth_failures",
        headers=retry_headers(wait_s),
    )


async def _send_api_error(send: Send, exc: APIError) -> None:
    body = json.dumps(exc.envelope()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in exc.headers.items()]
    await send({"type": "http.response.start", "status": exc.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})
