"""One real `ragserve serve` (gateway + supervised vLLM on the default model) per test session."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO
from tests.utils.servers import free_port


@dataclass
class LiveServer:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    data_dir: Path

    @property
    def v1(self) -> str:
        return self.url + "/v1"

    def log_tail(self, n: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            if httpx.get(url + "/readyz", timeout=5).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(1)
    return False


@contextlib.contextmanager
def launch_live_server(
    data_dir: Path, *, model: str | None = None, **env_overrides: str
) -> Iterator[LiveServer]:
    """`ragserve serve` in `data_dir` on a catalog model (the 135M plumbing model unless `model` names
    another, e.g. DEFAULT_MODEL for answer quality), served under its catalog name; `env_overrides` adds
    RAGSERVE_* settings."""
    from service.engine.model_prep import resolve_model
    from service.settings import PLUMBING_MODEL

    model = model or PLUMBING_MODEL
    model_dir = resolve_model(model, REPO / "var" / "models")  # prepared once by `make`, cached
    log = data_dir / "server.log"
    port = free_port()
    env = dict(os.environ)
    env.update(
        RAGSERVE_DATA_DIR=str(data_dir),
        RAGSERVE_PORT=str(port),
        RAGSERVE_ENGINE__MODEL=str(model_dir),
        RAGSERVE_ENGINE__SERVED_MODEL_NAME=model,
        RAGSERVE_ENGINE__MAX_MODEL_LEN="2048",
        RAGSERVE_ENGINE__KV_CACHE_SPACE_GIB="1",
        RAGSERVE_SERVER__SHUTDOWN_GRACE_S="20",
    )
    env.update(env_overrides)
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve"],
            cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    server = LiveServer(url=f"http://127.0.0.1:{port}", proc=proc, log=log, data_dir=data_dir)
    try:
        if not wait_ready(server.url, proc, timeout_s=600):
            pytest.fail(f"ragserve serve did not become ready; log tail:\n{server.log_tail()}")
        yield server
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with launch_live_server(tmp_path_factory.mktemp("live-data")) as server:
        yield server
