"""Serving the built UI at /ui: cache headers, SPA fallback, public files, auth for the API."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from service.app import create_app
from service.settings import EngineSettings, Settings
from service.ui import CSP, IMMUTABLE
from tests.ui.conftest import ADMIN_KEY, ASSET, UIGateway
from tests.utils.fake_vllm import MODEL, FakeVLLM
from tests.utils.servers import serve_in_thread


def test_index_is_revalidated_and_locked_to_its_origin(ui_gateway: UIGateway) -> None:
    r = httpx.get(ui_gateway.url + "/ui/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-cache"
    assert r.headers["content-security-policy"] == CSP
    assert "connect-src 'self'" in CSP and "https:" not in CSP
    assert f"/ui/{ASSET}" in r.text
    again = httpx.get(ui_gateway.url + "/ui/", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""


def test_hashed_assets_are_immutable(ui_gateway: UIGateway) -> None:
    r = httpx.get(f"{ui_gateway.url}/ui/{ASSET}")
    assert r.status_code == 200
    assert r.headers["cache-control"] == IMMUTABLE == "public, max-age=31536000, immutable"
    assert "javascript" in r.headers["content-type"]
    assert r.text == "console.log('ragserve ui')\n"


@pytest.mark.parametrize("route", ["/ui/alerts", "/ui/alerts/rca_123", "/ui/collections/ops", "/ui/chat"])
def test_client_routes_fall_back_to_the_page(ui_gateway: UIGateway, route: str) -> None:
    r = httpx.get(ui_gateway.url + route)
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-cache"
    assert '<div id="app">' in r.text


def test_missing_files_are_404_not_the_page(ui_gateway: UIGateway) -> None:
    missing = ["/ui/assets/index-gone.js", "/ui/missing.png"]
    escapes = ["/ui/%2e%2e/keys.yaml", "/ui/assets/..%2f..%2fkeys.yaml"]  # keys.yaml is beside dist/
    for path in missing + escapes:
        r = httpx.get(ui_gateway.url + path)
        assert r.status_code == 404, path
        assert "error" in r.json(), path
    assert httpx.get(ui_gateway.url + "/ui/robots.txt").headers["cache-control"] == "no-cache"


def test_redirects_to_the_ui(ui_gateway: UIGateway) -> None:
    for path in ("/", "/ui"):
        r = httpx.get(ui_gateway.url + path)
        assert r.status_code == 307
        assert r.headers["location"] == "/ui/"


def test_page_is_public_but_the_api_needs_a_key(ui_gateway: UIGateway) -> None:
    assert httpx.get(ui_gateway.url + "/ui/chat").status_code == 200
    assert httpx.get(f"{ui_gateway.url}/ui/{ASSET}").status_code == 200
    refused = httpx.get(ui_gateway.v1 + "/collections")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_api_key"
    ok = httpx.get(ui_gateway.v1 + "/collections", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert ok.status_code == 200


def test_ui_routes_stay_out_of_the_openapi_schema(ui_gateway: UIGateway) -> None:
    auth = {"Authorization": f"Bearer {ADMIN_KEY}"}
    schema = httpx.get(ui_gateway.url + "/openapi.json", headers=auth).json()
    assert not [p for p in schema["paths"] if p == "/" or p.startswith("/ui")]


def test_unbuilt_ui_says_how_to_build_it(
    ui_fake_engine: tuple[str, FakeVLLM],
    shared_embedder: object,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        engine=EngineSettings(mode="remote", url=ui_fake_engine[0], served_model_name=MODEL, model=MODEL),
        server={"ui_dir": tmp_path / "nowhere"},
    )
    with caplog.at_level("WARNING", logger="ragserve.ui"):
        app = create_app(settings, embedder=shared_embedder)  # type: ignore[arg-type]
    assert any("run `make ui`" in r.getMessage() for r in caplog.records)
    with serve_in_thread(app) as url:
        r = httpx.get(url + "/ui/")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "ui_not_built"
    assert "run `make ui`" in r.json()["error"]["message"]
