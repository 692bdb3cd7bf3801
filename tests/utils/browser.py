"""Run the web UI's browser tests (ui/tests/browser/run.mjs: playwright-core + Debian's Chromium).

Screenshots go to var/test-artifacts/ui/<scenario>/ (RAGSERVE_TEST_ARTIFACTS overrides the root);
their paths are printed. Skips, saying why, only where node, the UI build or Chromium is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO

UI = REPO / "ui"
SCRIPT = UI / "tests" / "browser" / "run.mjs"


def artifacts_dir() -> Path:
    root = Path(os.environ.get("RAGSERVE_TEST_ARTIFACTS", REPO / "var" / "test-artifacts"))
    return root / "ui"


def require_browser() -> str:
    """The Chromium to drive, or skip with the reason."""
    if shutil.which("node") is None:
        pytest.skip("node not installed: the web UI's browser tests need Node >= 20.19 (docs/ui.md)")
    if not (UI / "node_modules" / "playwright-core").is_dir():
        pytest.skip("ui/node_modules missing: run `make ui` (make test does)")
    if not (UI / "dist" / "index.html").is_file():
        pytest.skip("the web UI is not built: run `make ui` (make test does)")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium not installed: `make chromium` (Debian package; make test does)")
    return chromium


def run_browser(url: str, scenario: str, *, timeout_s: float = 300, **options: str) -> dict[str, Any]:
    """Run one scenario against a live gateway; fail with the script's output unless every step passed."""
    chromium = require_browser()
    cmd = ["node", str(SCRIPT), "--url", url, "--scenario", scenario, "--out", str(artifacts_dir()),
           "--chromium", chromium]  # fmt: skip
    for name, value in options.items():
        cmd += [f"--{name.replace('_', '-')}", value]
    proc = subprocess.run(cmd, cwd=UI, capture_output=True, text=True, timeout=timeout_s, check=False)
    output = proc.stdout + proc.stderr
    print(output)  # step lines and screenshot paths, shown with -s or on failure
    result_lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not result_lines:
        pytest.fail(f"browser scenario {scenario!r} failed (exit {proc.returncode}):\n{output[-6000:]}")
    result: dict[str, Any] = json.loads(result_lines[-1].removeprefix("RESULT "))
    return result
