"""CORS for browser front ends: listed origins only, credentials off unless asked, 401s readable."""

from __future__ import annotations

import httpx

from tests.auth.conftest import OPS_KEY, GatewayFactory, base_keys, bearer

ORIGIN = "https://rca.example.com"
PREFLIGHT = {
    "Origin": ORIGIN,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization,content-type",
}


def test_cors_for_listed_origins(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(keys=base_keys(), cors={"allow_origins": [ORIGIN]})
    pre = httpx.options(gw.v1 + "/chat/completions", headers=PREFLIGHT)  # a preflight carries no key
    assert pre.status_code == 200
    assert pre.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in pre.headers["access-control-allow-methods"]
    assert "authorization" in pre.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in pre.headers
    bad = httpx.options(gw.v1 + "/chat/completions", headers={**PREFLIGHT, "Origin": "https://evil.example"})
    assert bad.status_code == 400 and "access-control-allow-origin" not in bad.headers
    # The browser can read a 401's body, and the rate-limit headers of an answer.
    denied = httpx.get(gw.v1 + "/models", headers={"Origin": ORIGIN})
    assert denied.status_code == 401 and denied.headers["access-control-allow-origin"] == ORIGIN
    ok = httpx.get(gw.v1 + "/models", headers={"Origin": ORIGIN, **bearer(OPS_KEY)})
    assert ok.status_code == 200
    assert "x-ratelimit-remaining-requests" in ok.headers["access-control-expose-headers"]


def test_credentials_only_when_enabled(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(keys=base_keys(), cors={"allow_origins": [ORIGIN], "allow_credentials": True})
    pre = httpx.options(gw.v1 + "/models", headers={**PREFLIGHT, "Access-Control-Request-Method": "GET"})
    assert pre.headers["access-control-allow-credentials"] == "true"


def test_no_cors_headers_unless_configured(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(keys=base_keys())
    r = httpx.get(gw.v1 + "/models", headers={"Origin": ORIGIN, **bearer(OPS_KEY)})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
