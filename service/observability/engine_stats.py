"""vLLM's own statistics, re-exported as `ragserve_engine_*` series.

The engine (embedded child or remote deployment) serves Prometheus text at `<engine>/metrics`.
When our `/metrics` is scraped, `refresh()` fetches it with a short timeout, keeps a few series
and sums them over vLLM's `engine`/`model_name` labels, so dashboards need one scrape target per
gateway whatever the deployment shape. If the engine does not answer, the engine series are left
out (no stale values) and `ragserve_engine_metrics_up` is 0.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import httpx
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

logger = logging.getLogger("ragserve.observability")


@dataclass(frozen=True)
class _Series:
    target: str  # our family name (counters without `_total`)
    kind: str  # "gauge" | "counter" | "histogram"
    help: str


# vLLM metric name (counters and histograms without their suffixes) -> what we export.
# Names checked against vllm/v1/metrics/loggers.py of the pinned release.
SELECTED: dict[str, _Series] = {
    "vllm:num_requests_running": _Series(
        "ragserve_engine_requests_running", "gauge", "Requests in the engine's running batches (vLLM)"
    ),
    "vllm:num_requests_waiting": _Series(
        "ragserve_engine_requests_waiting", "gauge", "Requests queued inside the engine (vLLM)"
    ),
    "vllm:kv_cache_usage_perc": _Series(
        "ragserve_engine_kv_cache_usage_ratio", "gauge", "Share of the KV cache in use, 0..1 (vLLM)"
    ),
    "vllm:num_preemptions": _Series(
        "ragserve_engine_preemptions", "counter", "Requests preempted for lack of KV cache (vLLM)"
    ),
    "vllm:prompt_tokens": _Series("ragserve_engine_prompt_tokens", "counter", "Prefill tokens (vLLM)"),
    "vllm:generation_tokens": _Series(
        "ragserve_engine_generation_tokens", "counter", "Generated tokens, all clients (vLLM)"
    ),
    "vllm:prefix_cache_queries": _Series(
        "ragserve_engine_prefix_cache_queries", "counter", "Tokens looked up in the prefix cache (vLLM)"
    ),
    "vllm:prefix_cache_hits": _Series(
        "ragserve_engine_prefix_cache_hits", "counter", "Tokens found in the prefix cache (vLLM)"
    ),
    "vllm:request_queue_time_seconds": _Series(
        "ragserve_engine_request_queue_time_seconds", "histogram", "Time requests waited in the engine queue"
    ),
    "vllm:time_to_first_token_seconds": _Series(
        "ragserve_engine_time_to_first_token_seconds", "histogram", "Engine-side time to first token (vLLM)"
    ),
}


@dataclass
class _Histogram:
    buckets: dict[float, float] = field(default_factory=dict)
    sum: float = 0.0


@dataclass
class _Snapshot:
    values: dict[str, float] = field(default_factory=dict)  # gauges and counters, by target name
    histograms: dict[str, _Histogram] = field(default_factory=dict)


def _selected(sample_name: str) -> tuple[_Series, str] | None:
    """The series a sample belongs to and its suffix; by sample name, whatever the TYPE lines say."""
    series = SELECTED.get(sample_name)
    if series is not None and series.kind == "gauge":
        return series, ""
    for suffix in ("_total", "_bucket", "_sum"):
        if sample_name.endswith(suffix):
            series = SELECTED.get(sample_name[: -len(suffix)])
            if series is not None and series.kind != "gauge":
                return series, suffix
    return None


def parse_engine_metrics(text: str) -> _Snapshot:
    """Keep the selected vLLM series, summed over their labels (histograms bucket by bucket)."""
    snap = _Snapshot()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found = _selected(s.name)
            if found is None:
                continue
            series, suffix = found
            if series.kind == "histogram":
                h = snap.histograms.setdefault(series.target, _Histogram())
                if suffix == "_bucket":
                    le = float(s.labels["le"])
                    h.buckets[le] = h.buckets.get(le, 0.0) + s.value
                elif suffix == "_sum":
                    h.sum += s.value
            elif series.kind == "gauge" or suffix == "_total":
                snap.values[series.target] = snap.values.get(series.target, 0.0) + s.value
    return snap


class EngineStats(Collector):
    """A collector whose samples come from the engine's /metrics, refreshed before each scrape."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._snapshot: _Snapshot | None = None
        self._scrape_seconds = 0.0
        self._url: str | None = None
        self._client: httpx.AsyncClient | None = None
        self._lock = asyncio.Lock()
        registry.register(self)

    def attach(self, base_url: str, *, api_key: str | None = None, timeout_s: float = 1.0) -> None:
        """Point at an engine root (embedded or remote); called from the app's lifespan."""
        self._url = base_url.rstrip("/") + "/metrics"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(timeout_s))

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def refresh(self) -> None:
        """Fetch and parse the engine's metrics; on any failure, report the engine series as absent."""
        if self._client is None or self._url is None:
            return
        async with self._lock:
            t0 = time.perf_counter()
            try:
                r = await self._client.get(self._url)
                r.raise_for_status()
                self._snapshot = parse_engine_metrics(r.text)
            except (httpx.HTTPError, ValueError) as exc:
                if self._snapshot is not None:
                    logger.info("engine metrics unavailable: %s: %s", type(exc).__name__, exc)
                self._snapshot = None
            self._scrape_seconds = time.perf_counter() - t0

    def describe(self) -> Iterable[Metric]:
        yield GaugeMetricFamily("ragserve_engine_metrics_up", "1 when the engine's /metrics was read")
        yield GaugeMetricFamily("ragserve_engine_metrics_scrape_duration_seconds", "Engine scrape time")
        for series in SELECTED.values():
            family: Metric = _FAMILY[series.kind](series.target, series.help)
            yield family

    def collect(self) -> Iterable[Metric]:
        yield GaugeMetricFamily(
            "ragserve_engine_metrics_up",
            "1 when the engine's /metrics was read at this scrape, 0 otherwise",
            value=1.0 if self._snapshot is not None else 0.0,
        )
        yield GaugeMetricFamily(
            "ragserve_engine_metrics_scrape_duration_seconds",
            "Time taken to read the engine's /metrics at this scrape",
            value=self._scrape_seconds,
        )
        if self._snapshot is not None:
            yield from _families(self._snapshot)


_FAMILY: dict[str, type[GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily]] = {
    "gauge": GaugeMetricFamily,
    "counter": CounterMetricFamily,
    "histogram": HistogramMetricFamily,
}


def _families(snap: _Snapshot) -> Iterator[Metric]:
    """The selected series present in the engine's text (an older vLLM may lack some)."""
    for series in SELECTED.values():
        if series.kind == "histogram":
            h = snap.histograms.get(series.target)
            if h is not None and h.buckets:
                buckets = [("+Inf" if math.isinf(le) else repr(le), v) for le, v in sorted(h.buckets.items())]
                yield HistogramMetricFamily(series.target, series.help, buckets=buckets, sum_value=h.sum)
        elif series.target in snap.values:
            value = snap.values[series.target]
            if series.kind == "counter":
                yield CounterMetricFamily(series.target, series.help, value=value)
            else:
                yield GaugeMetricFamily(series.target, series.help, value=value)
