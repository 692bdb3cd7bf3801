"""The guard pipeline: stages input, context, output (streaming-aware) and ingest.

Each stage runs the detectors its policy names and applies the strongest action their findings
call for: block, redact (`[REDACTED:<TYPE>]`), flag (counted, marked) or allow. Every guard is a
tracing span and is counted in `ragserve_safety_*`; a block writes one audit log line that names
the stage, detector and category but never the text.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from service.errors import BadRequest
from service.observability import tracing
from service.safety import detectors as det
from service.safety.classifier import LinearTextModel
from service.safety.detectors import Finding
from service.safety.policy import SEVERITY, Action, SafetySettings, Scope, Stage
from service.safety.semantic import SemanticHead

if TYPE_CHECKING:
    from ingest.chunking import Chunk
    from ingest.types import SearchHit
    from service.observability.metrics import Metrics

logger = logging.getLogger("ragserve.safety")

# Texts longer than this are scanned in overlapping windows: each regular-expression call then holds
# the GIL for milliseconds, not for a whole megabyte (~1 s), so guards running in worker threads let
# the event loop run; and a short attack padded with pages of benign text is scored on its own window.
WINDOW_CHARS = 16_384
WINDOW_OVERLAP = 1_024  # longer than any phrase or value a detector matches

_ADVICE = {
    "injection": "rephrase the request as a question about your documents, without instructions that "
    "try to override the assistant's rules, change its persona or reveal its prompt",
    "toxicity": "remove the abusive, threatening or harmful wording",
    "secrets": "remove the credentials (keys, tokens, passwords) from the message",
    "pii": "remove the personal data (e-mail addresses, phone numbers, ID or card numbers)",
}


class ContentBlocked(BadRequest):
    """A request refused by the input guard (HTTP 400, code content_filter, param = category)."""

    def __init__(self, detector: str, category: str) -> None:
        super().__init__(
            f"the request was blocked by the safety filter ({detector}: {category}); "
            f"{_ADVICE.get(detector, 'rephrase the request')} and try again",
            param=category,
            code="content_filter",
        )
        self.detector = detector
        self.category = category


@dataclass
class Verdict:
    """What a stage decided about one text."""

    action: Action = "allow"
    text: str = ""  # the text after redaction (unchanged unless action is redact)
    findings: list[Finding] = field(default_factory=list)  # findings at or above their threshold
    acted: dict[str, Action] = field(default_factory=dict)  # detector -> action taken

    @property
    def blocked(self) -> bool:
        return self.action == "block"

    @property
    def categories(self) -> list[str]:
        return sorted({f.category for f in self.findings})

    def blocking(self) -> Finding | None:
        hits = [f for f in self.findings if self.acted.get(f.detector) == "block"]
        return max(hits, key=lambda f: f.score) if hits else None


def redact(text: str, findings: Sequence[Finding]) -> str:
    """Replace each finding's span by `[REDACTED:<TYPE>]` (overlaps merged, first one wins)."""
    spans = sorted(
        (f for f in findings if f.start is not None and f.end is not None), key=lambda f: f.start or 0
    )
    out: list[str] = []
    at = 0
    for f in spans:
        assert f.start is not None and f.end is not None
        if f.start < at:
            continue
        out.append(text[at : f.start])
        out.append(f.label)
        at = f.end
    out.append(text[at:])
    return "".join(out)


class GuardPipeline:
    def __init__(
        self,
        settings: SafetySettings,
        metrics: Metrics | None = None,
        model: LinearTextModel | None = None,
        semantic: SemanticHead | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.model = model if model is not None else (LinearTextModel.load() if settings.classifier else None)
        self.semantic = (
            semantic
            if semantic is not None
            else (SemanticHead.load(name=settings.semantic_head) if settings.semantic else None)
        )
        self.detectors: dict[str, det.Detector] = {
            "injection": self.injection,
            "pii": det.pii,
            "secrets": det.secrets,
            "toxicity": det.toxicity,
        }

    # -- detection ------------------------------------------------------------------------

    def injection(self, text: str) -> list[Finding]:
        """Rules, the n-gram classifier and the semantic stage; the score is the strongest signal."""
        found = det.injection_rules(text)
        if not text.strip():
            return found
        learned: list[tuple[float, str]] = []
        if self.model is not None:
            learned.append((self.model.score(text) * self.settings.classifier_weight, "classifier"))
        if self.semantic is not None:
            learned.append((self.semantic.score(text), "semantic"))
        for p, rule in learned:
            best = max((f.score for f in found), default=0.0)
            if p > best:
                category = found[0].category if found else "prompt_injection"
                found.append(Finding("injection", category, round(p, 4), rule=rule))
        return found

    def scan(
        self, stage: Stage, text: str, *, collection: Scope = None, protected: Sequence[str] = ()
    ) -> Verdict:
        """Run the stage's detectors on `text` and decide; `protected`: texts that must not leak."""
        verdict = Verdict(text=text)
        if not self.settings.enabled or not text:
            return verdict
        policy = self.settings.stage(stage, collection)
        t0 = time.perf_counter()
        with tracing.span(f"guard {stage}", stage=stage) as span:
            for name, rule in policy.detectors.items():
                if rule.action == "allow" or (name not in self.detectors and name != "leak"):
                    continue
                found = self._detect(name, text, protected)
                hits = [f for f in found if f.score >= rule.threshold]
                if not hits:
                    continue
                verdict.findings.extend(hits)
                action: Action = rule.action
                if action == "redact" and all(f.start is None for f in hits):
                    action = "flag"  # nothing to cut out: a whole-text finding can only be flagged
                verdict.acted[name] = action
                if SEVERITY[action] > SEVERITY[verdict.action]:
                    verdict.action = action
            if any(a == "redact" for a in verdict.acted.values()):
                verdict.text = redact(
                    text, [f for f in verdict.findings if verdict.acted[f.detector] == "redact"]
                )
            tracing.set_attributes(span, action=verdict.action, categories=",".join(verdict.categories))
        self._observe(stage, verdict, time.perf_counter() - t0)
        return verdict

    def _detect(self, name: str, text: str, protected: Sequence[str]) -> list[Finding]:
        """One detector's findings over `text`, window by window when it is long (spans in `text`)."""

        def run(t: str) -> list[Finding]:
            return det.prompt_leak(t, protected) if name == "leak" else self.detectors[name](t)

        if len(text) <= WINDOW_CHARS:
            return run(text)
        whole: dict[tuple[str, str], Finding] = {}  # findings about the text as a whole: the strongest
        spans: list[Finding] = []
        step = WINDOW_CHARS - WINDOW_OVERLAP
        for at in range(0, len(text) - WINDOW_OVERLAP, step):
            for f in run(text[at : at + WINDOW_CHARS]):
                if f.start is None or f.end is None:
                    key = (f.category, f.rule)
                    if key not in whole or f.score > whole[key].score:
                        whole[key] = f
                else:
                    spans.append(replace(f, start=f.start + at, end=f.end + at))
        # A value cut by a window's end is found whole in the next window: keep the longest span.
        spans.sort(key=lambda f: (f.start or 0, -(f.end or 0)))
        kept: list[Finding] = []
        for f in spans:
            if kept and (f.end or 0) <= (kept[-1].end or 0) and f.category == kept[-1].category:
                continue
            kept.append(f)
        return [*whole.values(), *kept]

    def _observe(self, stage: Stage, verdict: Verdict, seconds: float) -> None:
        if self.metrics is not None:
            self.metrics.safety_checks.labels(stage).inc()
            self.metrics.safety_guard_duration.labels(stage).observe(seconds)
            for name, action in verdict.acted.items():
                self.metrics.safety_actions.labels(stage, name, action).inc()
            if verdict.blocked and stage in ("input", "output"):
                self.metrics.safety_blocks.labels(stage).inc()
        if verdict.blocked:
            top = verdict.blocking()
            logger.warning(
                "safety block stage=%s detector=%s category=%s score=%.2f rule=%s",
                stage, top.detector if top else "?", top.category if top else "?",
                top.score if top else 0.0, top.rule if top else "?",
            )  # fmt: skip

    # -- stages ---------------------------------------------------------------------------

    def check_input(self, text: str, *, collection: str | None = None) -> Verdict:
        """Raise ContentBlocked when the stage blocks; otherwise the verdict (possibly redacted)."""
        verdict = self.scan("input", text, collection=collection)
        top = verdict.blocking()
        if top is not None:
            raise ContentBlocked(top.detector, top.category)
        return verdict

    def filter_context(self, hits: Sequence[SearchHit], *, collection: str | None = None) -> list[SearchHit]:
        """Drop passages the policy blocks (e.g. planted instructions), redact or mark the others."""
        kept: list[SearchHit] = []
        for hit in hits:
            verdict = self.scan("context", hit.text, collection=collection)
            if (hit.metadata.get("safety") or {}).get("quarantined"):
                verdict.action = "block"  # flagged at ingest, and the policy quarantines such chunks
            if verdict.blocked:
                logger.info(
                    "safety: dropped passage chunk=%s categories=%s", hit.chunk_id, verdict.categories
                )
                continue
            if verdict.action in ("redact", "flag"):
                meta = {**hit.metadata, "safety": {"flagged": True, "categories": verdict.categories}}
                hit = replace(hit, text=verdict.text, metadata=meta)
            kept.append(hit)
        return kept

    def check_output(self, text: str, *, collection: Scope = None, protected: Sequence[str] = ()) -> Verdict:
        return self.scan("output", text, collection=collection, protected=protected)

    def stream_guard(self, *, collection: Scope = None, protected: Sequence[str] = ()) -> StreamGuard:
        return StreamGuard(self, collection, protected)

    def canary(self) -> str | None:
        """A per-request canary for the system prompt (when enabled): seeing it in an answer is a leak."""
        return f"canary-{secrets.token_hex(6)}" if self.settings.canary else None

    def ingest_chunks(self, chunks: list[Chunk]) -> list[Chunk]:
        """The ingest hook: mark (flag), redact or drop (block) chunks before they are indexed."""
        out: list[Chunk] = []
        for chunk in chunks:
            verdict = self.scan("ingest", chunk.text)
            if verdict.blocked:
                continue
            if verdict.action in ("flag", "redact"):
                chunk.metadata["safety"] = {
                    "flagged": True,
                    "categories": verdict.categories,
                    "quarantined": "injection" in verdict.acted,
                }
                if verdict.action == "redact":
                    chunk.text = verdict.text
                    chunk.index_text = redact(
                        chunk.index_text, det.secrets(chunk.index_text) + det.pii(chunk.index_text)
                    )
            out.append(chunk)
        return out

    def moderate(self, text: str) -> dict[str, Any]:
        """OpenAI moderation-style result for one text (all detectors, default thresholds)."""
        findings = [f for d in self.detectors.values() for f in d(text)]
        cats = {
            "prompt_injection": ("injection", ("prompt_injection", "prompt_extraction", "obfuscation")),
            "jailbreak": ("injection", ("jailbreak",)),
            "pii": ("pii", None),
            "secrets": ("secrets", None),
            "toxicity": ("toxicity", None),
        }
        scores: dict[str, float] = {}
        for name, (detector, subs) in cats.items():
            rel = [
                f.score for f in findings if f.detector == detector and (subs is None or f.category in subs)
            ]
            scores[name] = round(max(rel, default=0.0), 4)
        flags = {k: v >= 0.7 for k, v in scores.items()}
        return {"flagged": any(flags.values()), "categories": flags, "category_scores": scores}


# A group of a phone, card or ID number: digits with the punctuation such numbers are written with.
_NUMBER_GROUP = r"[+(]?\d[\d().-]{0,7}"
# CJK text has no spaces between words; its characters end a run (PII values are ASCII or digits).
_BREAK = r"\s\u2e80-\u9fff\u3000-\u303f\uff01-\uff0f\uff1a-\uff20"
_OPEN_RUN = re.compile(rf"(?:(?<=[{_BREAK}])|^)(?:{_NUMBER_GROUP}[ ])*[^{_BREAK}]*\Z")


def open_run_start(text: str) -> int:
    """Where the trailing run that could still become (part of) a PII value or a secret begins.

    That is the last word, possibly unfinished (an e-mail, a token, `password=...`), together with
    the space-separated digit groups before it (`138 1234 5678`, `+1 (555) 123`), which a phone or
    card number being generated may still continue. Everything before it can be released: every
    PII/secret pattern needs characters of this run to complete a match.
    """
    m = _OPEN_RUN.search(text)
    return m.start() if m else len(text)


class StreamGuard:
    """Incremental output guard for one streamed answer.

    Text that could still grow into a PII value or a secret is held back, so it is redacted before
    any of it reaches the client: by default (`stream_holdback: adaptive`) the trailing open run
    (see `open_run_start`), or the last `stream_holdback_chars` in `fixed` mode. Blocking detectors
    look at a sliding window of the latest `stream_window_chars`, and a block ends the stream.
    """

    def __init__(self, pipeline: GuardPipeline, collection: Scope, protected: Sequence[str] = ()) -> None:
        self.pipeline = pipeline
        self.collection = collection
        self.protected = protected
        self.released = ""  # text already sent
        self.pending = ""  # generated, not yet sent
        self.blocked = False
        self.redactions = 0
        cfg = pipeline.settings
        self.holdback = cfg.stream_holdback_chars
        self.adaptive = cfg.stream_holdback == "adaptive"
        self.window = cfg.stream_window_chars
        self.enabled = cfg.enabled
        self.check_every = cfg.stream_check_chars
        self._unscanned = 0

    def feed(self, piece: str, *, final: bool = False) -> str:
        """Add generated text; return what may be sent now ("" while held back or after a block)."""
        if self.blocked:
            return ""
        if not self.enabled:
            return piece
        self.pending += piece
        self._unscanned += len(piece)
        first_words = self.adaptive and not self.released.strip() and any(c.isspace() for c in self.pending)
        if not final and self._unscanned < self.check_every and not first_words:
            return ""  # nothing is released unscanned; scanning every few words keeps the cost flat
        self._unscanned = 0
        context = self.released[-self.window :]
        verdict = self.pipeline.scan(
            "output", context + self.pending, collection=self.collection, protected=self.protected
        )
        if verdict.blocked:
            self.blocked = True
            self.pending = ""
            return ""
        if verdict.action == "redact":
            redacted = verdict.text
            if redacted.startswith(context):  # the change lies in the unreleased part
                self.pending = redacted[len(context) :]
                self.redactions += 1
            else:  # a match reaching back into released text: redact the part that is still ours
                ours = [
                    replace(f, start=max(f.start, len(context)))
                    for f in verdict.findings
                    if f.start is not None and f.end is not None and f.end > len(context)
                ]
                self.pending = redact(context + self.pending, ours)[len(context) :]
                self.redactions += 1
        if final:
            cut = len(self.pending)
        elif self.adaptive:
            cut = max(open_run_start(self.pending), len(self.pending) - self.window)
        else:
            cut = max(0, len(self.pending) - self.holdback)
        if cut and not final:  # do not split a [REDACTED:...] tag
            open_at = self.pending.rfind("[REDACTED:", 0, cut)
            if open_at != -1 and self.pending.find("]", open_at) >= cut:
                cut = open_at
        out, self.pending = self.pending[:cut], self.pending[cut:]
        self.released += out
        return out
