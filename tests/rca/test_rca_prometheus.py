"""The Prometheus path of an analysis against a real Prometheus (Debian's `prometheus`) scraping the
gateway: bounded queries through the `prometheus_query` tool, results as citable metric evidence."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest

from tests.rca.conftest import RcaGateway, alert, model_reply
from tests.utils.prometheus import run_prometheus


@pytest.fixture(scope="module")
def prometheus(_rca_gateway: RcaGateway, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with run_prometheus(_rca_gateway.url, tmp_path_factory.mktemp("rca-prometheus")) as url:
        yield url


def recent_alert(name: str, minutes_ago: float = 2) -> dict[str, Any]:
    """An alert that started moments ago: the test Prometheus has samples from now only."""
    a = alert(name)
    a["startsAt"] = (datetime.now(UTC) - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return a


def test_alert_expression_and_caller_queries_run_bounded(gw: RcaGateway, prometheus: str) -> None:
    gw.settings.tools.prometheus_url = prometheus
    gw.settings.rca.max_queries = 2
    a = recent_alert("HighErrorRate")
    a["generatorURL"] = (
        "http://prometheus:9090/graph?g0.expr=" + quote('up{job="ragserve"} == 1') + "&g0.tab=1"
    )
    evidence = {
        "metrics": [
            {"name": "supplied", "samples": [{"timestamp": "2026-11-23T10:00:00Z", "value": 3}]},
            {"query": 'sum(ragserve_http_requests_total{job="ragserve"})'},
            {"query": "this is not promql"},
            {"query": "count(up)"},
        ]
    }
    gw.fake.script(model_reply("metric:4", "metric:0"))
    r = gw.post({"alert": a, "evidence": evidence})
    assert r.status_code == 200, r.text
    out = r.json()
    calls = out["tool_calls"]
    # The limit of 2: the caller's first two queries ran; the rest (and the alert expression) did not.
    assert [c["arguments"]["query"] for c in calls] == [
        'sum(ragserve_http_requests_total{job="ragserve"})',
        "this is not promql",
    ]
    assert calls[0]["ok"] and calls[0]["ref"] == "metric:4" and calls[0]["name"] == "prometheus_query"
    lookback = datetime.strptime(a["startsAt"], "%Y-%m-%dT%H:%M:%SZ") - timedelta(minutes=15)
    assert calls[0]["arguments"]["start"] <= lookback.strftime("%Y-%m-%dT%H:%M:%SZ")  # 15 min before startsAt
    assert not calls[1]["ok"] and "bad_data" in calls[1]["error"]
    assert any("Prometheus query failed" in m for m in out["missing_data"])
    assert any("2 PromQL queries were not run" in m for m in out["missing_data"])
    ev = {e["ref"]: e for e in out["hypotheses"][0]["evidence"]}
    assert "prometheus_query(sum(ragserve_http_requests_total" in ev["metric:4"]["excerpt"]
    assert "points, first" in ev["metric:4"]["excerpt"] or "no numeric points" in ev["metric:4"]["excerpt"]
    assert ev["metric:0"]["excerpt"].startswith("supplied: 1 samples")
    prompt = gw.sent()[-1]["messages"][-1]["content"]
    assert "[metric:4]" in prompt and "prometheus_query(" in prompt


def test_the_alert_expression_runs_and_prometheus_can_be_turned_off(gw: RcaGateway, prometheus: str) -> None:
    gw.settings.tools.prometheus_url = prometheus
    a = recent_alert("HighErrorRate")
    a["generatorURL"] = "http://prometheus:9090/graph?g0.expr=" + quote('up{job="ragserve"}') + "&g0.tab=1"
    gw.fake.script(model_reply("metric:0"), model_reply())
    out = gw.post({"alert": a}).json()
    (call,) = out["tool_calls"]
    assert call["ok"] and call["arguments"]["query"] == 'up{job="ragserve"}' and call["ref"] == "metric:0"
    assert out["hypotheses"][0]["evidence"][0]["excerpt"].startswith('prometheus_query(up{job="ragserve"})')
    off = gw.post({"alert": a, "options": {"prometheus": False}}).json()
    assert off["tool_calls"] == []


def test_an_alert_firing_longer_than_the_range_limit_keeps_its_onset(gw: RcaGateway, prometheus: str) -> None:
    """Ten days of firing against a one-day range limit: the window is cut at its end (the onset, where
    causes show, stays), and the query runs instead of being refused for its range."""
    gw.settings.tools.prometheus_url = prometheus
    a = recent_alert("HighErrorRate", minutes_ago=10 * 24 * 60)
    a["generatorURL"] = "http://prometheus:9090/graph?g0.expr=" + quote("up") + "&g0.tab=1"
    gw.fake.script(model_reply())
    out = gw.post({"alert": a}).json()
    (call,) = out["tool_calls"]
    assert call["ok"], call
    start = datetime.strptime(call["arguments"]["start"], "%Y-%m-%dT%H:%M:%SZ")
    end = datetime.strptime(call["arguments"]["end"], "%Y-%m-%dT%H:%M:%SZ")
    onset = datetime.strptime(a["startsAt"], "%Y-%m-%dT%H:%M:%SZ")
    assert start <= onset - timedelta(minutes=15) and end - start <= timedelta(seconds=86400)
