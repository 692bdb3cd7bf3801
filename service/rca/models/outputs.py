"""Response side of the RCA contract: analyses, stored analyses, webhook results, stream events.

Responses forbid extra fields, so the OpenAPI schema lists everything a client can receive. See
`service.rca.models` for the rules every model of the contract follows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.rca.models.inputs import AlertStatus

AnalysisStatus = Literal["queued", "running", "completed", "failed"]
"""Where a stored analysis is in its life: waiting for a worker, being generated, done, or failed."""

Severity = Literal["critical", "warning", "info", "unknown"]
"""The analysis' judgement of how serious the incident is."""

EvidenceKind = Literal["runbook", "log", "metric", "trace", "change"]
"""What an evidence reference points at: a retrieved runbook passage or an item the caller supplied."""

AnalysisSource = Literal["api", "webhook"]
"""How the analysis was requested: `POST /v1/rca` or the Alertmanager webhook."""

StreamEventType = Literal["retrieval", "tool_call", "analysis_delta", "analysis_done", "result", "error"]
"""Progress events of a streamed analysis, in the order they are sent."""

WebhookAction = Literal["queued", "duplicate", "resolved", "ignored"]
"""What the webhook did with one alert: queued an analysis, skipped it as already analysed or in
progress, marked the stored analysis resolved, or ignored it (resolved alert with nothing stored)."""


class _Output(BaseModel):
    model_config = ConfigDict(extra="forbid")


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
