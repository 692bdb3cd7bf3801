"""With the engine unreachable, the gateway says so at once: 503 with Retry-After, never a hang."""

from __future__ import annotations

from pathlib import Path

import httpx

from service.app import create_app
from service.settings import EngineSettings, Settings
from tests.utils.servers import free_port, serve_in_thread


def test_unreachable_engine_gives_503_quickly(shared_embedder: object, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    settings = Settings(
        data_dir=tmp_path, engine=EngineSettings(mode="remote", url=dead, served_model_name="m")
    )
    with serve_in_thread(create_app(settings, embedder=shared_embedder)) as url:  # type: ignore[arg-type]
        r = httpx.get(url + "/readyz")
        assert r.status_code == 503 and r.headers["retry-after"]
        assert r.json() == {"status": "not ready"}
        r = httpx.post(
            url + "/v1/chat/completions",
            timeout=10,
            json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert r.status_code == 503
        assert r.headers["retry-after"]
        assert r.json()["error"]["code"] == "engine_unavailable"
        # the gateway still answers what it can without the engine
        assert httpx.get(url + "/healthz").status_code == 200
        models = httpx.get(url + "/v1/models").json()["data"]
        assert "m" in {m["id"] for m in models}
        assert "ragserve_engine_up 0.0" in httpx.get(url + "/metrics").text


def test_engine_that_keeps_failing_fails_liveness(shared_embedder: object, tmp_path: Path) -> None:
    """The supervisor gives up after max_restarts; then /healthz fails so Kubernetes restarts the pod."""
    import time

    settings = Settings(
        data_dir=tmp_path,
        engine=EngineSettings(
            mode="embedded", model="/nonexistent/model-dir", served_model_name="m",
            max_restarts=0, startup_timeout_s=120,
        ),
    )  # fmt: skip
    with serve_in_thread(create_app(settings, embedder=shared_embedder)) as url:  # type: ignore[arg-type]
        deadline = time.monotonic() + 120
        while httpx.get(url + "/healthz").status_code == 200:
            assert time.monotonic() < deadline, "the failed engine never failed liveness"
            time.sleep(0.5)
        r = httpx.get(url + "/healthz")
        assert r.status_code == 503 and r.json()["status"] == "failed"
        assert httpx.get(url + "/readyz").json() == {"status": "not ready"}
        chat = httpx.post(
            url + "/v1/chat/completions",
            timeout=10,
            json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert chat.status_code == 503
