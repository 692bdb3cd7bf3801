"""A real Prometheus (Debian's `prometheus`) on loopback, scraping a gateway, for integration tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
import yaml

from tests.utils.servers import free_port


def require_tool(name: str) -> str:
    """Path of a CLI tool; skip when absent on a workstation, fail in CI (CI=true) where it must exist."""
    path = shutil.which(name)
    if path:
        return path
    reason = f"`{name}` is not installed (Debian package `prometheus`; `make test` installs it with apt-get)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason + " and CI=true requires it")
    pytest.skip(reason)


@contextmanager
def run_prometheus(target_url: str, work: Path, *, rule_files: list[str] | None = None) -> Iterator[str]:
    """Start Prometheus scraping `target_url` (job "ragserve") every second; yield its URL once it has
    scraped the target at least once."""
    binary = require_tool("prometheus")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": rule_files or [],
        "scrape_configs": [
            {"job_name": "ragserve", "static_configs": [{"targets": [urlparse(target_url).netloc]}]}
        ],
    }
    cfg = work / "prometheus.yml"
    cfg.write_text(yaml.safe_dump(config), encoding="utf-8")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = work / "prometheus.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [binary, f"--config.file={cfg}", f"--storage.tsdb.path={work / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1h",
             "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"prometheus exited: {log_path.read_text(errors='replace')[-2000:]}")
            try:
                r = httpx.get(url + "/api/v1/query", params={"query": 'up{job="ragserve"}'}, timeout=2)
                result = r.json()["data"]["result"]
                if result and result[0]["value"][1] == "1":
                    break
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            if time.monotonic() > deadline:
                pytest.fail("prometheus did not scrape the gateway within 60 s")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
