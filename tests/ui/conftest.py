"""Gateways for the web UI tests: real HTTP in front of a scripted fake engine, with API keys on.

`ui_gateway` serves a small synthetic build (headers and routing do not depend on a real build);
`built_ui` is the real `ui/dist` made by `make ui` (the browser and Vitest tests need node).
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from service.settings import Settings
from tests.conftest import REPO
from tests.utils.fake_vllm import FakeVLLM
from tests.utils.gateway import Gateway, remote_settings, serve_gateway
from tests.utils.servers import serve_in_thread

UI = REPO / "ui"
ADMIN_KEY = "ui-admin-key-0123456789-Qz7Wp2Rx4Lm9"
USER_KEY = "ui-user-key-0123456789-Qz7Wp2Rx4Lm9"
ASSET = "assets/index-Ab12Cd34.js"


@dataclass
class UIGateway(Gateway):
    ui_dir: Path


def node_or_skip() -> None:
    """Skip (with the reason) where this platform lacks what the UI tests need."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm not installed: the web UI is not built and cannot be tested (docs/ui.md)")
    if not (UI / "node_modules" / ".bin" / "vite").exists():
        pytest.skip("ui/node_modules missing: run `make ui` (make test does)")


def keys_file(root: Path) -> Path:
    path = root / "keys.yaml"
    path.write_text(
        yaml.safe_dump(
            [
                {"name": "ui-admin", "key_sha256": hashlib.sha256(ADMIN_KEY.encode()).hexdigest(),
                 "role": "admin", "collections": ["*"]},
                {"name": "ui-user", "key": USER_KEY, "role": "user", "collections": ["default"]},
            ]
        ),
        encoding="utf-8",
    )  # fmt: skip
    return path


def synthetic_dist(root: Path) -> Path:
    dist = root / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text(
        f'<!doctype html><html><head><script type="module" src="/ui/{ASSET}"></script></head>'
        '<body><div id="app"></div></body></html>',
        encoding="utf-8",
    )
    (dist / ASSET).write_text("console.log('ragserve ui')\n", encoding="utf-8")
    (dist / "robots.txt").write_text("User-agent: *\nDisallow: /\n", encoding="utf-8")
    return dist


@pytest.fixture(scope="session")
def ui_fake_engine() -> Iterator[tuple[str, FakeVLLM]]:
    fake = FakeVLLM()
    with serve_in_thread(fake.app, ready_path="/health") as url:
        yield url, fake


def _settings(data_dir: Path, engine_url: str, ui_dir: Path, keys: Path | None) -> Settings:
    return remote_settings(
        data_dir, engine_url, server={"ui_dir": ui_dir, "shutdown_grace_s": 2}, auth_keys_file=keys
    )


@pytest.fixture(scope="session")
def ui_gateway(
    ui_fake_engine: tuple[str, FakeVLLM], shared_embedder: object, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[UIGateway]:
    """Keys on, a synthetic build in ui_dir."""
    engine_url, fake = ui_fake_engine
    root = tmp_path_factory.mktemp("ui-static")
    settings = _settings(root / "data", engine_url, synthetic_dist(root), keys_file(root))
    with serve_gateway(settings, shared_embedder) as (url, _app):
        yield UIGateway(url=url, fake=fake, settings=settings, ui_dir=settings.server.ui_dir or Path())
