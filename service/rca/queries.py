"""Prometheus evidence for an analysis: bounded PromQL through the server's `prometheus_query` tool."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from service.knowledge import KnowledgeService
from service.observability.metrics import Metrics
from service.rca.evidence import EvidenceItem, generator_expr, iso
from service.rca.models import RcaRequest, RcaStreamEvent, ToolCallRecord
from service.settings import Settings
from service.tools.builtins import ToolContext, ToolError
from service.tools.prometheus import PrometheusQuery

QUERY_POINTS = 60  # points of a range query; the tool summarises them (first, last, min, max)
Emit = Callable[[RcaStreamEvent], Awaitable[None]]


class PrometheusEvidence:
    def __init__(self, *, knowledge: KnowledgeService, settings: Settings, metrics: Metrics) -> None:
        self.knowledge = knowledge
        self.settings = settings
        self.cfg = settings.rca
        self.metrics = metrics
        self.prometheus = PrometheusQuery()

    async def run(
        self, req: RcaRequest, first_index: int, records: list[ToolCallRecord], emit: Emit | None
    ) -> tuple[list[EvidenceItem], list[str]]:
        """Bounded PromQL through the server's `prometheus_query` tool: the caller's queries, then the
        alert's own expression (from generatorURL), over the window before the alert started."""
        tools = self.settings.tools
        limit = req.options.max_queries if req.options.max_queries is not None else self.cfg.max_queries
        if not tools.prometheus_url or limit <= 0:
            return [], []
        queries: list[str] = []
        for m in req.evidence.metrics:
            if m.query and not m.samples and m.query not in queries:
                queries.append(m.query)
        expr = generator_expr(req.alert.generatorURL)
        if expr and expr not in queries:
            queries.append(expr)
        skipped = max(0, len(queries) - limit)
        queries = queries[:limit]
        now = (datetime.now(UTC) + timedelta(seconds=1)).replace(microsecond=0)  # whole s, not before now
        start = (req.alert.startsAt or now) - timedelta(seconds=self.cfg.query_lookback_s)
        end = min(req.alert.endsAt or now, now).replace(microsecond=0)
        if end <= start:
            end = now
        # An alert firing for longer than the tool's range limit: keep the onset (where causes show) and
        # cut the window's end, rather than have every query refused for its range.
        max_range = timedelta(seconds=tools.prometheus_max_range_s)
        if end - start > max_range:
            end = start + max_range
        # Whole-second step with `end` itself an evaluation point: Prometheus evaluates at start + k*step,
        # and a point that misses `end` would miss the newest samples of a still-firing alert.
        step = max(1, math.ceil((end - start).total_seconds() / QUERY_POINTS))
        start = end - timedelta(seconds=step * QUERY_POINTS)
        ctx = ToolContext(
            knowledge=self.knowledge,
            settings=tools,
            collections=[],
            default_collection=self.settings.default_collection,
        )
        items: list[EvidenceItem] = []
        for query in queries:
            args = {"query": query, "start": iso(start), "end": iso(end), "step": f"{step}s"}
            ref = f"metric:{first_index + len(items)}"
            t0 = time.perf_counter()
            outcome = "ok"
            try:
                out = await asyncio.wait_for(self.prometheus.run(args, ctx), tools.tool_timeout_s)
                record = ToolCallRecord(name=self.prometheus.name, arguments=args, ok=True, ref=ref)
                items.append(EvidenceItem(ref, "metric", f"prometheus_query({query}) -> {out.content}"))
            except (ToolError, TimeoutError) as exc:
                outcome = "timeout" if isinstance(exc, TimeoutError) else "error"
                message = str(exc) or f"timed out after {tools.tool_timeout_s:g} s"
                record = ToolCallRecord(name=self.prometheus.name, arguments=args, ok=False, error=message)
            self.metrics.tool_calls.labels(self.prometheus.name, outcome).inc()
            self.metrics.tool_duration.labels(self.prometheus.name).observe(time.perf_counter() - t0)
            records.append(record)
            if emit is not None:
                await emit(RcaStreamEvent(type="tool_call", tool_call=record))
        notes = [
            f"{r.arguments.get('query')}: Prometheus query failed: {r.error}" for r in records if not r.ok
        ]
        if skipped:
            notes.append(f"{skipped} PromQL queries were not run (limit {limit} per analysis)")
        return items, notes
