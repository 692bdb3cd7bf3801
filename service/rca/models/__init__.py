"""Public contract of the root-cause-analysis API (`/v1/rca`, `/v1/alertmanager/webhook`).

These pydantic models are the OpenAPI schema that typed Java and TypeScript clients are generated
from, so every field carries a description, closed value sets are `Literal`s (OpenAPI enums), and
field names follow the issue and Prometheus Alertmanager exactly (`startsAt`, `generatorURL`, ...).
Keep them stable: other programs are built against them. What comes in is in `inputs`, what goes
out in `outputs`; both are imported from here.
"""

from __future__ import annotations

from service.rca.models.inputs import (
    Alert,
    AlertmanagerWebhook,
    AlertStatus,
    ChangeEvidence,
    LogEvidence,
    MetricEvidence,
    MetricSample,
    RcaEvidence,
    RcaOptions,
    RcaRequest,
    RetrievalMode,
    TraceEvidence,
)
from service.rca.models.outputs import (
    AlertSummary,
    AnalysisSource,
    AnalysisStatus,
    EvidenceKind,
    EvidenceRef,
    Hypothesis,
    RcaAnalysis,
    RcaResponse,
    RcaStreamError,
    RcaStreamEvent,
    RcaUsage,
    RunbookCitation,
    Severity,
    StoredAnalysis,
    StoredAnalysisList,
    StreamEventType,
    ToolCallRecord,
    WebhookAction,
    WebhookAlertResult,
    WebhookResponse,
)

__all__ = [
    "Alert",
    "AlertStatus",
    "AlertSummary",
    "AlertmanagerWebhook",
    "AnalysisSource",
    "AnalysisStatus",
    "ChangeEvidence",
    "EvidenceKind",
    "EvidenceRef",
    "Hypothesis",
    "LogEvidence",
    "MetricEvidence",
    "MetricSample",
    "RcaAnalysis",
    "RcaEvidence",
    "RcaOptions",
    "RcaRequest",
    "RcaResponse",
    "RcaStreamError",
    "RcaStreamEvent",
    "RcaUsage",
    "RetrievalMode",
    "RunbookCitation",
    "Severity",
    "StoredAnalysis",
    "StoredAnalysisList",
    "StreamEventType",
    "ToolCallRecord",
    "TraceEvidence",
    "WebhookAction",
    "WebhookAlertResult",
    "WebhookResponse",
]
