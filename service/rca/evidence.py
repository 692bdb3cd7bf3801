"""What an analysis may cite: the alert's own helpers and the caller's evidence, rendered and budgeted.

Every item gets an id such as `log:3` or `runbook:1`; the model cites ids only, and the server
copies excerpts from its own rendering (`EvidenceItem.text`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlparse

from service.rca.models import (
    Alert,
    AlertSummary,
    ChangeEvidence,
    EvidenceKind,
    LogEvidence,
    MetricEvidence,
    RcaRequest,
    TraceEvidence,
)
from service.settings import RcaSettings

ANNOTATION_MAX_CHARS = 500
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


# -- alert helpers ------------------------------------------------------------------------------


def fingerprint(labels: dict[str, str]) -> str:
    """Alertmanager's fingerprint of a label set (FNV-1a 64 over sorted names and values)."""
    h = 0xCBF29CE484222325
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode() + b"\xff":
                h ^= byte
                h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def alert_summary(alert: Alert) -> AlertSummary:
    return AlertSummary(
        alertname=alert.alertname,
        fingerprint=alert.fingerprint or fingerprint(alert.labels),
        status=alert.status,
        labels=dict(alert.labels),
        annotations=dict(alert.annotations),
        startsAt=alert.startsAt,
        endsAt=alert.endsAt,
        generatorURL=alert.generatorURL,
    )


def split_camel(name: str) -> str:
    return _CAMEL.sub(" ", name)


def retrieval_query(alert: Alert) -> str:
    """What to search the runbooks with: the alert name (also split into words) and its annotations."""
    name = alert.alertname
    parts = [name, split_camel(name)]
    for key in ("summary", "description", "message"):
        if text := alert.annotations.get(key):
            parts.append(text[:ANNOTATION_MAX_CHARS])
    return " ".join(p for p in parts if p)


def generator_expr(url: str | None) -> str | None:
    """The PromQL expression in a Prometheus generatorURL (`/graph?g0.expr=...`)."""
    if not url:
        return None
    try:
        values = parse_qs(urlparse(url).query).get("g0.expr")
    except ValueError:
        return None
    expr = (values or [""])[0].strip()
    return expr or None


def clip(text: str, limit: int) -> tuple[str, bool]:
    text = text.strip()
    if len(text) <= limit:
        return text, False
    return text[: max(0, limit - 1)].rstrip() + "…", True


def iso(ts: datetime | None) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z") if ts is not None else ""


# -- evidence -----------------------------------------------------------------------------------


@dataclass
class EvidenceItem:
    ref: str
    kind: EvidenceKind
    text: str  # the server's full rendering; excerpts are cut from it


@dataclass
class Catalog:
    """What the model may cite, in prompt order, and the notes for `missing_data`."""

    runbooks: list[EvidenceItem] = field(default_factory=list)
    supplied: list[EvidenceItem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def items(self) -> list[EvidenceItem]:
        return [*self.runbooks, *self.supplied]

    def by_ref(self) -> dict[str, EvidenceItem]:
        return {i.ref: i for i in self.items}


def _words(*parts: str) -> str:
    return " ".join(p for p in parts if p)


def _render_change(c: ChangeEvidence) -> str:
    by = f"(by {c.author})" if c.author else ""
    return _words(
        iso(c.timestamp), f"[{c.kind}]" if c.kind else "", c.description, by, f"(id {c.id})" if c.id else ""
    )


def _render_trace(t: TraceEvidence) -> str:
    attrs = ", ".join(f"{k}={v}" for k, v in sorted(t.attributes.items()))
    duration = f"{t.duration_ms:g} ms" if t.duration_ms is not None else ""
    return _words(
        f"trace {t.trace_id}", f"span {t.span_id}" if t.span_id else "",
        f"service {t.service}" if t.service else "", t.name or "", duration,
        f"status {t.status}" if t.status else "", attrs,
    )  # fmt: skip


def _render_log(x: LogEvidence) -> str:
    return _words(iso(x.timestamp), f"{x.source}:" if x.source else "", x.text)


def render_supplied(req: RcaRequest) -> list[EvidenceItem]:
    """Every caller-supplied item, rendered as text, interleaved across kinds (changes first), so a
    budget that cannot hold everything still keeps some of each kind."""
    ev = req.evidence
    per_kind: list[list[EvidenceItem]] = [
        [EvidenceItem(f"change:{i}", "change", _render_change(c)) for i, c in enumerate(ev.changes)],
        [EvidenceItem(f"trace:{i}", "trace", _render_trace(t)) for i, t in enumerate(ev.traces)],
        [EvidenceItem(f"metric:{i}", "metric", _render_metric(m)) for i, m in enumerate(ev.metrics)],
        [EvidenceItem(f"log:{i}", "log", _render_log(x)) for i, x in enumerate(ev.logs)],
    ]
    longest = max(len(k) for k in per_kind)
    return [items[i] for i in range(longest) for items in per_kind if i < len(items)]


def _render_metric(m: MetricEvidence) -> str:
    head = m.name or m.query or "metric"
    if m.labels:
        head += "{" + ",".join(f'{k}="{v}"' for k, v in sorted(m.labels.items())) + "}"
    if m.query and m.name:
        head += f" (query: {m.query})"
    values = [s.value for s in m.samples]
    if not values:
        return f"{head}: no samples supplied"
    tail = ", ".join(f"{iso(s.timestamp)} {s.value:g}" for s in m.samples[-5:])
    return (
        f"{head}: {len(values)} samples, first {values[0]:g}, last {values[-1]:g}, "
        f"min {min(values):g}, max {max(values):g}; latest: {tail}"
    )


def budget_supplied(items: list[EvidenceItem], cfg: RcaSettings) -> tuple[list[EvidenceItem], list[str]]:
    """Cut each item to the per-item budget and keep items until the total budget is spent."""
    kept: list[EvidenceItem] = []
    used = 0
    cut = 0
    dropped: dict[str, int] = {}
    totals: dict[str, int] = {}
    for item in items:
        totals[item.kind] = totals.get(item.kind, 0) + 1
        text, was_cut = clip(item.text, cfg.evidence_item_max_chars)
        if used + len(text) > cfg.evidence_max_chars:
            dropped[item.kind] = dropped.get(item.kind, 0) + 1
            continue
        used += len(text)
        cut += was_cut
        kept.append(EvidenceItem(item.ref, item.kind, item.text))
    notes: list[str] = []
    if dropped:
        parts = ", ".join(f"{n} of {totals[k]} {k} items" for k, n in sorted(dropped.items()))
        notes.append(
            f"evidence over the budget was not analysed: {parts} "
            f"(limit {cfg.evidence_max_chars} characters, rca.evidence_max_chars)"
        )
    if cut:
        notes.append(f"{cut} evidence items were cut to {cfg.evidence_item_max_chars} characters")
    return kept, notes


def with_fingerprint(alert: Alert) -> Alert:
    return alert if alert.fingerprint else alert.model_copy(update={"fingerprint": fingerprint(alert.labels)})
