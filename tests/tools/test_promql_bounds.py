"""PromQL is a per-key permission and every query's cost is bounded (issue 19, #19).

The tool runs for real against a small HTTP server answering Prometheus's query API (the bounds
are ours, not Prometheus's); the real-Prometheus integration is tests/tools/test_prometheus_tool.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request

from service.auth.context import RequestAccess, bind, unbind
from service.auth.principal import Principal
from service.settings import ToolSettings
from service.tools.builtins import ToolContext, ToolError, ToolOutput
from service.tools.prometheus import PrometheusQuery
from tests.utils.servers import serve_in_thread


@pytest.fixture(scope="module")
def fake_prometheus() -> Iterator[tuple[str, list[dict[str, str]]]]:
    seen: list[dict[str, str]] = []
    app = FastAPI()

    @app.get("/api/v1/query")
    async def query(request: Request) -> dict[str, Any]:
        params = dict(request.query_params)
        seen.append(params)
        n = int(params["query"].split("series_")[1]) if "series_" in params["query"] else 1
        result = [{"metric": {"__name__": "m", "i": str(i)}, "value": [1, "1"]} for i in range(n)]
        return {"status": "success", "data": {"resultType": "vector", "result": result}}

    with serve_in_thread(app) as url:
        yield url, seen


def _run(url: str, principal: Principal | None, **args: str) -> ToolOutput:
    settings = ToolSettings(
        prometheus_url=url, prometheus_max_result_series=50, prometheus_max_response_bytes=64 * 1024
    )
    ctx = ToolContext(knowledge=None, settings=settings, collections=[], default_collection="")  # type: ignore[arg-type]
    token = bind(RequestAccess(principal) if principal is not None else None)
    try:
        return asyncio.run(PrometheusQuery().run(args, ctx))
    finally:
        unbind(token)


SRE = Principal(name="sre", role="user", collections=None, permissions=frozenset({"promql"}))
APP = Principal(name="app", role="user", collections=None)


def test_promql_needs_the_permission(fake_prometheus: tuple[str, list[dict[str, str]]]) -> None:
    url, seen = fake_prometheus
    before = len(seen)
    with pytest.raises(ToolError, match="'app' may not run PromQL"):
        _run(url, APP, query="up")
    assert len(seen) == before  # refused before anything reached Prometheus
    assert _run(url, SRE, query="up").summary == "vector: 1 series"
    assert seen[-1]["timeout"] == "10s"  # the evaluation timeout goes to Prometheus


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ({"query": "rate(x[400d])"}, "spans more than"),
        ({"query": "max_over_time(rate(x[5m])[1d:1s])"}, "more than 1000 steps"),
        ({"query": "up", "start": "now-30d"}, "longer than"),
        ({"query": "up", "start": "now-1h", "step": "1s"}, "too many points"),
    ],
)
def test_query_cost_is_bounded(
    fake_prometheus: tuple[str, list[dict[str, str]]], args: dict[str, str], fragment: str
) -> None:
    url, seen = fake_prometheus
    before = len(seen)
    with pytest.raises(ToolError, match=fragment):
        _run(url, SRE, **args)
    assert len(seen) == before


def test_result_series_and_size_are_bounded(fake_prometheus: tuple[str, list[dict[str, str]]]) -> None:
    url, _ = fake_prometheus
    assert _run(url, SRE, query="series_50").summary == "vector: 50 series"
    with pytest.raises(ToolError, match="matched 51 series"):
        _run(url, SRE, query="series_51")
    with pytest.raises(ToolError, match="larger than 65536 bytes"):
        _run(url, SRE, query="series_5000")
