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
        assert r.json()["checks"]["engine"]["ready"] is False
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
