"""HTTP client for a vLLM OpenAI-compatible server (embedded child or remote deployment)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any, Protocol

import httpx

from service.errors import APIError, EngineUnavailable, error_type_for_status
from service.observability.tracing import ENGINE_EVENT_HOOKS

logger = logging.getLogger("ragserve.engine")


class EngineHealth(Protocol):
    @property
    def ready(self) -> bool: ...

    @property
    def state(self) -> str: ...


class RemoteEngineMonitor:
    """Polls a remote engine's /health so readiness reflects it without a request failing first."""

    def __init__(self, base_url: str, *, interval_s: float = 5.0, api_key: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.interval_s = interval_s
        self.state = "starting"
        self.last_error: str | None = None
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    async def check(self) -> bool:
        try:
            async with httpx.AsyncClient(timeout=5.0) as c:
                r = await c.get(f"{self.base_url}/health", headers=self._headers)
            ok = r.status_code == 200
            self.last_error = None if ok else f"/health answered {r.status_code}"
        except httpx.HTTPError as exc:
            ok = False
            self.last_error = f"{type(exc).__name__}: {exc}"
        new_state = "ready" if ok else "unreachable"
        if new_state != self.state:
            logger.info("remote engine %s: %s -> %s", self.base_url, self.state, new_state)
        self.state = new_state
        return ok

    async def _loop(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="engine-health")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _normalise_error(status: int, body: bytes) -> APIError:
    """Turn an upstream error body (vLLM's envelope, or anything) into our APIError."""
    message = body.decode("utf-8", errors="replace")[:2000] or f"engine returned HTTP {status}"
    err_type = error_type_for_status(status)
    param: str | None = None
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        data = json.loads(body)
        err = data.get("error", data) if isinstance(data, dict) else {}
        if isinstance(err, dict):
            message = str(err.get("message") or message)
            err_type = str(err.get("type") or err_type)
            param = err.get("param") if isinstance(err.get("param"), str) else None
    if status == 404 and "does not exist" in message:
        err_type = "invalid_request_error"
        code = "model_not_found"
    elif status == 400 and ("maximum context length" in message or "context length" in message):
        code = "context_length_exceeded"
    else:
        code = None
    # vLLM reports some client errors as BadRequestError; OpenAI calls them invalid_request_error.
    if 400 <= status < 500 and err_type in ("BadRequestError", "Bad Request", "NotFoundError"):
        err_type = "invalid_request_error"
    if status >= 500:
        return APIError(
            f"engine error: {message}",
            status_code=502 if status != 503 else 503,
            error_type="server_error",
            code="engine_error",
        )
    return APIError(message, status_code=status, error_type=err_type, param=param, code=code)


class UpstreamStream:
    """An open SSE response from the engine; iterate `events()` for each `data:` payload."""

    def __init__(self, response: httpx.Response) -> None:
        self._response = response

    async def events(self) -> AsyncIterator[str]:
        buf: list[str] = []
        async for line in self._response.aiter_lines():
            if line.startswith("data:"):
                buf.append(line[5:].lstrip())
            elif line == "" and buf:
                yield "\n".join(buf)
                buf = []
        if buf:
            yield "\n".join(buf)

    async def aclose(self) -> None:
        await self._response.aclose()


class EngineClient:
    """Calls vLLM's OpenAI API; maps transport failures to 503 and upstream errors to envelopes."""

    def __init__(
        self,
        base_url: str,
        *,
        health: EngineHealth,
        api_key: str | None = None,
        timeout_s: float = 600.0,
        max_connections: int = 512,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.health = health
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=5.0),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            event_hooks=ENGINE_EVENT_HOOKS,  # X-Request-Id and trace context go to vLLM
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    def _require_ready(self) -> None:
        if not self.health.ready:
            if self.health.state == "failed":
                raise EngineUnavailable(
                    "the language model engine failed to start repeatedly; an operator must check the "
                    "server log (ragserve.vllm lines) and restart the service",
                    retry_after_s=60,
                )
            raise EngineUnavailable(
                f"the language model engine is not ready (state: {self.health.state}); retry shortly",
                retry_after_s=10,
            )

    async def _send(self, request: httpx.Request, *, stream: bool = False) -> httpx.Response:
        """Send one request; transport failures become 503/504 and upstream errors their envelope."""
        self._require_ready()
        try:
            response = await self._client.send(request, stream=stream)
        except httpx.TimeoutException as exc:
            raise APIError(
                "the engine did not answer in time",
                status_code=504,
                error_type="server_error",
                code="engine_timeout",
            ) from exc
        except httpx.TransportError as exc:
            raise EngineUnavailable(
                f"the engine is unreachable ({type(exc).__name__}); retry shortly"
            ) from exc
        if response.status_code != 200:
            content = await response.aread()
            await response.aclose()
            raise _normalise_error(response.status_code, content)
        return response

    async def post_json(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        r = await self._send(self._client.build_request("POST", path, json=body))
        data: dict[str, Any] = r.json()
        return data

    async def post_text(self, path: str, body: dict[str, Any]) -> str:
        """POST JSON to an endpoint that answers plain text (vLLM's LoRA load/unload)."""
        r = await self._send(self._client.build_request("POST", path, json=body))
        return r.text

    async def get_json(self, path: str) -> dict[str, Any]:
        r = await self._send(self._client.build_request("GET", path))
        data: dict[str, Any] = r.json()
        return data

    async def open_stream(self, path: str, body: dict[str, Any]) -> UpstreamStream:
        """Start a streaming request; errors before the first byte raise with their real status."""
        response = await self._send(self._client.build_request("POST", path, json=body), stream=True)
        return UpstreamStream(response)

    async def count_tokens(self, text: str, model: str) -> int:
        data = await self.post_json(
            "/tokenize", {"model": model, "prompt": text, "add_special_tokens": False}
        )
        return int(data.get("count", len(data.get("tokens", []))))

    async def count_chat_tokens(self, messages: list[dict[str, Any]], model: str) -> int:
        data = await self.post_json(
            "/tokenize", {"model": model, "messages": messages, "add_generation_prompt": True}
        )
        return int(data.get("count", len(data.get("tokens", []))))

    async def max_model_len(self, model: str) -> int | None:
        data = await self.get_json("/v1/models")
        for m in data.get("data", []):
            if m.get("id") == model and m.get("max_model_len"):
                return int(m["max_model_len"])
        return None
