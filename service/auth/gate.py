"""`AccessControl`: the one object the app builds for keys, rate limits and the admission queue.

Order for a generation request: key (401) -> requests/min (429, in the middleware) -> role and
collection checks (403/404, in routers and the knowledge service) -> tokens/min (429) -> a slot in
the admission queue (503) -> the engine, under the per-request deadline (504).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from starlette.types import Receive

from service.auth.admission import AdmissionQueue, Overloaded
from service.auth.context import RequestAccess, current_request
from service.auth.keys import KeyStore
from service.auth.principal import ANONYMOUS, Principal
from service.auth.ratelimit import (
    LocalRateLimiter,
    RateDecision,
    RateLimiter,
    RedisRateLimiter,
    ratelimit_headers,
    retry_headers,
)
from service.errors import APIError
from service.observability.metrics import Metrics
from service.protocol.openai import content_text
from service.settings import Settings

logger = logging.getLogger("ragserve.auth")

GenerationResult = dict[str, Any] | AsyncIterator[bytes]

# Never behind a key: the probes (they say only ready or not). /metrics needs a key with the
# "metrics" permission when keys are configured (auth.public_metrics opens it).
PUBLIC_PATHS = frozenset({"/healthz", "/readyz"})
METRICS_PATH = "/metrics"
# The web UI's static files (service/ui.py) and the redirect to it: public, so the page can load and
# ask for a key; they hold no data, and every API call the page makes is checked as usual.
PUBLIC_UI_PATHS = frozenset({"/", "/ui"})
PUBLIC_UI_PREFIX = "/ui/"


def is_public(path: str) -> bool:
    """Routes that need no API key."""
    return path in PUBLIC_PATHS or path in PUBLIC_UI_PATHS or path.startswith(PUBLIC_UI_PREFIX)


class Unauthorized(APIError):
    status_code = 401
    error_type = "authentication_error"

    def __init__(self, message: str) -> None:
        super().__init__(message, code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})


class RateLimited(APIError):
    status_code = 429
    error_type = "rate_limit_error"


class RequestTimeout(APIError):
    status_code = 504
    error_type = "server_error"


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key from `Authorization: Bearer <key>` or, for Azure-style clients, `api-key: <key>`."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    key = headers.get("api-key")
    return key.strip() if key and key.strip() else None


def estimate_tokens(raw: Mapping[str, Any], default_max_tokens: int) -> int:
    """Tokens a generation request may cost, before the engine says: prompt (~4 chars a token) + output."""
    chars = 0
    for m in raw.get("messages") or []:
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            chars += len(content_text(content))
    prompt = raw.get("prompt")
    prompts = prompt if isinstance(prompt, list) and not all(isinstance(p, int) for p in prompt) else [prompt]
    for p in prompts:
        if isinstance(p, str):
            chars += len(p)
        elif isinstance(p, list):  # token ids
            chars += 4 * len(p)
    limit = raw.get("max_completion_tokens") or raw.get("max_tokens") or default_max_tokens
    out = int(limit) if isinstance(limit, int) and limit > 0 else default_max_tokens
    return math.ceil(chars / 4) + out


class AccessControl:
    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        cfg = settings.auth
        self.keys: KeyStore | None = None
        if settings.auth_keys_file is not None:
            self.keys = KeyStore(
                settings.auth_keys_file, reload_check_s=cfg.reload_check_s, on_reload=self._on_reload
            )
        self.limiter: RateLimiter = (
            RedisRateLimiter(cfg.redis_url, prefix=cfg.redis_key_prefix)
            if cfg.redis_url
            else LocalRateLimiter()
        )
        self._auth_failed_at: dict[str, float] = {}  # client address -> last failed authentication
        adm = settings.admission
        self.queue = AdmissionQueue(
            max_concurrent=adm.max_concurrent,
            max_queued=adm.max_queued,
            max_wait_s=adm.max_wait_s,
            on_depth=self._on_depth,
        )

    @property
    def enabled(self) -> bool:
        return self.keys is not None

    def _on_reload(self, outcome: str, count: int) -> None:
        self.metrics.auth_key_reloads.labels(outcome).inc()
        self.metrics.auth_keys.set(count)

    def _on_depth(self, active: int, queued: int) -> None:
        self.metrics.admission_active.set(active)
        self.metrics.admission_queue_depth.set(queued)

    async def aclose(self) -> None:
        await self.limiter.aclose()

    # -- who ----------------------------------------------------------------------------------

    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """The caller's principal; 401 when keys are configured and none (or a wrong one) was sent."""
        if self.keys is None:
            return ANONYMOUS
        key = presented_key(headers)
        if key is None:
            if headers.get("authorization"):
                raise Unauthorized("the Authorization header must be 'Bearer <API key>'")
            raise Unauthorized(
                "missing API key: send it as 'Authorization: Bearer <key>' (or in an 'api-key' header)"
            )
        principal = self.keys.authenticate(key)
        if principal is None:
            raise Unauthorized("incorrect API key provided")
        return principal

    # -- failed authentication, per client address ------------------------------------------------

    async def auth_failures_wait(self, client: str) -> float | None:
        """Seconds until this address may present a key again, or None when it may now.

        Checked before the key is, so a guesser learns nothing while throttled. Only addresses that
        failed here within the last minute cost a bucket look-up (shared in Redis when configured).
        """
        failed = self._auth_failed_at.get(client)
        if failed is None or time.monotonic() - failed > 60:
            return None
        limit = self.settings.auth.failed_auth_per_minute
        decision = await self.limiter.take(f"authfail:{client}", {"requests": (limit, 0)})
        bucket = decision.buckets.get("requests")
        if bucket is None or bucket.remaining >= 1:
            return None
        return 60.0 / limit

    async def record_auth_failure(self, client: str) -> None:
        limit = self.settings.auth.failed_auth_per_minute
        if len(self._auth_failed_at) > 10_000:  # bounded: forget the oldest half
            for addr, _ in sorted(self._auth_failed_at.items(), key=lambda kv: kv[1])[:5_000]:
                del self._auth_failed_at[addr]
        self._auth_failed_at[client] = time.monotonic()
        await self.limiter.take(f"authfail:{client}", {"requests": (limit, 1)})

    def limits(self, principal: Principal) -> tuple[int | None, int | None]:
        cfg = self.settings.auth
        return (
            principal.requests_per_minute or cfg.default_requests_per_minute,
            principal.tokens_per_minute or cfg.default_tokens_per_minute,
        )

    # -- requests per minute (every authenticated route) ---------------------------------------

    async def admit_request(self, ra: RequestAccess) -> None:
        """Take one request from the key's bucket (peeking at its tokens for the headers); 429 if empty."""
        rpm, tpm = self.limits(ra.principal)
        costs: dict[str, tuple[int, int]] = {}
        if rpm:
            costs["requests"] = (rpm, 1)
        if tpm:
            costs["tokens"] = (tpm, 0)
        if not costs:
            return
        decision = await self.limiter.take(ra.principal.name, costs)
        ra.rate_headers.update(ratelimit_headers(decision.buckets))
        if not decision.allowed:
            raise self._limited(ra, decision, "requests")

    def _limited(self, ra: RequestAccess, decision: RateDecision, kind: str) -> RateLimited:
        ra.rejection = kind
        self.metrics.rate_limited.labels(ra.principal.name, kind).inc()
        b = decision.buckets[kind]
        per = "requests per minute" if kind == "requests" else "tokens per minute"
        wait = decision.retry_after_s
        return RateLimited(
            f"rate limit reached for API key '{ra.principal.name}' on {per}: limit {b.limit}, "
            f"remaining {b.remaining}; retry in {wait:.1f} s",
            code="rate_limit_exceeded",
            headers={**ratelimit_headers(decision.buckets), **retry_headers(wait)},
        )

    # -- generation: tokens per minute, a queue slot, a deadline -------------------------------

    async def run_generation(
        self,
        call: Callable[[], Awaitable[GenerationResult]],
        raw: Mapping[str, Any],
        *,
        receive: Receive | None = None,
    ) -> GenerationResult:
        """Admit a generation request and run `call` under the deadline; streams keep the slot to the end.

        With `receive` (the request's, its body already read) a client that disconnects before the
        answer is ready cancels `call`, and with it the engine request.
        """
        ra = current_request() or RequestAccess(ANONYMOUS)
        deadline = time.monotonic() + self.settings.admission.request_timeout_s
        reserved = await self._take_tokens(ra, raw)
        try:
            waited = await self.queue.acquire(max_wait_s=deadline - time.monotonic())
        except Overloaded as exc:
            ra.rejection = str(exc.code)
            await self._settle(ra, reserved, failed=True)
            raise
        self.metrics.admission_wait.observe(waited)
        started = time.monotonic()
        settled = False

        async def settle(failed: bool) -> None:
            nonlocal settled
            if not settled:
                settled = True
                self.queue.release(held_s=time.monotonic() - started)
                await self._settle(ra, reserved, failed=failed)

        timeout = asyncio.timeout(max(0.0, deadline - time.monotonic()))
        try:
            async with timeout:
                result = await (call() if receive is None else _unless_client_leaves(call, receive))
        except BaseException as exc:
            expired = isinstance(exc, TimeoutError) and timeout.expired()
            await settle(failed=not expired)
            if expired:
                raise self._timed_out(ra) from None
            raise
        if isinstance(result, dict):
            await settle(failed=False)
            return result
        return self._guarded_stream(result, deadline, settle, ra)

    async def _guarded_stream(
        self,
        stream: AsyncIterator[bytes],
        deadline: float,
        settle: Callable[[bool], Awaitable[None]],
        ra: RequestAccess,
    ) -> AsyncIterator[bytes]:
        """Relay the stream under the deadline; however it ends, close the upstream and free the slot."""
        try:
            while True:
                try:
                    # The deadline wraps only the wait for the next chunk, never the `yield`.
                    async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                        chunk = await anext(stream)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    err = self._timed_out(ra)
                    self.metrics.rejected_requests.labels("504", "timeout").inc()  # the 200 went out already
                    yield _sse_error(err)
                    yield b"data: [DONE]\n\n"
                    break
                yield chunk
        finally:
            with contextlib.suppress(Exception):
                await stream.aclose()  # type: ignore[attr-defined]
            await settle(False)

    def _timed_out(self, ra: RequestAccess) -> RequestTimeout:
        ra.rejection = "timeout"
        t = self.settings.admission.request_timeout_s
        return RequestTimeout(
            f"the request did not finish within {t:g} s (the server's per-request timeout, "
            "admission.request_timeout_s); ask for fewer tokens or retry later",
            code="request_timeout",
        )

    async def _take_tokens(self, ra: RequestAccess, raw: Mapping[str, Any]) -> int:
        _, tpm = self.limits(ra.principal)
        if not tpm:
            return 0
        estimate = estimate_tokens(raw, self.settings.rag.default_max_tokens)
        if estimate > tpm:
            ra.rejection = "too_large"
            self.metrics.rate_limited.labels(ra.principal.name, "tokens").inc()
            raise RateLimited(
                f"request too large for API key '{ra.principal.name}' on tokens per minute: limit {tpm}, "
                f"requested about {estimate} (prompt + max_tokens); lower max_tokens or the prompt",
                param="max_tokens",
                code="rate_limit_exceeded",
            )
        decision = await self.limiter.take(ra.principal.name, {"tokens": (tpm, estimate)})
        ra.rate_headers.update(ratelimit_headers(decision.buckets))
        if not decision.allowed:
            raise self._limited(ra, decision, "tokens")
        return estimate

    async def charge_tokens(self, principal: Principal, raw: Mapping[str, Any]) -> int:
        """Take a background job's estimated tokens from the key's bucket now (429 if empty); the amount."""
        return await self._take_tokens(RequestAccess(principal), raw)

    async def refund_tokens(self, principal: Principal, tokens: int) -> None:
        """Give tokens back to the key's bucket (negative: take more, e.g. a job that used more)."""
        _, tpm = self.limits(principal)
        if tpm and tokens:
            try:
                await self.limiter.adjust(principal.name, "tokens", tpm, -tokens)
            except Exception:
                logger.exception("could not reconcile the token bucket of key '%s'", principal.name)

    async def _settle(self, ra: RequestAccess, reserved: int, *, failed: bool) -> None:
        """Replace the estimate by what the engine reported (or give it back if nothing ran)."""
        if not reserved:
            return
        _, tpm = self.limits(ra.principal)
        if not tpm:
            return
        if ra.usage_reported:
            delta = ra.tokens_used - reserved
        elif failed:
            delta = -reserved
        else:
            return  # e.g. a stream cut short before its usage arrived: keep the estimate
        if delta:
            try:
                await self.limiter.adjust(ra.principal.name, "tokens", tpm, delta)
            except Exception:  # the answer is already on its way; never fail it for bookkeeping
                logger.exception("could not reconcile the token bucket of key '%s'", ra.principal.name)


class ClientGone(APIError):
    """The client disconnected before the answer was ready (nginx's 499); nobody reads this."""

    status_code = 499
    error_type = "invalid_request_error"


async def _client_gone(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _unless_client_leaves(
    call: Callable[[], Awaitable[GenerationResult]], receive: Receive
) -> GenerationResult:
    """Run `call`, cancelling it when the client disconnects first."""
    work = asyncio.ensure_future(call())
    watch = asyncio.ensure_future(_client_gone(receive))
    try:
        await asyncio.wait({work, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
        if not work.done():
            work.cancel()
            await asyncio.wait({work})  # let it close its engine request before going on
    if work.cancelled():
        raise ClientGone("the client closed the connection before the answer was ready", code="client_gone")
    return work.result()


def _sse_error(err: APIError) -> bytes:
    return f"data: {json.dumps(err.envelope())}\n\n".encode()
