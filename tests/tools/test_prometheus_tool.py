"""`prometheus_query` against a real Prometheus (Debian's `prometheus`) scraping the gateway's /metrics."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from service.tools.builtins import ToolError
from service.tools.prometheus import parse_duration, parse_time
from tests.tools.conftest import ToolGateway
from tests.tools.test_tools_api import call_json, chat
from tests.utils.prometheus import run_prometheus
from tests.utils.servers import free_port


@pytest.fixture(scope="module")
def prometheus(_tool_gateway: ToolGateway, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with run_prometheus(_tool_gateway.url, tmp_path_factory.mktemp("prometheus")) as url:
        yield url


def _ask(gw: ToolGateway, **arguments: object) -> dict[str, object]:
    gw.fake.script(call_json("prometheus_query", **arguments), "answer", "Checked.")
    r = chat(gw, server_tools=["prometheus_query"], tool_choice="required")
    assert r.status_code == 200, r.text
    (entry,) = r.json()["tool_trace"]
    assert isinstance(entry, dict)
    return entry


def test_instant_query_reads_the_gateway_up_series(gw: ToolGateway, prometheus: str) -> None:
    gw.settings.tools.prometheus_url = prometheus
    entry = _ask(gw, query='up{job="ragserve"}')
    assert entry["error"] is None and entry["result"] == "vector: 1 series"
    prompt = gw.sent()[-1]["messages"][-1]["content"]
    assert 'Result of prometheus_query({"query": "up{job=\\"ragserve\\"}"}):' in prompt
    assert 'up{instance="' in prompt and 'job="ragserve"} = 1' in prompt


def test_range_query_and_series_cap(gw: ToolGateway, prometheus: str) -> None:
    gw.settings.tools.prometheus_url = prometheus
    gw.settings.tools.prometheus_max_series = 2
    entry = _ask(gw, query="ragserve_http_requests_total", start="now-5m", step="1s")
    assert entry["error"] is None and str(entry["result"]).startswith("matrix: ")
    n_series = int(str(entry["result"]).split()[1])
    prompt = gw.sent()[-1]["messages"][-1]["content"]
    assert "points, first" in prompt
    if n_series > 2:
        assert f"... {n_series - 2} more series not shown" in prompt
    # Our own tool metrics reach Prometheus like any other series.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        r = httpx.get(prometheus + "/api/v1/query", params={"query": "ragserve_tool_calls_total"}).json()
        if any(s["metric"].get("tool") == "prometheus_query" for s in r["data"]["result"]):
            break
        time.sleep(0.5)
    else:
        pytest.fail("ragserve_tool_calls_total{tool='prometheus_query'} never reached Prometheus")


def test_bad_promql_is_reported_not_raised(gw: ToolGateway, prometheus: str) -> None:
    gw.settings.tools.prometheus_url = prometheus
    entry = _ask(gw, query="up{")
    assert entry["result"] is None and str(entry["error"]).startswith("Prometheus: bad_data:")
    entry = _ask(gw, query="up", start="yesterday")
    assert "cannot read the time 'yesterday'" in str(entry["error"])


def test_unreachable_prometheus_is_a_tool_error(gw: ToolGateway) -> None:
    gw.settings.tools.prometheus_url = f"http://127.0.0.1:{free_port()}"
    entry = _ask(gw, query="up")
    assert "unreachable" in str(entry["error"])
    assert json.dumps(entry)  # the trace stays JSON


def test_time_and_duration_parsing() -> None:
    now = 1_700_000_000.0
    assert parse_time("now", now) == now
    assert parse_time("now-15m", now) == now - 900
    assert parse_time("-1h30m", now) == now - 5400
    assert parse_time("1699990000", now) == 1_699_990_000
    assert parse_time("2023-11-14T22:13:20Z", now) == now
    assert parse_duration("90s") == 90 and parse_duration("0.5") == 0.5
    with pytest.raises(ToolError):
        parse_duration("5 minutes")
