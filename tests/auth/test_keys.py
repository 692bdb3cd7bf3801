"""API keys: 401s in the OpenAI envelope, both header styles, public probes, reload without restart."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

import httpx
import openai
import pytest

from service.auth.bind import is_loopback, refuse_insecure_bind
from service.auth.keys import KeyFileError, parse_keys
from tests.auth.conftest import ADMIN_KEY, OPS_KEY, GatewayFactory, base_keys, bearer, hello, sha
from tests.utils.fake_vllm import MODEL
from tests.utils.gateway import METRICS_KEY


def test_requests_without_a_valid_key_get_401_envelopes(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(keys=base_keys())
    for headers, fragment in (
        ({}, "missing API key"),
        (bearer("not-a-key-at-all"), "incorrect API key"),
        ({"Authorization": f"Basic {OPS_KEY}"}, "Bearer <API key>"),
        ({"api-key": "wrong-wrong-wrong"}, "incorrect API key"),
    ):
        for method, path in (("GET", "/v1/models"), ("POST", "/v1/chat/completions"), ("GET", "/docs")):
            r = httpx.request(method, gw.url + path, headers=headers, json=hello(), timeout=10)
            assert r.status_code == 401, (headers, path, r.text)
            err = r.json()["error"]
            assert err["type"] == "authentication_error"
            assert err["code"] == "invalid_api_key"
            assert fragment in err["message"]
            assert r.headers["www-authenticate"] == "Bearer"
            assert "x-request-id" in r.headers  # still inside the request context
    assert gw.fake.requests == []  # nothing reached the engine
    assert gw.metric("ragserve_rejected_requests_total", status="401", reason="missing_api_key") == 3
    assert gw.metric("ragserve_rejected_requests_total", status="401", reason="invalid_api_key") == 9


def test_probes_are_public_and_say_only_ready_metrics_need_the_permission(
    start_gateway: GatewayFactory,
) -> None:
    # issue 19, finding 12: /metrics names every collection and key; probes say ready or not, no more.
    gw = start_gateway(keys=base_keys())
    assert httpx.get(gw.url + "/healthz", timeout=10).json() == {"status": "ok"}
    assert httpx.get(gw.url + "/readyz", timeout=10).json() == {"status": "ready"}
    r = httpx.get(gw.url + "/metrics", timeout=10)
    assert r.status_code == 401 and "finance" not in r.text
    r = httpx.get(gw.url + "/metrics", headers=bearer(OPS_KEY), timeout=10)
    assert r.status_code == 403 and r.json()["error"]["type"] == "permission_error"
    r = httpx.get(gw.url + "/metrics", headers=bearer(METRICS_KEY), timeout=10)
    assert r.status_code == 200 and "ragserve_index_chunks" in r.text
    opened = start_gateway(keys=base_keys(), auth={"public_metrics": True})
    assert httpx.get(opened.url + "/metrics", timeout=10).status_code == 200


def test_weak_plain_keys_are_refused() -> None:  # issue 19, finding 17
    for weak in ("abcdefgh", "dev-only-key-change-me", "a" * 40, "ab" * 20):
        with pytest.raises(KeyFileError, match="random"):
            parse_keys(f"- {{name: a, key: {weak}, collections: [x]}}", source="keys.yaml")
    parse_keys(f"- {{name: a, key: {K1}, collections: [x]}}", source="keys.yaml")
    # A key for the scraper alone needs no collections.
    [(_, p)] = parse_keys(f"- {{name: prom, key: {K1}, permissions: [metrics]}}", source="keys.yaml")
    assert p.may("metrics") and not p.may("promql") and not p.can_read("x")


def test_failed_authentication_is_throttled_per_address(start_gateway: GatewayFactory) -> None:
    # issue 19, finding 17: a guesser gets failed_auth_per_minute tries, then 429s before any key is checked.
    gw = start_gateway(keys=base_keys(), auth={"failed_auth_per_minute": 5})
    codes = [
        httpx.get(gw.v1 + "/models", headers=bearer(f"guess-{i}"), timeout=10).status_code for i in range(8)
    ]
    assert codes[:5] == [401] * 5 and codes[5:] == [429] * 3, codes
    r = httpx.get(gw.v1 + "/models", headers=bearer(OPS_KEY), timeout=10)
    assert (
        r.status_code == 429 and r.json()["error"]["code"] == "too_many_auth_failures"
    )  # even the right key
    assert int(r.headers["retry-after"]) >= 1


def test_bearer_and_api_key_headers_and_the_openai_sdk(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(keys=base_keys())
    assert httpx.get(gw.v1 + "/models", headers=bearer(OPS_KEY)).status_code == 200
    assert httpx.get(gw.v1 + "/models", headers={"api-key": OPS_KEY}).status_code == 200
    client = openai.OpenAI(base_url=gw.v1, api_key=OPS_KEY, max_retries=0)
    gw.fake.script("Hello.")
    out = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert out.choices[0].message.content == "Hello."
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=gw.v1, api_key="sk-wrong", max_retries=0).models.list()
    assert gw.metric("ragserve_key_requests_total", key="ops") == 3


def test_without_a_keys_file_everything_is_open(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(keys=None)
    assert httpx.get(gw.v1 + "/models").status_code == 200
    assert httpx.get(gw.v1 + "/models", headers=bearer("anything")).status_code == 200
    assert gw.metric("ragserve_key_requests_total", key="anonymous") == 2


def test_key_file_reload_without_restart(
    start_gateway: GatewayFactory, caplog: pytest.LogCaptureFixture
) -> None:
    gw = start_gateway(keys=base_keys())
    new_key = "rotated-key-0123456789-Qz7Wp2Rx4Lm9"
    assert httpx.get(gw.v1 + "/models", headers=bearer(OPS_KEY)).status_code == 200
    caplog.set_level(logging.INFO, logger="ragserve.audit")
    rotated = [k for k in base_keys() if k["name"] != "ops"]
    rotated.append({"name": "ops", "key_sha256": sha(new_key), "role": "user", "collections": ["runbooks"]})
    gw.write_keys(rotated)
    assert httpx.get(gw.v1 + "/models", headers=bearer(OPS_KEY)).status_code == 401
    assert httpx.get(gw.v1 + "/models", headers=bearer(new_key)).status_code == 200
    assert any("api keys reloaded" in r.getMessage() for r in caplog.records if r.name == "ragserve.audit")
    assert gw.metric("ragserve_auth_key_reloads_total", outcome="reloaded") == 1

    # A broken edit is refused and the keys in force stay in force.
    assert gw.keys_file is not None
    gw.keys_file.write_text("- name: [unclosed\n", encoding="utf-8")
    os.utime(gw.keys_file, None)
    assert httpx.get(gw.v1 + "/models", headers=bearer(new_key)).status_code == 200
    assert httpx.get(gw.v1 + "/models", headers=bearer(ADMIN_KEY)).status_code == 200
    assert gw.metric("ragserve_auth_key_reloads_total", outcome="error") == 1
    assert gw.metric("ragserve_auth_keys") == len(base_keys())


def test_reload_is_checked_at_most_every_interval(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(keys=base_keys(), auth={"reload_check_s": 0.5})
    gw.write_keys([k for k in base_keys() if k["name"] != "ops"])
    time.sleep(0.6)
    assert httpx.get(gw.v1 + "/models", headers=bearer(OPS_KEY)).status_code == 401


K1 = "rs-3q9ZxT0vL8pWm2KdYc7BnR5hJ1fGa6Es"  # random-looking plain keys, as the keys file demands
K2 = "rs-8Hk2Lp5Vw9Qz1Xc4Nb7Mt3Gr6Js0Fd"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("name: x", "expected a list"),
        ("- {name: a, role: user, collections: [x]}", "exactly one of key_sha256"),
        (
            "- {name: a, key: " + K1 + ", key_sha256: " + sha("x") + ", collections: [x]}",
            "exactly one",
        ),
        ("- {name: a, key: " + K1 + ", role: root, collections: [x]}", "role"),
        ("- {name: a, key: " + K1 + ", collections: []}", "collections"),
        ("- {name: 'a b', key: " + K1 + ", collections: [x]}", "name"),
        (
            "- {name: a, key: " + K1 + ", collections: [x]}\n- {name: a, key: " + K2 + ", collections: [x]}",
            "twice",
        ),
        (
            "- {name: a, key: " + K1 + ", collections: [x]}\n- {name: b, key: " + K1 + ", collections: [x]}",
            "twice",
        ),
        ("- {name: a, key_sha256: xyz, collections: [x]}", "key_sha256"),
        (
            "- {name: a, key: " + K1 + ", collections: [x], requests_per_minute: 0}",
            "requests_per_minute",
        ),
    ],
)
def test_keys_file_mistakes_are_named(text: str, fragment: str) -> None:
    with pytest.raises(KeyFileError, match=r"keys\.yaml") as info:
        parse_keys(text, source="keys.yaml")
    assert fragment in str(info.value)


def test_keys_file_forms() -> None:
    json_text = '[{"name": "a", "key": "' + K1 + '", "collections": "*", "tokens_per_minute": 100}]'
    [(digest, p)] = parse_keys(json_text, source="keys.json")
    assert digest == bytes.fromhex(sha(K1))
    assert p.collections is None and p.role == "user" and p.tokens_per_minute == 100
    [(_, q)] = parse_keys(
        "keys:\n- {name: b, key: " + K1 + ", role: admin, collections: [r]}",
        source="k.yml",
    )
    assert q.is_admin and q.can_read("r") and not q.can_read("s")


def test_a_broken_keys_file_stops_start_up(tmp_path: os.PathLike[str]) -> None:
    from service.app import create_app
    from service.settings import Settings

    bad = os.path.join(tmp_path, "keys.yaml")
    with open(bad, "w") as f:
        f.write("- {name: a, collections: [x]}\n")
    with pytest.raises(KeyFileError, match="exactly one of key_sha256"):
        create_app(Settings(data_dir=tmp_path, auth_keys_file=bad))


def test_bind_policy() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.5") and not is_loopback("example.com")
    assert refuse_insecure_bind("127.0.0.1", keys_configured=False, insecure=False) is None
    assert refuse_insecure_bind("0.0.0.0", keys_configured=True, insecure=False) is None
    assert refuse_insecure_bind("0.0.0.0", keys_configured=False, insecure=True) is None
    msg = refuse_insecure_bind("0.0.0.0", keys_configured=False, insecure=False)
    assert msg is not None and "--insecure" in msg and "RAGSERVE_AUTH_KEYS_FILE" in msg and "\n" not in msg


def test_serve_refuses_a_public_address_without_keys(tmp_path: os.PathLike[str]) -> None:
    env = {**os.environ, "RAGSERVE_DATA_DIR": str(tmp_path)}
    env.pop("RAGSERVE_AUTH_KEYS_FILE", None)
    proc = subprocess.run(
        [sys.executable, "-m", "service.cli", "serve", "--host", "0.0.0.0", "--port", "1"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "refusing to serve on 0.0.0.0 without API keys" in proc.stderr
    assert "--insecure" in proc.stderr
