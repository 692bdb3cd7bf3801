"""Per-key token buckets: 429 with Retry-After and OpenAI's x-ratelimit-* headers, in process and in Redis."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from service.auth.ratelimit import LocalRateLimiter, RedisRateLimiter, format_reset
from tests.auth.conftest import OPS_KEY, GatewayFactory, base_keys, bearer, hello, sha
from tests.utils.fake_vllm import MODEL
from tests.utils.servers import free_port

LIMITED_KEY = "limited-key-0123456789-Qz7Wp2Rx4Lm9"


def keys_with(**limits: Any) -> list[dict[str, Any]]:
    return [
        *base_keys(),
        {
            "name": "limited",
            "key_sha256": sha(LIMITED_KEY),
            "role": "user",
            "collections": ["runbooks"],
            **limits,
        },
    ]


def models(url: str, key: str = LIMITED_KEY) -> httpx.Response:
    return httpx.get(url + "/v1/models", headers=bearer(key), timeout=10)


def test_burst_over_the_request_limit_gets_429_with_a_correct_retry_after(
    start_gateway: GatewayFactory,
) -> None:
    gw = start_gateway(keys=keys_with(requests_per_minute=3))
    ok = [models(gw.url) for _ in range(3)]
    assert [r.status_code for r in ok] == [200, 200, 200]
    assert [r.headers["x-ratelimit-remaining-requests"] for r in ok] == ["2", "1", "0"]
    assert all(r.headers["x-ratelimit-limit-requests"] == "3" for r in ok)
    r = models(gw.url)
    assert r.status_code == 429, r.text
    err = r.json()["error"]
    assert err["type"] == "rate_limit_error" and err["code"] == "rate_limit_exceeded"
    assert "requests per minute" in err["message"] and "'limited'" in err["message"]
    # 3 a minute refill one every 20 s: the bucket is empty, so the next one fits in ~20 s.
    assert r.headers["retry-after"] in ("19", "20")
    assert 19_000 <= int(r.headers["retry-after-ms"]) <= 20_000
    assert r.headers["x-ratelimit-remaining-requests"] == "0"
    assert r.headers["x-ratelimit-reset-requests"].endswith("s")
    # Generation is refused the same way, before it reaches the engine; other keys are unaffected.
    assert gw.chat(LIMITED_KEY, hello()).status_code == 429
    assert gw.fake.requests == []
    assert models(gw.url, OPS_KEY).status_code == 200
    assert "x-ratelimit-limit-requests" not in models(gw.url, OPS_KEY).headers  # ops has no limit
    assert gw.metric("ragserve_rate_limited_requests_total", key="limited", limit="requests") == 2
    assert gw.metric("ragserve_rejected_requests_total", status="429", reason="requests") == 2


def test_token_limit_counts_max_tokens_then_reconciles_with_real_usage(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(keys=keys_with(tokens_per_minute=1000))
    # Estimate 1 + 600 tokens; the engine reports 1 + 2: the bucket gets the difference back.
    gw.fake.script("Hello there.")
    r = gw.chat(LIMITED_KEY, hello(600))
    assert r.status_code == 200 and r.headers["x-ratelimit-limit-tokens"] == "1000"
    assert int(r.headers["x-ratelimit-remaining-tokens"]) == 399
    gw.fake.script("Hello there.")
    r = gw.chat(LIMITED_KEY, hello(600))
    assert r.status_code == 200, "without reconciliation only 399 tokens would be left"
    assert 395 <= int(r.headers["x-ratelimit-remaining-tokens"]) <= 400

    # A stream reconciles too, even when the client did not ask for usage.
    gw.fake.script("Short.")
    s = gw.chat(LIMITED_KEY, hello(600, stream=True))
    assert s.status_code == 200 and '"usage"' not in s.text

    # An answer longer than estimated (the engine ignored nothing, the estimate was low) costs its real size.
    gw.fake.script(" ".join(["word"] * 800))
    assert gw.chat(LIMITED_KEY, hello(10)).status_code == 200
    r = gw.chat(LIMITED_KEY, hello(300))
    assert r.status_code == 429, r.text
    assert "tokens per minute" in r.json()["error"]["message"]
    assert int(r.headers["x-ratelimit-remaining-tokens"]) < 301
    retry = int(r.headers["retry-after"])
    assert 1 <= retry <= 60
    assert gw.metric("ragserve_rate_limited_requests_total", key="limited", limit="tokens") == 1


def test_a_request_larger_than_the_token_limit_is_refused_outright(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(keys=keys_with(tokens_per_minute=500))
    r = gw.chat(LIMITED_KEY, hello(2000))
    assert r.status_code == 429
    assert "request too large" in r.json()["error"]["message"]
    assert r.json()["error"]["param"] == "max_tokens"
    assert gw.fake.requests == []


def test_default_limits_apply_to_keys_without_their_own(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(keys=keys_with(requests_per_minute=100), auth={"default_requests_per_minute": 2})
    assert [models(gw.url, OPS_KEY).status_code for _ in range(3)] == [200, 200, 429]
    assert models(gw.url).headers["x-ratelimit-limit-requests"] == "100"


def test_openai_sdk_sees_the_headers(start_gateway: GatewayFactory) -> None:
    import openai

    gw = start_gateway(keys=keys_with(requests_per_minute=1))
    client = openai.OpenAI(base_url=gw.v1, api_key=LIMITED_KEY, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=4
    )
    assert raw.headers["x-ratelimit-remaining-requests"] == "0"
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert info.value.response.headers["retry-after"] in ("59", "60")


# -- Redis: shared across gateway replicas ------------------------------------------------------


def test_limits_hold_across_two_gateways_sharing_redis(start_gateway: GatewayFactory, redis_url: str) -> None:
    auth = {"redis_url": redis_url, "redis_key_prefix": f"test:{uuid.uuid4().hex}:"}
    a = start_gateway(keys=keys_with(requests_per_minute=4), auth=auth)
    b = start_gateway(keys=keys_with(requests_per_minute=4), auth=auth)
    statuses = [models(gw.url).status_code for gw in (a, b, a, b)]
    assert statuses == [200, 200, 200, 200]
    assert models(b.url).headers["x-ratelimit-remaining-requests"] == "0"
    for gw in (a, b):
        r = models(gw.url)
        assert r.status_code == 429 and r.headers["retry-after"] in ("14", "15")


def test_separate_gateways_without_redis_do_not_share(start_gateway: GatewayFactory) -> None:
    a = start_gateway(keys=keys_with(requests_per_minute=2))
    b = start_gateway(keys=keys_with(requests_per_minute=2))
    assert [models(gw.url).status_code for gw in (a, a, b, b)] == [200, 200, 200, 200]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_the_redis_script_and_the_local_buckets_agree(redis_url: str) -> None:
    redis = RedisRateLimiter(redis_url, prefix=f"test:{uuid.uuid4().hex}:")
    local = LocalRateLimiter(clock=FakeClock())
    try:
        for limiter in (redis, local):
            costs = {"requests": (3, 1), "tokens": (600, 200)}
            decisions = [await limiter.take("k", costs) for _ in range(4)]
            assert [d.allowed for d in decisions] == [True, True, True, False]
            assert [d.buckets["requests"].remaining for d in decisions[:3]] == [2, 1, 0]
            assert [d.buckets["tokens"].remaining for d in decisions[:3]] == [400, 200, 0]
            last = decisions[-1]
            assert sorted(last.exceeded) == ["requests", "tokens"]
            assert 19.5 <= last.retry_after_s <= 20.0  # 1 request at 3/min; 200 tokens at 600/min
            # Nothing was taken by the refused request: all-or-nothing.
            assert last.buckets["tokens"].remaining in (0, 1)
            # Real usage was 50, not 200: give 150 back, and a 150-token request fits again.
            await limiter.adjust("k", "tokens", 600, -150)
            d = await limiter.take("k", {"tokens": (600, 150)})
            assert d.allowed and d.buckets["tokens"].remaining in (0, 1)
            # Overrun: the bucket goes below zero and the wait grows with the debt.
            await limiter.adjust("k", "tokens", 600, 300)
            d = await limiter.take("k", {"tokens": (600, 10)})
            assert not d.allowed and 30.0 <= d.retry_after_s <= 31.5
    finally:
        await redis.aclose()


async def test_an_unreachable_redis_lets_requests_through() -> None:
    limiter = RedisRateLimiter(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.2)
    try:
        d = await limiter.take("k", {"requests": (1, 1)})
        assert d.allowed and d.buckets == {}
        assert limiter.errors == 1
    finally:
        await limiter.aclose()


def test_reset_header_format() -> None:
    assert format_reset(0.02) == "20ms"
    assert format_reset(1.5) == "1.5s"
    assert format_reset(20) == "20s"
    assert format_reset(360) == "6m0s"
    assert format_reset(61.4) == "1m1s"
