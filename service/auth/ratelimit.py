"""Per-key token buckets (requests/min and tokens/min), in this process or shared through Redis.

A bucket holds up to `limit` units and refills at `limit / 60` units per second. `take` is
all-or-nothing across the buckets it names (a request is admitted only if every bucket has room);
`adjust` moves a bucket by the difference between a request's estimate and its real usage, and may
leave it below zero (the next requests then wait for the overrun to refill).

Both back-ends run the same arithmetic; the Redis one runs it in one Lua script (atomic across
gateway replicas, clock taken from the Redis server so replicas' clocks do not matter).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Protocol

logger = logging.getLogger("ragserve.auth")

KINDS = ("requests", "tokens")


@dataclass(frozen=True)
class BucketState:
    limit: int
    remaining: int  # whole units left after this operation (never below 0)
    reset_s: float  # until the bucket is full again
    wait_s: float  # until this request's cost would fit (0 when admitted)


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    buckets: dict[str, BucketState]  # "requests" and/or "tokens"; a kind without a limit is absent

    @property
    def retry_after_s(self) -> float:
        return max((b.wait_s for b in self.buckets.values()), default=0.0)

    @property
    def exceeded(self) -> list[str]:
        return [k for k, b in self.buckets.items() if b.wait_s > 0]


def format_reset(seconds: float) -> str:
    """OpenAI's `x-ratelimit-reset-*` format: `20ms`, `1.5s`, `6m0s`."""
    if seconds < 1:
        return f"{max(0, math.ceil(seconds * 1000))}ms"
    if seconds < 60:
        return f"{round(seconds, 3):g}s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{round(rest):d}s"


def ratelimit_headers(buckets: dict[str, BucketState]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for kind, b in buckets.items():
        headers[f"x-ratelimit-limit-{kind}"] = str(b.limit)
        headers[f"x-ratelimit-remaining-{kind}"] = str(b.remaining)
        headers[f"x-ratelimit-reset-{kind}"] = format_reset(b.reset_s)
    return headers


def retry_headers(seconds: float) -> dict[str, str]:
    """`Retry-After` in whole seconds (at least 1) and OpenAI's `retry-after-ms`, which its SDKs prefer."""
    return {
        "Retry-After": str(max(1, math.ceil(seconds))),
        "retry-after-ms": str(max(1, math.ceil(seconds * 1000))),
    }


class RateLimiter(Protocol):
    async def take(self, key: str, costs: dict[str, tuple[int, int]]) -> RateDecision:
        """Take `cost` from each named bucket `{kind: (limit, cost)}` if all have room."""
        ...

    async def adjust(self, key: str, kind: str, limit: int, delta: int) -> None:
        """Take `delta` more (or give back, when negative) without checking."""
        ...

    async def aclose(self) -> None: ...


# -- in process ---------------------------------------------------------------------------------


class LocalRateLimiter:
    """Buckets in a dict; the single-machine default. Idle full buckets are dropped now and then."""

    def __init__(self, *, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}  # (key, kind) -> (level, ts)
        self._ops = 0

    def _level(self, key: str, kind: str, limit: int, now: float) -> float:
        level, ts = self._buckets.get((key, kind), (float(limit), now))
        return min(float(limit), level + max(0.0, now - ts) * limit / 60.0)

    async def take(self, key: str, costs: dict[str, tuple[int, int]]) -> RateDecision:
        now = self._clock()
        levels = {kind: self._level(key, kind, limit, now) for kind, (limit, _) in costs.items()}
        allowed = all(levels[k] >= cost for k, (_, cost) in costs.items() if cost > 0)
        out: dict[str, BucketState] = {}
        for kind, (limit, cost) in costs.items():
            rate = limit / 60.0
            level = levels[kind]
            wait = 0.0
            if allowed:
                level -= cost
            elif cost > level:
                wait = (cost - level) / rate
            self._buckets[(key, kind)] = (level, now)
            out[kind] = BucketState(limit, max(0, math.floor(level)), (limit - level) / rate, wait)
        self._gc(now)
        return RateDecision(allowed, out)

    async def adjust(self, key: str, kind: str, limit: int, delta: int) -> None:
        now = self._clock()
        level = self._level(key, kind, limit, now) - delta
        self._buckets[(key, kind)] = (max(-float(limit), min(float(limit), level)), now)

    def _gc(self, now: float) -> None:
        self._ops += 1
        if self._ops % 1000:
            return
        for k, (level, ts) in list(self._buckets.items()):
            if now - ts > 120 and level >= 0:  # refilled long ago (any limit refills within 60 s)
                del self._buckets[k]

    async def aclose(self) -> None:
        return None


# -- Redis --------------------------------------------------------------------------------------

# KEYS[i]: one hash per bucket {level, ts}. ARGV[1]: "take" | "adjust"; then (limit, cost) per key.
# Returns {allowed, then per bucket: remaining, reset_ms, wait_ms}.
_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local mode = ARGV[1]
local n = #KEYS
local limits, costs, levels = {}, {}, {}
local allowed = 1
for i = 1, n do
  local limit = tonumber(ARGV[2 * i])
  local cost = tonumber(ARGV[2 * i + 1])
  local v = redis.call('HMGET', KEYS[i], 'level', 'ts')
  local level = tonumber(v[1]) or limit
  local ts = tonumber(v[2]) or now
  local elapsed = now - ts
  if elapsed < 0 then elapsed = 0 end
  level = math.min(limit, level + elapsed * limit / 60000.0)
  limits[i], costs[i], levels[i] = limit, cost, level
  if mode == 'take' and cost > 0 and level < cost then allowed = 0 end
end
local out = {allowed}
for i = 1, n do
  local limit, cost, level = limits[i], costs[i], levels[i]
  local rate = limit / 60000.0
  local wait = 0
  if mode == 'adjust' then
    level = math.max(-limit, math.min(limit, level - cost))
  elseif allowed == 1 then
    level = level - cost
  elseif cost > level then
    wait = math.ceil((cost - level) / rate)
  end
  local reset = math.ceil((limit - level) / rate)
  redis.call('HSET', KEYS[i], 'level', tostring(level), 'ts', now)
  redis.call('PEXPIRE', KEYS[i], reset + 1000)
  local remaining = math.floor(level)
  if remaining < 0 then remaining = 0 end
  table.insert(out, remaining)
  table.insert(out, reset)
  table.insert(out, wait)
end
return out
"""


class RedisRateLimiter:
    """Buckets in Redis, shared by every gateway replica that names the same server and prefix.

    When Redis cannot be reached the request is let through and the failure logged (at most once
    every 30 s): an outage of the limiter should not become an outage of the service.
    """

    def __init__(self, url: str, *, prefix: str = "ragserve:rl:", timeout_s: float = 0.5) -> None:
        try:
            import redis.asyncio as aioredis
            from redis.exceptions import RedisError
        except ImportError as exc:  # pragma: no cover - redis is a base dependency
            raise RuntimeError(
                "auth.redis_url is set but the 'redis' package is missing: pip install redis"
            ) from exc
        self._errors: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)
        self.url = url
        self.prefix = prefix
        self._client = aioredis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, decode_responses=False
        )
        self._script = self._client.register_script(_LUA)
        self._last_error_log = 0.0
        self.errors = 0

    def _key(self, key: str, kind: str) -> str:
        return f"{self.prefix}{{{key}}}:{kind}"  # {key}: one hash slot per API key on a Redis cluster

    async def _run(self, mode: str, key: str, costs: dict[str, tuple[int, int]]) -> list[int] | None:
        keys = [self._key(key, kind) for kind in costs]
        args: list[Any] = [mode]
        for limit, cost in costs.values():
            args += [limit, cost]
        try:
            result = await self._script(keys=keys, args=args)
        except self._errors as exc:
            self.errors += 1
            now = time.monotonic()
            if now - self._last_error_log > 30:
                self._last_error_log = now
                logger.error("rate limiter: Redis at %s failed (%s: %s); letting requests through",
                             self.url, type(exc).__name__, exc)  # fmt: skip
            return None
        return [int(x) for x in result]

    async def take(self, key: str, costs: dict[str, tuple[int, int]]) -> RateDecision:
        result = await self._run("take", key, costs)
        if result is None:
            return RateDecision(True, {})
        out: dict[str, BucketState] = {}
        for i, (kind, (limit, _)) in enumerate(costs.items()):
            remaining, reset_ms, wait_ms = result[1 + 3 * i : 4 + 3 * i]
            out[kind] = BucketState(limit, remaining, reset_ms / 1000, wait_ms / 1000)
        return RateDecision(bool(result[0]), out)

    async def adjust(self, key: str, kind: str, limit: int, delta: int) -> None:
        await self._run("adjust", key, {kind: (limit, delta)})

    async def ping(self) -> None:
        await self._client.ping()

    async def aclose(self) -> None:
        await self._client.aclose()
