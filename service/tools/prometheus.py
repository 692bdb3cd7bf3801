"""`prometheus_query`: read-only PromQL (instant or range) against the configured Prometheus.

The one door to Prometheus (the tool loop and RCA evidence both come here): the request's API key
needs the `promql` permission, and each query's cost is bounded: the span of a range query and of
every range selector and subquery in the expression, the points returned, the series returned,
the response size and the evaluation time (Prometheus's `timeout`).
"""

from __future__ import annotations

import json
import math
import re
import time
from datetime import datetime
from typing import Any

import httpx

from service.auth.context import current_principal
from service.tools.builtins import ServerTool, ToolContext, ToolError, ToolOutput

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
MAX_POINTS = 120  # a range query's default step keeps the answer to about this many points
# Range selectors and subqueries inside an expression: `[5m]`, `[1h:30s]`, `[30d:]`.
_SELECTOR = re.compile(r"\[\s*([0-9][0-9a-z.]*)\s*(?::\s*([0-9][0-9a-z.]*)?\s*)?\]")


def parse_duration(text: str) -> float:
    """'90s', '5m', '1h30m' or plain seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ToolError(f"cannot read the duration {text!r}; use e.g. 30s, 5m, 1h")
    return sum(float(n) * _UNIT_S[u] for n, u in parts)


def parse_time(text: str, now: float) -> float:
    """RFC 3339, unix seconds, 'now', 'now-15m' or '-15m'."""
    text = text.strip()
    if text in ("", "now"):
        return now
    if text.startswith("now-") or text.startswith("-"):
        return now - parse_duration(text.split("-", 1)[1])
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError as exc:
        raise ToolError(f"cannot read the time {text!r}; use RFC 3339, unix seconds or now-15m") from exc


def _labels(metric: dict[str, str]) -> str:
    name = metric.get("__name__", "")
    rest = ",".join(f'{k}="{v}"' for k, v in sorted(metric.items()) if k != "__name__")
    return f"{name}{{{rest}}}" if rest or not name else name


class PrometheusQuery(ServerTool):
    name = "prometheus_query"
    description = (
        "Run a read-only PromQL query against Prometheus. Without start it is an instant query; "
        "with start (and optionally end, step) a range query. Times: RFC 3339, unix seconds, "
        "'now' or 'now-15m'."
    )

    def parameters(self, ctx: ToolContext) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                "query": {"type": "string", "minLength": 1, "maxLength": 512, "description": "PromQL"},
                "start": {"type": "string", "maxLength": 40},
                "end": {"type": "string", "maxLength": 40},
                "step": {"type": "string", "maxLength": 16, "description": "e.g. 30s"},
            },
            "required": ["query"],
            "additionalProperties": False,
        }

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        base = ctx.settings.prometheus_url
        if not base:
            raise ToolError("no Prometheus is configured (tools.prometheus_url)")
        principal = current_principal()
        if principal is not None and not principal.may("promql"):
            raise ToolError(
                f"the API key '{principal.name}' may not run PromQL (it lacks the 'promql' permission)"
            )
        query = str(args.get("query") or "").strip()
        if not query:
            raise ToolError("query is empty")
        cfg = ctx.settings
        _check_selectors(query, cfg.prometheus_max_range_s, cfg.prometheus_max_points)
        now = time.time()
        params: dict[str, str] = {"query": query}
        if args.get("start"):
            start = parse_time(str(args["start"]), now)
            end = parse_time(str(args.get("end") or "now"), now)
            if end <= start:
                raise ToolError("end must be after start")
            step = (
                parse_duration(str(args["step"]))
                if args.get("step")
                else max(1.0, (end - start) / MAX_POINTS)
            )
            if end - start > cfg.prometheus_max_range_s:
                raise ToolError(
                    f"the range is {end - start:g} s, longer than {cfg.prometheus_max_range_s:g} s "
                    "(tools.prometheus_max_range_s)"
                )
            if step <= 0 or (end - start) / step > cfg.prometheus_max_points:
                raise ToolError(
                    f"too many points: at most {cfg.prometheus_max_points} per series; "
                    "raise step or shorten the range"
                )
            path = "/api/v1/query_range"
            params.update(start=f"{start:.3f}", end=f"{end:.3f}", step=f"{step:g}")
        else:
            path = "/api/v1/query"
            if args.get("end"):
                params["time"] = f"{parse_time(str(args['end']), now):.3f}"
        params["timeout"] = f"{cfg.tool_timeout_s:g}s"  # Prometheus stops evaluating past it
        limit = cfg.prometheus_max_response_bytes
        try:
            async with (
                httpx.AsyncClient(timeout=cfg.tool_timeout_s) as client,
                client.stream("GET", base.rstrip("/") + path, params=params) as r,
            ):
                chunks: list[bytes] = []
                size = 0
                async for chunk in r.aiter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise ToolError(
                            f"the answer is larger than {limit} bytes (tools.prometheus_max_response_bytes); "
                            "narrow the query (fewer series, a shorter range, a larger step)"
                        )
                    chunks.append(chunk)
        except httpx.HTTPError as exc:
            raise ToolError(f"Prometheus at {base} is unreachable: {type(exc).__name__}") from exc
        try:
            body = json.loads(b"".join(chunks))
        except ValueError as exc:
            raise ToolError(f"Prometheus answered HTTP {r.status_code} with a non-JSON body") from exc
        if body.get("status") != "success":
            raise ToolError(
                f"Prometheus: {body.get('errorType', 'error')}: {body.get('error', r.status_code)}"
            )
        data = body.get("data") or {}
        result = data.get("result")
        if isinstance(result, list) and len(result) > cfg.prometheus_max_result_series:
            raise ToolError(
                f"the query matched {len(result)} series, more than {cfg.prometheus_max_result_series} "
                "(tools.prometheus_max_result_series); aggregate it (sum by, topk)"
            )
        return summarize(data, cfg.prometheus_max_series, cfg.result_max_chars)


def _check_selectors(query: str, max_range_s: float, max_points: int) -> None:
    """Refuse range selectors and subqueries spanning more than max_range_s, or subqueries with
    more than max_points steps: the expression's own cost, which a short query range does not bound."""
    for m in _SELECTOR.finditer(query):
        span = parse_duration(m.group(1))
        if span > max_range_s:
            raise ToolError(
                f"the selector [{m.group(1)}] spans more than {max_range_s:g} s "
                "(tools.prometheus_max_range_s)"
            )
        if m.group(2):
            step = parse_duration(m.group(2))
            if step <= 0 or span / step > max_points:
                raise ToolError(f"the subquery [{m.group(0)[1:-1]}] has more than {max_points} steps")


def _num(v: Any) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if math.isnan(f) or math.isinf(f):
        return str(v)
    return f"{f:.6g}"


def summarize(data: dict[str, Any], max_series: int, max_chars: int) -> ToolOutput:
    """A compact text view: one line per series, at most `max_series`, at most `max_chars`."""
    kind = data.get("resultType")
    result = data.get("result")
    lines: list[str] = []
    if kind in ("scalar", "string"):
        lines.append(f"{kind}: {_num(result[1]) if isinstance(result, list) else result}")
        n = 1
    else:
        series = result if isinstance(result, list) else []
        n = len(series)
        for s in series[:max_series]:
            label = _labels(s.get("metric") or {})
            if kind == "matrix":
                values = [float(v[1]) for v in s.get("values") or [] if _finite(v[1])]
                if values:
                    lines.append(
                        f"{label}: {len(values)} points, first {_num(values[0])}, last {_num(values[-1])}, "
                        f"min {_num(min(values))}, max {_num(max(values))}"
                    )
                else:
                    lines.append(f"{label}: no numeric points")
            else:
                lines.append(f"{label} = {_num((s.get('value') or [None, None])[1])}")
        if n > max_series:
            lines.append(f"... {n - max_series} more series not shown")
        if not series:
            lines.append("empty result (no series match)")
    text = "\n".join(lines)
    if len(text) > max_chars:
        text = text[: max_chars - 1] + "…"
    return ToolOutput(text, f"{kind}: {n} series")


def _finite(v: Any) -> bool:
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False
