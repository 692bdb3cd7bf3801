"""A bounded admission queue in front of the engine: N requests run, M wait (each at most T seconds).

Beyond that the gateway answers 503 at once with a `Retry-After` estimated from recent service
times, instead of letting work pile up where no one can see it (vLLM's own queue is unbounded).
It also sheds early: a newcomer whose expected wait (the queue ahead drained at the recent pace)
exceeds the longest it may wait is refused at once rather than after waiting in vain, so under a
flood refusals come back in milliseconds, not after `max_wait_s`.
Waiters are served first come, first served; a slot freed is handed straight to the next waiter.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import Callable

from service.errors import APIError


class Overloaded(APIError):
    """503: the gateway is at capacity; the client should retry after `Retry-After` seconds."""

    status_code = 503
    error_type = "service_unavailable"


class AdmissionQueue:
    def __init__(
        self,
        *,
        max_concurrent: int,
        max_queued: int,
        max_wait_s: float,
        on_depth: Callable[[int, int], None] | None = None,
    ) -> None:
        self.max_concurrent = max_concurrent
        self.max_queued = max_queued
        self.max_wait_s = max_wait_s
        self.active = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._on_depth = on_depth
        self._service_s = 1.0  # moving average of how long a slot is held; seeds Retry-After
        self._measured = False  # no early shedding on the seed alone: only on measured service times

    @property
    def queued(self) -> int:
        return len(self._waiters)

    @property
    def full(self) -> bool:
        """No slot and no room to wait: a newcomer would be refused."""
        return self.active >= self.max_concurrent and len(self._waiters) >= self.max_queued

    def overloaded(self) -> Overloaded:
        return Overloaded(
            f"the server is at capacity ({self.active} requests running, {len(self._waiters)} "
            "waiting); retry after the time in Retry-After",
            code="queue_full",
            headers={"Retry-After": str(self.retry_after_s())},
        )

    def _changed(self) -> None:
        if self._on_depth is not None:
            self._on_depth(self.active, len(self._waiters))

    def expected_wait_s(self) -> float | None:
        """How long a newcomer would wait for a slot: the waiters ahead, served at the recent pace
        (None before any request finished: nothing measured yet)."""
        if not self._measured:
            return None
        return (len(self._waiters) + 1) / max(1, self.max_concurrent) * self._service_s

    def retry_after_s(self) -> int:
        """Roughly when a slot frees up for a newcomer: the queue ahead drained at the recent pace."""
        rounds = (len(self._waiters) + 1) / max(1, self.max_concurrent)
        return max(1, min(60, math.ceil(rounds * self._service_s)))

    async def acquire(self, *, max_wait_s: float | None = None) -> float:
        """Wait for a slot; return the seconds waited. Raises `Overloaded` when full, when the expected
        wait is longer than allowed (`max_wait_s`, capped by the setting), or after waiting that long."""
        if self.active < self.max_concurrent and not self._waiters:
            self.active += 1
            self._changed()
            return 0.0
        limit = self.max_wait_s if max_wait_s is None else max(0.0, min(self.max_wait_s, max_wait_s))
        if len(self._waiters) >= self.max_queued:
            raise self.overloaded()
        expected = self.expected_wait_s()
        if expected is not None and expected > limit:
            raise Overloaded(
                f"the server is at capacity: a free slot is about {expected:.1f} s away, longer than this "
                f"request may wait ({limit:g} s); retry after the time in Retry-After",
                code="queue_full",
                headers={"Retry-After": str(self.retry_after_s())},
            )
        t0 = time.monotonic()
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        self._changed()
        try:
            async with asyncio.timeout(limit):
                await fut
        except BaseException as exc:
            if fut.done() and not fut.cancelled():
                self.release(held_s=None)  # a slot was handed over as we gave up: pass it on
            else:
                fut.cancel()
                self._discard(fut)
            self._changed()
            if isinstance(exc, TimeoutError):
                raise Overloaded(
                    f"the request waited {limit:g} s for a free slot and gave up; the server "
                    "is overloaded, retry after the time in Retry-After",
                    code="queue_timeout",
                    headers={"Retry-After": str(self.retry_after_s())},
                ) from None
            raise
        return time.monotonic() - t0

    def _discard(self, fut: asyncio.Future[None]) -> None:
        with contextlib.suppress(ValueError):
            self._waiters.remove(fut)

    def release(self, *, held_s: float | None) -> None:
        """Free a slot (handing it to the oldest live waiter); `held_s` feeds the Retry-After estimate."""
        if held_s is not None:
            self._service_s = 0.8 * self._service_s + 0.2 * held_s if self._measured else held_s
            self._measured = True
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)  # the slot moves to this waiter; `active` is unchanged
                self._changed()
                return
        self.active -= 1
        self._changed()
