"""The Java client against real gateways (fake engine): 401, 429 with Retry-After and retries, 503,
an error inside a started stream.

The engine is beside the point here: these are the gateway's own refusals, seen through the Java
client's typed exceptions. The live-engine checks are in tests/e2e/test_a_java_client.py.
"""

from __future__ import annotations

from pathlib import Path

from service.app import create_app
from service.settings import EngineSettings, Settings
from tests.auth.conftest import OPS_KEY, GatewayFactory, base_keys, sha
from tests.clients.java import CHECK_MAIN, run_java
from tests.utils.fake_vllm import MODEL
from tests.utils.servers import free_port, serve_in_thread

LIMITED_KEY = "java-limited-key-0123456789-Qz7Wp2Rx4Lm9"


def test_java_client_auth_and_rate_limits(start_gateway: GatewayFactory, java_classpath: str) -> None:
    keys = [
        *base_keys(),
        {"name": "java-limited", "key_sha256": sha(LIMITED_KEY), "role": "user",
         "collections": ["runbooks"], "requests_per_minute": 30},
    ]  # fmt: skip
    gw = start_gateway(keys=keys)
    r = run_java(
        java_classpath, CHECK_MAIN, "--base-url", gw.url, "--suite", "limits",
        "--key", OPS_KEY, "--limited-key", LIMITED_KEY,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert "5 passed, 0 failed" in r.stdout
    # The gateway saw the 429s the client retried through and the ones it surfaced.
    assert gw.metric("ragserve_rate_limited_requests_total", key="java-limited", limit="requests") >= 4
    assert gw.metric("ragserve_rejected_requests_total", status="401") >= 2


def test_java_client_engine_unavailable(shared_embedder: object, tmp_path: Path, java_classpath: str) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    engine = EngineSettings(mode="remote", url=dead, served_model_name="m")
    settings = Settings(data_dir=tmp_path, engine=engine)
    with serve_in_thread(create_app(settings, embedder=shared_embedder)) as url:  # type: ignore[arg-type]
        r = run_java(java_classpath, CHECK_MAIN, "--base-url", url, "--suite", "engine-down", "--model", "m")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 passed, 0 failed" in r.stdout


def test_java_client_error_inside_a_stream(start_gateway: GatewayFactory, java_classpath: str) -> None:
    """The per-request deadline cuts a slow stream: `data: {"error"}`, `[DONE]` -> StreamErrorException."""
    gw = start_gateway(admission={"request_timeout_s": 1.5})
    gw.fake.token_delay_s = 0.05
    gw.fake.script(*[" ".join(f"word{i}" for i in range(120))] * 2)
    args = ("--base-url", gw.url, "--suite", "stream-error", "--model", MODEL)
    r = run_java(java_classpath, CHECK_MAIN, *args)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 passed, 0 failed" in r.stdout
    assert gw.metric("ragserve_rejected_requests_total", status="504", reason="timeout") == 2
