"""Public contract of the root-cause-analysis API (`/v1/rca`, `/v1/alertmanager/webhook`).

These pydantic models are the OpenAPI schema that typed Java and TypeScript clients are generated
from, so every field carries a description, closed value sets are `Literal`s (OpenAPI enums), and
field names follow the issue and Prometheus Alertmanager exactly (`startsAt`, `generatorURL`, ...).
Keep them stable: other programs are built against them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

AlertStatus = Literal["firing", "resolved"]
"""Alertmanager's alert status."""

AnalysisStatus = Literal["queued", "running", "completed", "failed"]
"""Where a stored analysis is in its life: waiting for a worker, being generated, done, or failed."""

Severity = Literal["critical", "warning", "info", "unknown"]
"""The analysis' judgement of how serious the incident is."""

EvidenceKind = Literal["runbook", "log", "metric", "trace", "change"]
"""What an evidence reference points at: a retrieved runbook passage or an item the caller supplied."""

RetrievalMode = Literal["hybrid", "dense", "bm25"]

AnalysisSource = Literal["api", "webhook"]
"""How the analysis was requested: `POST /v1/rca` or the Alertmanager webhook."""

StreamEventType = Literal["retrieval", "tool_call", "analysis_delta", "analysis_done", "result", "error"]
"""Progress events of a streamed analysis, in the order they are sent."""

WebhookAction = Literal["queued", "duplicate", "resolved", "ignored"]
"""What the webhook did with one alert: queued an analysis, skipped it as already analysed or in
progress, marked the stored analysis resolved, or ignored it (resolved alert with nothing stored)."""

_ZERO_TIME_YEAR = 1  # Alertmanager sends endsAt "0001-01-01T00:00:00Z" for alerts still firing


class _Input(BaseModel):
    """Request bodies: unknown fields are kept (clients send extras), never rejected."""

    model_config = ConfigDict(extra="allow")


class _Output(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------------------- inputs


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


# -------------------------------------------------------------------------------------- outputs


class EvidenceRef(_Output):
    """One piece of evidence for a hypothesis. `ref` names an item that was really supplied or
    retrieved (checked by the server); `excerpt` is the server's copy of that item's text."""

    kind: EvidenceKind = Field(description="What `ref` points at.")
    ref: str = Field(
        description="Id of the item: `runbook:<n>` (index in `runbooks`), `log:<n>`, `metric:<n>`, "
        "`trace:<n>`, `change:<n>` (position in the request's evidence lists).",
        examples=["runbook:1", "log:0"],
    )
    excerpt: str = Field(description="Text of the referenced item (from the server, never from the model).")


class Hypothesis(_Output):
    """One candidate root cause."""

    title: str = Field(description="Short name of the suspected cause.")
    confidence: float = Field(ge=0.0, le=1.0, description="Model's confidence, 0 to 1.")
    reasoning: str = Field(description="Why the evidence points here.")
    evidence: list[EvidenceRef] = Field(description="Verified evidence references.")
    checks: list[str] = Field(description="Commands or queries to run to confirm or rule out the hypothesis.")
    remediation: str = Field(description="What to do if the hypothesis holds.")


class RunbookCitation(_Output):
    """A retrieved knowledge-base passage judged relevant to the alert (built by the server)."""

    index: int = Field(ge=1, description="1-based number; evidence refers to it as `runbook:<index>`.")
    ref: str = Field(description="`runbook:<index>`.", examples=["runbook:1"])
    chunk_id: str = Field(description="Chunk id in the collection.")
    document_id: str = Field(
        description="Document id (path relative to the ingested directory, or JSONL id)."
    )
    source: str = Field(description="Source file or URL.")
    page: int | None = Field(default=None, description="Page number for paged documents.")
    score: float = Field(description="Retrieval score (scale depends on the mode).")
    text: str = Field(description="Passage text.")


class ToolCallRecord(_Output):
    """One server-side tool call made for the analysis (e.g. a bounded Prometheus query)."""

    name: str = Field(description="Tool name, e.g. `prometheus_query`.")
    arguments: dict[str, Any] = Field(description="Arguments the tool was called with.")
    ok: bool = Field(description="Whether the call succeeded.")
    ref: str | None = Field(default=None, description="Evidence id its result was given (`metric:<n>`).")
    error: str | None = Field(default=None, description="Error message when the call failed.")


class RcaUsage(_Output):
    """Token counts of the model call."""

    prompt_tokens: int = Field(ge=0, description="Prompt tokens, summed over attempts.")
    completion_tokens: int = Field(ge=0, description="Generated tokens, summed over attempts.")
    total_tokens: int = Field(ge=0, description="Prompt plus generated tokens.")


class RcaAnalysis(_Output):
    """The structured analysis. Hypotheses are generated under vLLM structured outputs; runbooks are
    built by the server from retrieval; evidence references are verified by the server."""

    summary: str = Field(description="One- or two-sentence summary of the incident.")
    severity: Severity = Field(description="Judged severity.")
    hypotheses: list[Hypothesis] = Field(description="Candidate root causes, most likely first.")
    runbooks: list[RunbookCitation] = Field(
        description="Relevant runbook passages; empty when none in the collection matches the alert."
    )
    missing_data: list[str] = Field(
        description="What the analysis lacked or dropped: no matching runbook, evidence cut by the budget, "
        "failed queries, data worth collecting."
    )


class AlertSummary(_Output):
    """The alert an analysis is about."""

    alertname: str = Field(description="`labels.alertname`.")
    fingerprint: str = Field(description="Alertmanager fingerprint (or computed from the labels).")
    status: AlertStatus = Field(description="Latest known alert status.")
    labels: dict[str, str] = Field(description="Alert labels.")
    annotations: dict[str, str] = Field(description="Alert annotations.")
    startsAt: datetime | None = Field(default=None, description="When the alert started firing.")
    endsAt: datetime | None = Field(default=None, description="When the alert resolved.")
    generatorURL: str | None = Field(default=None, description="Link to the alert's expression.")


class RcaResponse(RcaAnalysis):
    """Response of `POST /v1/rca` (and `result` of a stored analysis): the analysis plus metadata."""

    id: str = Field(
        description="Analysis id; `GET /v1/rca/analyses/{id}` returns it again.",
        examples=["rca_9f1c2d3e4b5a"],
    )
    object: Literal["rca.analysis"] = Field(default="rca.analysis", description="Object type.")
    created: int = Field(description="Unix time the analysis finished.")
    model: str = Field(description="Model that generated the analysis.")
    collection: str = Field(description="Collection searched.")
    alert: AlertSummary = Field(description="The analysed alert.")
    tool_calls: list[ToolCallRecord] = Field(default_factory=list, description="Server-side tool calls made.")
    usage: RcaUsage | None = Field(default=None, description="Token usage of the model call.")
    latency_ms: float = Field(ge=0, description="Wall time of the analysis in milliseconds.")


class StoredAnalysis(_Output):
    """An analysis kept by the server (from the webhook or `POST /v1/rca`)."""

    id: str = Field(description="Analysis id.")
    object: Literal["rca.stored_analysis"] = Field(default="rca.stored_analysis", description="Object type.")
    status: AnalysisStatus = Field(description="Analysis status.")
    alert_status: AlertStatus = Field(description="Latest known status of the alert.")
    source: AnalysisSource = Field(description="How the analysis was requested.")
    alertname: str = Field(description="`labels.alertname` of the alert.")
    fingerprint: str = Field(description="Alert fingerprint; deduplication key.")
    collection: str = Field(description="Collection searched.")
    alert: AlertSummary = Field(description="The alert.")
    created_at: datetime = Field(description="When the analysis was requested.")
    updated_at: datetime = Field(description="Last change of this record.")
    started_at: datetime | None = Field(default=None, description="When a worker started it.")
    completed_at: datetime | None = Field(default=None, description="When it completed or failed.")
    resolved_at: datetime | None = Field(default=None, description="When the alert was reported resolved.")
    error: str | None = Field(default=None, description="Failure message when `status` is `failed`.")
    result: RcaResponse | None = Field(default=None, description="The analysis once `status` is `completed`.")


class StoredAnalysisList(_Output):
    """A page of stored analyses, newest first."""

    object: Literal["list"] = Field(default="list", description="Object type.")
    data: list[StoredAnalysis] = Field(description="Analyses on this page.")
    total: int = Field(ge=0, description="Analyses matching the filters, across all pages.")
    limit: int = Field(ge=1, description="Page size used.")
    offset: int = Field(ge=0, description="Position of the first item of this page.")
    has_more: bool = Field(description="Whether more pages follow.")
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` to get the next page (null on the last page)."
    )


class WebhookAlertResult(_Output):
    """What the webhook did with one alert of the payload."""

    alertname: str = Field(description="`labels.alertname`.")
    fingerprint: str = Field(description="Alert fingerprint.")
    status: AlertStatus = Field(description="Alert status in the payload.")
    action: WebhookAction = Field(description="What was done.")
    analysis_id: str | None = Field(default=None, description="Analysis queued, found or resolved.")


class WebhookResponse(_Output):
    """Response of `POST /v1/alertmanager/webhook` (202: analyses run in the background)."""

    object: Literal["rca.webhook_result"] = Field(default="rca.webhook_result", description="Object type.")
    groupKey: str = Field(description="The payload's groupKey.")
    alerts: list[WebhookAlertResult] = Field(description="One entry per alert of the payload.")


class RcaStreamError(_Output):
    """Error travelling inside a stream (same fields as the OpenAI error envelope's `error`)."""

    message: str = Field(description="What went wrong, for the user.")
    type: str = Field(description="Error type, as in the OpenAI envelope (e.g. `server_error`).")
    param: str | None = Field(default=None, description="The request field at fault, if any.")
    code: str | None = Field(default=None, description="Machine-readable code (e.g. `invalid_analysis`).")


class RcaStreamEvent(_Output):
    """One server-sent event of a streamed analysis (`data: <json>`), ended by `data: [DONE]`.

    Order: `retrieval` (runbooks found), zero or more `tool_call`, `analysis_delta` chunks of the
    model's JSON (for display only), `analysis_done`, then `result` with the verified analysis
    (or `error`)."""

    type: StreamEventType = Field(description="Event type.")
    runbooks: list[RunbookCitation] | None = Field(default=None, description="`retrieval`: runbooks found.")
    tool_call: ToolCallRecord | None = Field(default=None, description="`tool_call`: the call made.")
    delta: str | None = Field(default=None, description="`analysis_delta`: next piece of the model's JSON.")
    result: RcaResponse | None = Field(default=None, description="`result`: the final, verified analysis.")
    error: RcaStreamError | None = Field(default=None, description="`error`: what went wrong.")


def utcnow() -> datetime:
    return datetime.now(UTC)
