"""The Java client (clients/java) against the live gateway and real engine of tests/e2e.

Runs the client's check program (PASS/FAIL per check, non-zero exit on any failure: chat, retrieval,
errors, then the RCA API) and the example program. Named `test_a_*` so it runs before test_live.py,
whose last tests kill the engine and stop the server.
"""

from __future__ import annotations

import re

import pytest

from tests.clients.java import CHECK_MAIN, EXAMPLE_MAIN, java_classpath, run_java
from tests.e2e.conftest import LiveServer

pytestmark = pytest.mark.engine

__all__ = ["java_classpath"]  # the fixture, imported for this module


def test_java_client_checks_on_the_real_engine(live_server: LiveServer, java_classpath: str) -> None:
    r = run_java(java_classpath, CHECK_MAIN, "--base-url", live_server.url, "--suite", "live")
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}\nserver log:\n{live_server.log_tail()}"
    assert re.search(r"^8 passed, 0 failed$", r.stdout, re.M), r.stdout
    assert "FAIL" not in r.stdout


def test_java_example_program(live_server: LiveServer, java_classpath: str) -> None:
    r = run_java(java_classpath, EXAMPLE_MAIN, live_server.v1, "What does exit code 137 mean for a pod?")
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    out = r.stdout
    streamed = out.split("== rag/default, streamed\n", 1)[1].split("== rag/default, whole answer", 1)[0]
    answer, _, rest = streamed.partition("\nfinish_reason=")
    assert answer.strip(), "the streamed answer was printed as it arrived"
    assert re.match(r"(stop|length) usage=Usage\[promptTokens=\d+, completionTokens=[1-9]\d*", rest), rest
    assert re.search(r"^\[1\] \S+", rest, re.M), "citations of the final chunk are listed"
    assert "runbooks/pod-oomkilled.md" in out
    assert re.search(r"^default\s+\d+ documents", out, re.M)
    assert "NotFoundException status=404 type=invalid_request_error code=model_not_found" in out


def test_java_client_rca_api(live_server: LiveServer, java_classpath: str) -> None:
    """Analyses whole and streamed, the Alertmanager webhook (dedup, background run, resolve), listing."""
    r = run_java(java_classpath, CHECK_MAIN, "--base-url", live_server.url, "--suite", "rca", timeout_s=900)
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}\nserver log:\n{live_server.log_tail()}"
    assert re.search(r"^5 passed, 0 failed$", r.stdout, re.M), r.stdout
