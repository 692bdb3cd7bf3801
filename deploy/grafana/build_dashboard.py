"""Writes ragserve.json, the Grafana dashboard: `python deploy/grafana/build_dashboard.py`.

The JSON is generated so panels stay consistent (one datasource variable, one `job` filter,
units in base units); edit this file, regenerate, and commit both. A test checks they agree and
that every series the panels query exists in ragserve's /metrics.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).with_name("ragserve.json")
J = '{job=~"$job"}'
JS = 'job=~"$job"'  # for selectors that already have labels

_ids = iter(range(1, 1000))


def panel(
    title: str,
    targets: list[tuple[str, str]],
    *,
    unit: str = "short",
    x: int,
    y: int,
    w: int = 8,
    h: int = 8,
    kind: str = "timeseries",
    description: str = "",
    max_: float | None = None,
) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": unit}
    if max_ is not None:
        defaults["max"] = max_
        defaults["min"] = 0
    return {
        "id": next(_ids),
        "type": kind,
        "title": title,
        "description": description,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}}
        if kind == "timeseries"
        else {"reduceOptions": {"calcs": ["lastNotNull"]}},
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "expr": expr,
                "legendFormat": legend,
                "datasource": {"uid": "${datasource}"},
            }
            for i, (expr, legend) in enumerate(targets)
        ],
    }


def row(title: str, y: int) -> dict[str, Any]:
    return {
        "id": next(_ids),
        "type": "row",
        "title": title,
        "collapsed": False,
        "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
        "panels": [],
    }


def q(metric_sum: str, by: str, window: str = "$__rate_interval") -> str:
    return f"sum by ({by}) (rate({metric_sum}[{window}]))"


def quantile(p: float, metric: str, by: str, selector: str = J) -> str:
    return f"histogram_quantile({p}, sum by ({by}, le) (rate({metric}_bucket{selector}[$__rate_interval])))"


def build() -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    y = 0
    panels.append(row("Overview", y))
    y += 1
    panels += [
        panel(
            "Engine up",
            [(f"min(ragserve_engine_up{J})", "engine up")],
            kind="stat",
            x=0,
            y=y,
            w=4,
            h=4,
            description="1 when the gateway reaches vLLM",
        ),
        panel(
            "Engine metrics readable",
            [(f"min(ragserve_engine_metrics_up{J})", "engine /metrics")],
            kind="stat",
            x=4,
            y=y,
            w=4,
            h=4,
        ),
        panel(
            "Requests/s",
            [(f"sum(rate(ragserve_http_requests_total{J}[$__rate_interval]))", "req/s")],
            unit="reqps",
            kind="stat",
            x=8,
            y=y,
            w=4,
            h=4,
        ),
        panel(
            "5xx ratio",
            [
                (
                    f'sum(rate(ragserve_http_requests_total{{{JS},status=~"5.."}}[$__rate_interval]))'
                    f" / sum(rate(ragserve_http_requests_total{J}[$__rate_interval]))",
                    "5xx",
                )
            ],
            unit="percentunit",
            kind="stat",
            x=12,
            y=y,
            w=4,
            h=4,
        ),
        panel(
            "Build",
            [(f"ragserve_build_info{J}", "{{version}} {{model}} {{embedder}}")],
            kind="stat",
            x=16,
            y=y,
            w=8,
            h=4,
        ),
    ]
    y += 4
    panels += [
        panel(
            "Requests by route and status",
            [
                (
                    f"sum by (route, status) (rate(ragserve_http_requests_total{J}[$__rate_interval]))",
                    "{{route}} {{status}}",
                )
            ],
            unit="reqps",
            x=0,
            y=y,
        ),
        panel(
            "HTTP latency p50 / p95 / p99",
            [
                (
                    quantile(p, "ragserve_http_request_duration_seconds", "route"),
                    f"p{int(p * 100)} {{{{route}}}}",
                )
                for p in (0.5, 0.95, 0.99)
            ],
            unit="s",
            x=8,
            y=y,
        ),
        panel(
            "Errors by route and status",
            [
                (
                    f'sum by (route, status) (rate(ragserve_http_requests_total{{{JS},status=~"[45].."}}'
                    f"[$__rate_interval]))",
                    "{{route}} {{status}}",
                )
            ],
            unit="reqps",
            x=16,
            y=y,
        ),
    ]
    y += 8
    panels.append(row("Generation", y))
    y += 1
    panels += [
        panel(
            "Time to first token p50 / p95 / p99",
            [
                (
                    quantile(p, "ragserve_time_to_first_token_seconds", "model"),
                    f"p{int(p * 100)} {{{{model}}}}",
                )
                for p in (0.5, 0.95, 0.99)
            ]
            + [(quantile(0.95, "ragserve_engine_time_to_first_token_seconds", "job"), "p95 inside vLLM")],
            unit="s",
            x=0,
            y=y,
            description="Gateway TTFT includes retrieval and the prompt; the vLLM line is the engine alone",
        ),
        panel(
            "Inter-token latency p50 / p99",
            [
                (
                    quantile(p, "ragserve_inter_token_latency_seconds", "model"),
                    f"p{int(p * 100)} {{{{model}}}}",
                )
                for p in (0.5, 0.99)
            ],
            unit="s",
            x=8,
            y=y,
        ),
        panel(
            "Tokens/s by model",
            [
                (q(f"ragserve_generation_tokens_total{J}", "model"), "generated {{model}}"),
                (q(f"ragserve_prompt_tokens_total{J}", "model"), "prompt {{model}}"),
            ],
            unit="short",
            x=16,
            y=y,
        ),
    ]
    y += 8
    panels += [
        panel(
            "In flight and queued",
            [
                (f"sum by (endpoint) (ragserve_requests_in_flight{J})", "in flight {{endpoint}}"),
                (f"sum(ragserve_admission_queue_depth{J})", "queued in the gateway"),
                (
                    f"sum by (endpoint) (ragserve_requests_awaiting_first_token{J})",
                    "awaiting first token {{endpoint}}",
                ),
                (f"max(ragserve_engine_requests_running{J})", "vLLM running"),
                (f"max(ragserve_engine_requests_waiting{J})", "vLLM waiting"),
            ],
            x=0,
            y=y,
        ),
        panel(
            "Finish reasons",
            [(q(f"ragserve_finish_reason_total{J}", "reason"), "{{reason}}")],
            unit="short",
            x=8,
            y=y,
        ),
        panel(
            "SLO: share of first tokens over 2.5 s",
            [
                (f"ragserve:ttft_slo_miss:ratio_rate5m{J}", "5m"),
                (f"ragserve:ttft_slo_miss:ratio_rate1h{J}", "1h"),
                (f"ragserve:ttft_slo_miss:ratio_rate6h{J}", "6h"),
            ],
            unit="percentunit",
            x=16,
            y=y,
            description="Budget: 5%. Recording rules from deploy/prometheus/ragserve-rules.yml",
        ),
    ]
    y += 8
    panels.append(row("Engine (vLLM statistics)", y))
    y += 1
    panels += [
        panel(
            "KV cache usage",
            [(f"max(ragserve_engine_kv_cache_usage_ratio{J})", "KV cache")],
            unit="percentunit",
            max_=1,
            x=0,
            y=y,
        ),
        panel(
            "Preemptions/s",
            [(f"max(rate(ragserve_engine_preemptions_total{J}[$__rate_interval]))", "preemptions")],
            x=8,
            y=y,
        ),
        panel(
            "Engine queue time p95 and restarts",
            [
                (quantile(0.95, "ragserve_engine_request_queue_time_seconds", "job"), "queue time p95"),
                (f"sum(increase(ragserve_engine_restarts_total{J}[1h]))", "restarts in 1h"),
            ],
            unit="s",
            x=16,
            y=y,
        ),
    ]
    y += 8
    panels.append(row("Retrieval and knowledge base", y))
    y += 1
    panels += [
        panel(
            "Retrieval stage p95",
            [
                (quantile(0.95, "ragserve_retrieval_duration_seconds", "stage"), "{{stage}}"),
                (quantile(0.95, "ragserve_retrieval_request_duration_seconds", "mode"), "whole ({{mode}})"),
            ],
            unit="s",
            x=0,
            y=y,
        ),
        panel(
            "Hits per retrieval and empty results",
            [
                (
                    f"sum by (collection) (rate(ragserve_retrieval_hits_sum{J}[$__rate_interval]))"
                    f" / sum by (collection) (rate(ragserve_retrieval_hits_count{J}[$__rate_interval]))",
                    "mean hits {{collection}}",
                ),
                (f"ragserve:retrieval_empty:ratio_rate5m{J}", "empty share {{collection}}"),
            ],
            x=8,
            y=y,
        ),
        panel(
            "Index size and age",
            [
                (f"max by (collection) (ragserve_index_chunks{J})", "chunks {{collection}}"),
                (f"max by (collection) (ragserve_index_documents{J})", "documents {{collection}}"),
                (f"max by (collection) (ragserve_index_age_seconds{J}) / 86400", "age days {{collection}}"),
            ],
            x=16,
            y=y,
        ),
    ]
    y += 8
    panels.append(row("Answer quality and safety", y))
    y += 1
    panels += [
        panel(
            'Answers without citations / saying "don\'t know"',
            [
                (f"ragserve:rag_uncited_answers:ratio_rate1h{J}", "uncited {{collection}}"),
                (f"ragserve:rag_dont_know_answers:ratio_rate1h{J}", "don't know {{collection}}"),
            ],
            unit="percentunit",
            x=0,
            y=y,
        ),
        panel(
            "Citations per answer (mean)",
            [
                (
                    f"sum by (collection) (rate(ragserve_rag_citations_sum{J}[$__rate_interval]))"
                    f" / sum by (collection) (rate(ragserve_rag_citations_count{J}[$__rate_interval]))",
                    "{{collection}}",
                )
            ],
            x=8,
            y=y,
        ),
        panel(
            "Safety blocks/s",
            [(q(f"ragserve_safety_blocks_total{J}", "direction"), "{{direction}}")],
            x=16,
            y=y,
        ),
    ]
    y += 8
    panels.append(row("Ingestion", y))
    y += 1
    panels += [
        panel(
            "Documents and chunks ingested",
            [
                (f"sum by (outcome) (increase(ragserve_ingest_documents_total{J}[$__range]))", "{{outcome}}"),
                (f"sum(increase(ragserve_ingest_chunks_total{J}[$__range]))", "chunks"),
            ],
            kind="stat",
            x=0,
            y=y,
        ),
        panel(
            "Failures by reason",
            [(f"sum by (reason) (increase(ragserve_ingest_failures_total{J}[1h]))", "{{reason}}")],
            x=8,
            y=y,
        ),
        panel(
            "Jobs and job duration p95",
            [
                (f"sum by (status) (increase(ragserve_ingest_jobs_total{J}[1h]))", "jobs {{status}} /h"),
                (quantile(0.95, "ragserve_ingest_job_duration_seconds", "job"), "duration p95 (s)"),
            ],
            x=16,
            y=y,
        ),
    ]
    return {
        "title": "ragserve",
        "uid": "ragserve-overview",
        "description": "ragserve: HTTP, generation, vLLM engine, retrieval, answer quality, ingestion",
        "tags": ["ragserve", "llm", "rag"],
        "editable": True,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "timezone": "browser",
        "graphTooltip": 1,
        "templating": {
            "list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"},
                {
                    "name": "job",
                    "type": "query",
                    "label": "job",
                    "datasource": {"uid": "${datasource}"},
                    "query": {"query": "label_values(ragserve_build_info, job)", "refId": "job"},
                    "definition": "label_values(ragserve_build_info, job)",
                    "includeAll": True,
                    "multi": True,
                    "allValue": ".*",
                    "refresh": 2,
                    "current": {"text": "All", "value": "$__all"},
                },
            ]
        },
        "annotations": {"list": []},
        "links": [],
        "panels": panels,
    }


def render() -> str:
    global _ids
    _ids = iter(range(1, 1000))
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    OUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUT}")
