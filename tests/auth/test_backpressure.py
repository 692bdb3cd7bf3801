"""Backpressure: a bounded admission queue (503), the per-request deadline (504), disconnects cancel."""

from __future__ import annotations

import asyncio
import json
import time

import httpx

from tests.auth.conftest import OPS_KEY, GatewayFactory, base_keys, bearer, hello, sha

FLOOD_KEY = "flood-key-0123456789-Qz7Wp2Rx4Lm9"


def wait_for(predicate: object, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


async def fire(url: str, key: str, n: int, *, max_tokens: int = 8) -> list[tuple[int, float, httpx.Headers]]:
    """n chat requests at once; (status, seconds, headers) each."""
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=n)) as client:

        async def one() -> tuple[int, float, httpx.Headers]:
            t0 = time.perf_counter()
            r = await client.post(url + "/v1/chat/completions", json=hello(max_tokens), headers=bearer(key))
            return r.status_code, time.perf_counter() - t0, r.headers

        return list(await asyncio.gather(*(one() for _ in range(n))))


def test_a_flood_over_capacity_gets_only_fast_503s_and_429s(start_gateway: GatewayFactory) -> None:
    keys = [*base_keys(), {"name": "flood", "key_sha256": sha(FLOOD_KEY), "role": "user",
                           "collections": ["runbooks"], "requests_per_minute": 30}]  # fmt: skip
    gw = start_gateway(keys=keys, admission={"max_concurrent": 2, "max_queued": 4, "max_wait_s": 5})
    gw.fake.response_delay_s = 0.5
    results = asyncio.run(fire(gw.url, FLOOD_KEY, 40))
    by_status: dict[int, list[tuple[int, float, httpx.Headers]]] = {}
    for res in results:
        by_status.setdefault(res[0], []).append(res)
    assert set(by_status) <= {200, 429, 503}, {s: len(v) for s, v in by_status.items()}
    ok, limited, full = by_status.get(200, []), by_status.get(429, []), by_status.get(503, [])
    assert len(limited) == 10  # 30 a minute: the first 30 pass the bucket
    assert 2 <= len(ok) <= 8 and len(full) >= 22  # 2 running + 4 queued, give or take one handover
    assert gw.fake.peak_in_flight <= 2  # the engine never saw more than the admitted concurrency
    rejections = sorted(t for _, t, _ in limited + full)
    # Refused at once: faster than a single engine answer (relative, so a stalled CI box cannot fake it).
    p99 = rejections[int(0.99 * (len(rejections) - 1))]
    assert p99 < min(t for _, t, _ in ok) and p99 < 2.0, (rejections, sorted(t for _, t, _ in ok))
    for _, _, headers in full:
        assert int(headers["retry-after"]) >= 1
    for _, _, headers in limited:
        assert int(headers["retry-after"]) >= 1
    assert gw.metric("ragserve_rejected_requests_total", status="503", reason="queue_full") == len(full)
    assert gw.metric("ragserve_admission_wait_seconds_count") == len(ok)
    assert wait_for(lambda: gw.metric("ragserve_admission_active_requests") == 0)
    assert gw.metric("ragserve_admission_queue_depth") == 0
    # Capacity is back: the next request is served normally.
    assert gw.chat(OPS_KEY, hello()).status_code == 200


def test_waiting_too_long_for_a_slot_is_a_503(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(keys=base_keys(), admission={"max_concurrent": 1, "max_queued": 10, "max_wait_s": 0.3})
    gw.fake.response_delay_s = 1.0
    results = asyncio.run(fire(gw.url, OPS_KEY, 3))
    statuses = sorted(s for s, _, _ in results)
    assert statuses == [200, 503, 503]
    for status, seconds, headers in results:
        if status == 503:
            assert 0.25 <= seconds < 0.3 + 1.5  # max_wait_s, plus slack for a busy 2-core machine
            assert int(headers["retry-after"]) >= 1
    assert gw.metric("ragserve_rejected_requests_total", status="503", reason="queue_timeout") == 2


def test_the_per_request_timeout_is_a_504_with_a_clear_message(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(keys=base_keys(), admission={"request_timeout_s": 0.5})
    gw.fake.response_delay_s = 3.0
    t0 = time.perf_counter()
    r = gw.chat(OPS_KEY, hello())
    assert time.perf_counter() - t0 < 2.0
    assert r.status_code == 504, r.text
    err = r.json()["error"]
    assert err["code"] == "request_timeout"
    assert "did not finish within 0.5 s" in err["message"]
    assert gw.metric("ragserve_rejected_requests_total", status="504", reason="timeout") == 1
    assert wait_for(lambda: gw.metric("ragserve_admission_active_requests") == 0)


def test_a_stream_past_its_deadline_ends_with_an_error_event(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(keys=base_keys(), admission={"request_timeout_s": 0.6})
    gw.fake.token_delay_s = 0.2
    gw.fake.script(" ".join(["tok"] * 20))
    r = gw.chat(OPS_KEY, hello(64, stream=True))
    assert r.status_code == 200
    events = [line[6:] for line in r.text.split("\n\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    err = json.loads(events[-2])["error"]
    assert err["code"] == "request_timeout"
    assert wait_for(lambda: gw.fake.cancelled_streams == 1), "the upstream stream was not closed"


def test_client_disconnect_mid_stream_cancels_the_engine_request(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(keys=base_keys(), admission={"max_concurrent": 1})
    gw.fake.token_delay_s = 0.1
    gw.fake.script(" ".join(["tok"] * 100))  # ~10 s if nobody stopped it
    with (
        httpx.Client(timeout=10) as client,
        client.stream(
            "POST", gw.v1 + "/chat/completions", json=hello(200, stream=True), headers=bearer(OPS_KEY)
        ) as r,
    ):
        assert r.status_code == 200
        received = 0
        for chunk in r.iter_bytes():
            received += chunk.count(b"data: ")
            if received >= 3:
                break  # leave mid-stream; closing the response drops the connection
    t0 = time.perf_counter()
    assert wait_for(lambda: gw.fake.cancelled_streams == 1, 3.0), "the engine kept generating"
    assert time.perf_counter() - t0 < 1.0
    assert gw.fake.in_flight == 0
    # The slot came back: with one slot, the next request is admitted at once.
    assert wait_for(lambda: gw.metric("ragserve_admission_active_requests") == 0)
    gw.fake.token_delay_s = 0.0
    assert gw.chat(OPS_KEY, hello()).status_code == 200


def test_client_disconnect_before_a_whole_answer_cancels_the_engine_request(
    start_gateway: GatewayFactory,
) -> None:
    gw = start_gateway(keys=base_keys(), admission={"max_concurrent": 1})
    gw.fake.response_delay_s = 5.0
    try:
        gw.chat(OPS_KEY, hello(), timeout=0.5)  # the client gives up and closes the connection
    except httpx.TimeoutException:
        pass
    else:
        raise AssertionError("the request should not have finished")
    assert wait_for(lambda: gw.fake.cancelled_requests == 1, 2.0), "the engine kept working"
    assert wait_for(lambda: gw.metric("ragserve_admission_active_requests") == 0)
    gw.fake.response_delay_s = 0.0
    assert gw.chat(OPS_KEY, hello()).status_code == 200


async def _flood(
    url: str, key: str, rate_per_s: float, seconds: float
) -> list[tuple[int, float, httpx.Headers]]:
    """Open-loop arrivals at `rate_per_s` for `seconds` (each request on its own), like a real flood."""
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=500)) as client:

        async def one() -> tuple[int, float, httpx.Headers]:
            t0 = time.perf_counter()
            r = await client.post(url + "/v1/chat/completions", json=hello(8), headers=bearer(key))
            return r.status_code, time.perf_counter() - t0, r.headers

        tasks = []
        for _ in range(int(rate_per_s * seconds)):
            tasks.append(asyncio.create_task(one()))
            await asyncio.sleep(1 / rate_per_s)
        return list(await asyncio.gather(*tasks))


def test_a_4x_flood_is_shed_early_with_fast_rejections(start_gateway: GatewayFactory) -> None:
    # issue 19, finding 10: with a deep queue, rejected requests used to wait max_wait_s for their 503.
    gw = start_gateway(keys=base_keys(), admission={"max_concurrent": 2, "max_queued": 200, "max_wait_s": 3})
    gw.fake.response_delay_s = 0.5  # capacity: 2 slots / 0.5 s = 4 requests a second
    results = asyncio.run(_flood(gw.url, OPS_KEY, rate_per_s=16, seconds=5))
    ok = [t for s, t, _ in results if s == 200]
    refused = sorted(t for s, t, _ in results if s == 503)
    assert {s for s, _, _ in results} <= {200, 503}
    assert ok and len(refused) >= len(results) // 2, (len(ok), len(refused))
    p99 = refused[int(0.99 * (len(refused) - 1))]
    assert p99 < 1.0, refused[-10:]
    for s, _, headers in results:
        if s == 503:
            assert int(headers["retry-after"]) >= 1
    assert max(ok) < 3 + 1.5  # admitted ones were served within the wait they were promised (+ slack)
