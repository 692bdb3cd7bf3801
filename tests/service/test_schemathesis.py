"""Schemathesis over /openapi.json against a real gateway (issue 19): no 5xx, no undocumented status.

`schemathesis run` (the CLI, pinned in constraints.txt) generates requests from the published
OpenAPI document for every route, with a fixed seed and a bounded number of examples per
operation, and fails on any server error or any status code the document does not list. The
gateway serves real HTTP in front of the scripted fake engine, with its own data directory (the
run creates and deletes collections).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.rca.conftest import model_reply
from tests.service.conftest import CORPUS
from tests.utils.fake_vllm import FakeVLLM
from tests.utils.gateway import remote_settings, serve_gateway, write_corpus
from tests.utils.servers import serve_in_thread

pytestmark = pytest.mark.slow

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
EXAMPLES_PER_OPERATION = 8
SEED = 19


class _WellFormedEngine(FakeVLLM):
    """Every answer is a well-formed RCA analysis: what an engine writes under the decoding schema
    (the fake does not enforce schemas, and a model's malformed analysis is a 502 by design)."""

    def _next_reply(self) -> str:
        return self.replies.popleft() if self.replies else model_reply()


@pytest.fixture(scope="module")
def fuzzed_gateway(shared_embedder: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    fake = _WellFormedEngine()
    with serve_in_thread(fake.app, ready_path="/health") as engine_url:
        settings = remote_settings(
            tmp_path_factory.mktemp("fuzz-data"),
            engine_url,
            server={"max_request_bytes": 256 * 1024, "max_upload_bytes": 256 * 1024, "shutdown_grace_s": 2},
        )
        corpus = write_corpus(tmp_path_factory.mktemp("fuzz-corpus"), CORPUS)
        with serve_gateway(settings, shared_embedder, corpus) as (url, _app):
            yield url


def test_no_server_errors_and_no_undocumented_status(fuzzed_gateway: str, tmp_path: Path) -> None:
    if not SCHEMATHESIS.exists():  # pragma: no cover - `make test` installs it (constraints.txt)
        pytest.skip(f"schemathesis is not installed in {SCHEMATHESIS.parent}")
    cmd = [
        str(SCHEMATHESIS), "run", f"{fuzzed_gateway}/openapi.json",
        "--checks", "not_a_server_error,status_code_conformance",
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", str(EXAMPLES_PER_OPERATION),
        "--seed", str(SEED), "--generation-database", "none",
        "--no-shrink", "--request-timeout", "30", "--continue-on-failure",
        "--suppress-health-check", "all",
        "--report", "junit", "--report-dir", str(tmp_path),
    ]  # fmt: skip
    run = subprocess.run(  # in tmp_path: schemathesis keeps a cache in its working directory
        cmd, capture_output=True, text=True, timeout=600, env={"NO_COLOR": "1", "PATH": ""}, cwd=tmp_path
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-12000:]
    assert "not_a_server_error" in out or "passed" in out.lower(), out[-3000:]


def test_the_cli_is_on_the_path_make_test_installs() -> None:
    assert shutil.which("schemathesis", path=str(SCHEMATHESIS.parent)) is not None
