"""The rules pass promtool, and a real Prometheus scrapes a running ragserve and answers PromQL about it."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.observability.conftest import RULES, RULES_TEST, Gateway
from tests.utils.fake_vllm import MODEL
from tests.utils.prometheus import require_tool, run_prometheus

pytestmark = pytest.mark.slow


def test_promtool_check_rules() -> None:
    promtool = require_tool("promtool")
    r = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout + r.stderr


def test_promtool_test_rules() -> None:
    promtool = require_tool("promtool")
    r = subprocess.run(
        [promtool, "test", "rules", RULES_TEST.name],
        cwd=RULES_TEST.parent, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout + r.stderr


def test_promtool_accepts_our_exposition(obs_gateway: Gateway) -> None:
    """`promtool check metrics` lints /metrics (names, units, help); advisory lints on counters aside."""
    promtool = require_tool("promtool")
    text = httpx.get(obs_gateway.url + "/metrics").text
    r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    advisory = "non-histogram and non-summary metrics should not have"
    problems = [
        line
        for line in (r.stdout + r.stderr).splitlines()
        if line.startswith("ragserve_") and advisory not in line
    ]
    assert not problems, "\n".join(problems)


@pytest.fixture
def prometheus(obs_gateway: Gateway, tmp_path: Path) -> Iterator[str]:
    """A real Prometheus on loopback scraping the gateway every second, with our rules loaded."""
    with run_prometheus(obs_gateway.url, tmp_path, rule_files=[str(RULES)]) as url:
        yield url


def query(prom: str, promql: str, *, until: Any = bool, timeout_s: float = 60) -> list[dict[str, Any]]:
    """Poll an instant query until `until(result)` holds; return the result vector."""
    deadline = time.monotonic() + timeout_s
    while True:
        r = httpx.get(prom + "/api/v1/query", params={"query": promql}, timeout=10)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        if until(result):
            return result
        assert time.monotonic() < deadline, f"{promql} never satisfied the condition; last: {result}"
        time.sleep(0.5)


def test_real_prometheus_scrapes_ragserve_and_answers_promql(obs_gateway: Gateway, prometheus: str) -> None:
    before = query(prometheus, 'up{job="ragserve"}', until=lambda res: res and res[0]["value"][1] == "1")
    assert before[0]["metric"]["instance"] == obs_gateway.url.removeprefix("http://")

    def ask() -> None:
        r = httpx.post(
            obs_gateway.v1 + "/chat/completions",
            json={"model": "rag/default", "messages": [{"role": "user", "content": "exit code 137?"}]},
            timeout=60,
        )
        assert r.status_code == 200

    # One request first, so its series exist in Prometheus before the rest move them (a rate
    # needs two samples of a series, and a series that appears at its final value has none).
    ask()
    query(prometheus, 'ragserve_http_requests_total{route="/v1/chat/completions"}', until=bool)
    for _ in range(4):
        ask()
    promql = 'sum by (job, model) (ragserve_generation_tokens_total{job="ragserve",model="rag/default"})'
    tokens = query(prometheus, promql, until=lambda res: res and float(res[0]["value"][1]) >= 5)
    print(f"\nPromQL> {promql}\n{tokens}")
    # a recording rule from deploy/prometheus evaluated on the live data
    rate = query(
        prometheus,
        'ragserve:http_requests:rate5m{route="/v1/chat/completions",status="200"}',
        until=lambda res: res and float(res[0]["value"][1]) > 0,
    )
    print(f"PromQL> ragserve:http_requests:rate5m{{route=...}}\n{rate}")
    info = query(prometheus, "ragserve_build_info", until=lambda res: len(res) == 1)
    assert info[0]["metric"]["model"] == MODEL and info[0]["metric"]["job"] == "ragserve"
    kv = query(prometheus, "ragserve_engine_kv_cache_usage_ratio", until=lambda res: len(res) == 1)
    assert float(kv[0]["value"][1]) == 0.25
    # the rules loaded and evaluate: no alert is firing on a healthy gateway
    rules = httpx.get(prometheus + "/api/v1/rules").json()["data"]["groups"]
    assert {g["name"] for g in rules} == {"ragserve.recording", "ragserve.slo", "ragserve.alerts"}
    assert all(r.get("health") != "err" for g in rules for r in g["rules"]), rules
    firing = httpx.get(prometheus + "/api/v1/alerts").json()["data"]["alerts"]
    assert not [a for a in firing if a["state"] == "firing"], firing
