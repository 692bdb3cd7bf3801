"""From the model's JSON to the response: evidence references checked, excerpts the server's own,
every generated string through the output guard."""

from __future__ import annotations

import time
from typing import Any

from service.observability.metrics import Metrics
from service.rca.evidence import clip
from service.rca.models import EvidenceRef, Hypothesis, RcaResponse, RcaUsage, Severity
from service.rca.prompt import SYSTEM_PROMPT, Prepared
from service.rca.schema import SEVERITIES
from service.safety.pipeline import GuardPipeline

REMOVED = "[removed by the output guard]"


def assemble_response(
    prepared: Prepared,
    data: dict[str, Any],
    usage: RcaUsage,
    *,
    analysis_id: str,
    seconds: float,
    guard: GuardPipeline,
    metrics: Metrics,
    excerpt_max_chars: int,
) -> RcaResponse:
    """The verified analysis: references to items never supplied are dropped (and noted)."""
    catalog = prepared.catalog.by_ref()

    def g(text: Any) -> str:
        verdict = guard.check_output(str(text), collection=prepared.collection, protected=[SYSTEM_PROMPT])
        return REMOVED if verdict.blocked else verdict.text

    hypotheses: list[Hypothesis] = []
    dropped = 0
    for h in data["hypotheses"]:
        evidence: list[EvidenceRef] = []
        seen: set[str] = set()
        for ref in h.get("evidence") or []:
            item = catalog.get(ref)
            if item is None:
                dropped += 1
                continue
            if ref in seen:
                continue
            seen.add(ref)
            evidence.append(
                EvidenceRef(kind=item.kind, ref=ref, excerpt=clip(item.text, excerpt_max_chars)[0])
            )
        metrics.rca_evidence_refs.labels("verified").inc(len(evidence))
        hypotheses.append(
            Hypothesis(
                title=g(h["title"]),
                confidence=min(1.0, max(0.0, float(h["confidence"]))),
                reasoning=g(h["reasoning"]),
                evidence=evidence,
                checks=[g(c) for c in h["checks"]],
                remediation=g(h["remediation"]),
            )
        )
    if dropped:
        metrics.rca_evidence_refs.labels("dropped").inc(dropped)
    notes = list(prepared.catalog.notes)
    if dropped:
        notes.append(f"{dropped} evidence references named items that were not supplied and were removed")
    for m in data.get("missing_data") or []:
        text = g(m).strip()
        if text and text not in notes:
            notes.append(text)
    severity: Severity = data["severity"] if data["severity"] in SEVERITIES else "unknown"
    return RcaResponse(
        id=analysis_id,
        created=int(time.time()),
        model=prepared.model,
        collection=prepared.collection,
        alert=prepared.alert,
        summary=g(data["summary"]),
        severity=severity,
        hypotheses=hypotheses,
        runbooks=prepared.citations,
        missing_data=notes,
        tool_calls=prepared.tool_calls,
        usage=usage,
        latency_ms=round(seconds * 1000, 1),
    )
