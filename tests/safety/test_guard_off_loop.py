"""CPU-heavy guard work runs off the event loop: one large request cannot stall the others (issue 19, #9)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx

from tests.safety.conftest import Gateway
from tests.utils.fake_vllm import MODEL

# About 1.2 MB of benign operations text: the input guard takes seconds of CPU over it here.
BIG = "Check the pod's memory limit and restart the deployment if the node is under pressure. " * 14_000


def worst_probe_while(gw: Gateway, work: Callable[[], httpx.Response]) -> tuple[float, float, httpx.Response]:
    """(slowest /healthz answer while `work` runs, how long `work` took, its response)."""
    slowest = 0.0
    done = threading.Event()

    def probe() -> None:
        nonlocal slowest
        while not done.is_set():
            t = time.monotonic()
            httpx.get(gw.url + "/healthz", timeout=60)
            slowest = max(slowest, time.monotonic() - t)
            time.sleep(0.02)

    prober = threading.Thread(target=probe)
    prober.start()
    time.sleep(0.2)
    t0 = time.monotonic()
    try:
        r = work()
    finally:
        took = time.monotonic() - t0
        done.set()
        prober.join()
    return slowest, took, r


def test_a_large_message_does_not_stall_other_requests(safety_gateway: Gateway) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": BIG}], "max_tokens": 8}
    slowest, took, r = worst_probe_while(
        safety_gateway, lambda: httpx.post(safety_gateway.v1 + "/chat/completions", json=body, timeout=120)
    )
    # Past the input guard, the (fake) engine refuses a prompt beyond its context: either way the
    # guard had its real work to do.
    assert r.status_code == 200 or r.json()["error"]["code"] == "context_length_exceeded", r.text[:300]
    print(f"request {took:.2f} s, slowest /healthz {slowest:.3f} s")
    assert took > 1.0
    # On the event loop, /healthz waited for the whole scan (~ the request's time).
    assert slowest < max(0.5, took / 2), (slowest, took)  # on the loop: ~all of it; off: a slice


def test_a_large_completion_prompt_does_not_stall_other_requests(safety_gateway: Gateway) -> None:
    safety_gateway.fake.script("Done.")
    body = {"model": MODEL, "prompt": BIG, "max_tokens": 8}
    slowest, took, r = worst_probe_while(
        safety_gateway, lambda: httpx.post(safety_gateway.v1 + "/completions", json=body, timeout=120)
    )
    assert r.status_code == 200, r.text[:300]
    print(f"request {took:.2f} s, slowest /healthz {slowest:.3f} s")
    assert took > 1.0
    assert slowest < max(0.5, took / 2), (slowest, took)  # on the loop: ~all of it; off: a slice
