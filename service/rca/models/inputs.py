"""Request side of the RCA contract: alerts, the evidence a caller supplies, options, webhook payloads.

Request bodies keep unknown fields (clients send extras) rather than rejecting them. See
`service.rca.models` for the rules every model of the contract follows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

AlertStatus = Literal["firing", "resolved"]
"""Alertmanager's alert status."""

RetrievalMode = Literal["hybrid", "dense", "bm25"]

_ZERO_TIME_YEAR = 1  # Alertmanager sends endsAt "0001-01-01T00:00:00Z" for alerts still firing


class _Input(BaseModel):
    """Request bodies: unknown fields are kept (clients send extras), never rejected."""

    model_config = ConfigDict(extra="allow")


class Alert(_Input):
    """One alert as Prometheus Alertmanager sends it (the objects inside a webhook's `alerts`)."""

    status: AlertStatus = Field(default="firing", description="`firing` or `resolved`.")
    labels: dict[str, str] = Field(
        description="The alert's labels; `alertname` is required. Other labels (namespace, pod, "
        "service, severity, ...) are used for retrieval and shown to the model.",
        examples=[
            {
                "alertname": "KubePodCrashLooping",
                "namespace": "shop",
                "pod": "cart-7d9f",
                "severity": "warning",
            }
        ],
    )
    annotations: dict[str, str] = Field(
        default_factory=dict,
        description="The alert's annotations (summary, description, runbook_url, ...).",
        examples=[
            {
                "summary": "Pod shop/cart-7d9f is crash looping",
                "description": "Restarted 5 times in 10 minutes.",
            }
        ],
    )
    startsAt: datetime | None = Field(default=None, description="When the alert started firing (RFC 3339).")
    endsAt: datetime | None = Field(
        default=None,
        description="When the alert resolved (RFC 3339); Alertmanager's zero time `0001-01-01T00:00:00Z` "
        "is read as absent.",
    )
    generatorURL: str | None = Field(default=None, description="Link to the expression that fired the alert.")
    fingerprint: str | None = Field(
        default=None,
        description="Alertmanager's fingerprint of the label set; computed from `labels` when absent. "
        "Analyses are deduplicated by it.",
    )

    @field_validator("labels")
    @classmethod
    def _has_alertname(cls, v: dict[str, str]) -> dict[str, str]:
        if not str(v.get("alertname", "")).strip():
            raise PydanticCustomError(
                "missing_alertname", "labels.alertname is required (a non-empty string)"
            )
        return v

    @field_validator("endsAt")
    @classmethod
    def _zero_time(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.year <= _ZERO_TIME_YEAR:
            return None
        return v

    @property
    def alertname(self) -> str:
        return self.labels["alertname"]


class LogEvidence(_Input):
    """A log line the caller already has."""

    text: str = Field(description="The log line (long lines are cut to the evidence budget).")
    timestamp: datetime | None = Field(default=None, description="When it was logged.")
    source: str | None = Field(default=None, description="Where it came from (pod, container, file, ...).")


class MetricSample(_Input):
    """One sample of a metric series."""

    timestamp: datetime = Field(description="Sample time (RFC 3339).")
    value: float = Field(description="Sample value.")


class MetricEvidence(_Input):
    """A metric series the caller already has, or a PromQL query for the server to run.

    With `query` and no `samples`, the server runs the query through its `prometheus_query` tool when
    `options.prometheus` is on and Prometheus is configured; otherwise the query is shown as is.
    """

    name: str | None = Field(
        default=None, description="Metric or series name.", examples=["http_requests_total"]
    )
    query: str | None = Field(
        default=None,
        description="PromQL expression.",
        examples=['rate(http_requests_total{code=~"5.."}[5m])'],
    )
    labels: dict[str, str] = Field(default_factory=dict, description="Series labels.")
    samples: list[MetricSample] = Field(default_factory=list, description="Samples, oldest first.")


class TraceEvidence(_Input):
    """A trace or span the caller already has."""

    trace_id: str = Field(description="Trace id.")
    span_id: str | None = Field(default=None, description="Span id.")
    service: str | None = Field(default=None, description="Service that emitted the span.")
    name: str | None = Field(default=None, description="Span or operation name.")
    duration_ms: float | None = Field(default=None, ge=0, description="Span duration in milliseconds.")
    status: str | None = Field(default=None, description="Span status (ok, error, ...).")
    attributes: dict[str, str] = Field(default_factory=dict, description="Span attributes.")


class ChangeEvidence(_Input):
    """A recent change (deployment, config change, feature flag, ...)."""

    description: str = Field(description="What changed.", examples=["cart v2.3.1 rolled out"])
    id: str | None = Field(default=None, description="Change id in the caller's system.")
    timestamp: datetime | None = Field(default=None, description="When it happened.")
    kind: str | None = Field(default=None, description="Kind of change (deploy, config, flag, ...).")
    author: str | None = Field(default=None, description="Who made it.")


class RcaEvidence(_Input):
    """Evidence the caller already has. Items are numbered from 0 per kind (`log:0`, `metric:2`, ...);
    evidence references in the analysis use these ids. Evidence beyond the server's budget is
    dropped or cut, and `missing_data` says so."""

    logs: list[LogEvidence] = Field(default_factory=list, description="Log lines, ids `log:<n>`.")
    metrics: list[MetricEvidence] = Field(
        default_factory=list, description="Metrics or PromQL, ids `metric:<n>`."
    )
    traces: list[TraceEvidence] = Field(default_factory=list, description="Traces or spans, ids `trace:<n>`.")
    changes: list[ChangeEvidence] = Field(
        default_factory=list, description="Recent changes, ids `change:<n>`."
    )


class RcaOptions(_Input):
    """Knobs of one analysis; server settings supply the defaults and the upper bounds."""

    top_k: int | None = Field(default=None, ge=1, le=10, description="Runbook passages to retrieve.")
    mode: RetrievalMode | None = Field(default=None, description="Retrieval mode (default hybrid).")
    min_score: float | None = Field(
        default=None,
        ge=0,
        description="Relevance threshold: a passage counts as a runbook when it names the alert, or when its "
        "dense cosine similarity to the alert text (modes hybrid and dense) or its BM25 score (mode bm25) "
        "reaches this. Server default (rca.min_dense_score / rca.min_bm25_score) when absent.",
    )
    prometheus: bool = Field(
        default=True,
        description="Run PromQL queries (from `evidence.metrics[].query` and the alert) through the server's "
        "`prometheus_query` tool, bounded by `max_queries`, when Prometheus is configured.",
    )
    max_queries: int | None = Field(
        default=None, ge=0, le=10, description="At most this many Prometheus queries."
    )
    max_hypotheses: int | None = Field(default=None, ge=1, le=5, description="At most this many hypotheses.")
    max_tokens: int | None = Field(
        default=None, ge=64, le=4096, description="Output token limit of the model."
    )
    model: str | None = Field(
        default=None, description="Model or LoRA adapter (default: the served base model)."
    )


class RcaRequest(_Input):
    """Body of `POST /v1/rca`."""

    alert: Alert = Field(description="The alert to analyse.")
    evidence: RcaEvidence = Field(default_factory=RcaEvidence, description="Evidence the caller already has.")
    collection: str | None = Field(
        default=None, description="Knowledge-base collection to search (default one)."
    )
    options: RcaOptions = Field(default_factory=RcaOptions, description="Analysis options.")
    stream: bool = Field(
        default=False,
        description="Stream progress as server-sent events (`RcaStreamEvent` objects, then `data: [DONE]`).",
    )


class AlertmanagerWebhook(_Input):
    """Prometheus Alertmanager's webhook payload (version 4)."""

    version: str = Field(default="4", description="Payload version; `4`.")
    groupKey: str = Field(default="", description="Key identifying the alert group.")
    truncatedAlerts: int = Field(default=0, ge=0, description="Alerts dropped by Alertmanager's max_alerts.")
    status: AlertStatus = Field(description="Status of the group: firing if any alert fires.")
    receiver: str = Field(default="", description="Receiver name.")
    groupLabels: dict[str, str] = Field(default_factory=dict, description="Labels the group is keyed on.")
    commonLabels: dict[str, str] = Field(default_factory=dict, description="Labels shared by all alerts.")
    commonAnnotations: dict[str, str] = Field(
        default_factory=dict, description="Annotations shared by all alerts."
    )
    externalURL: str = Field(default="", description="Alertmanager's external URL.")
    alerts: list[Alert] = Field(description="The alerts of the group.")
