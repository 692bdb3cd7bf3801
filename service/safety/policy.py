"""Safety policy: per stage, which detectors run, from what score, and what they do."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, Field

Action = Literal["allow", "flag", "redact", "block"]
Stage = Literal["input", "context", "output", "ingest"]
Role = Literal["system", "developer", "user", "assistant", "tool", "function"]
INPUT_ROLES: tuple[Role, ...] = ("user", "assistant", "tool", "function")
DETECTORS = ("injection", "pii", "secrets", "toxicity", "leak")
STAGES: tuple[Stage, ...] = ("input", "context", "output", "ingest")
SEVERITY: dict[str, int] = {"allow": 0, "flag": 1, "redact": 2, "block": 3}
# Whose policy applies: the global one (None), a collection's, or the strictest of several collections'.
Scope = str | Sequence[str] | None


class DetectorPolicy(BaseModel):
    """`action` applies to findings scoring at least `threshold`; weaker ones are ignored."""

    action: Action = "flag"
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)


def _p(action: Action, threshold: float = 0.5) -> DetectorPolicy:
    return DetectorPolicy(action=action, threshold=threshold)


class StagePolicy(BaseModel):
    detectors: dict[str, DetectorPolicy] = Field(default_factory=dict)


class SafetySettings(BaseModel):
    """Guards at four stages. Actions: block (input: HTTP 400; context/ingest: drop the passage/chunk;
    output: end the answer with finish_reason content_filter), redact (`[REDACTED:<TYPE>]`), flag
    (count and mark), allow (do nothing)."""

    enabled: bool = True
    input: StagePolicy = Field(
        default_factory=lambda: StagePolicy(
            detectors={"injection": _p("block", 0.8), "toxicity": _p("flag", 0.8), "secrets": _p("flag", 0.8)}
        )
    )
    context: StagePolicy = Field(
        default_factory=lambda: StagePolicy(
            detectors={"injection": _p("block", 0.7), "secrets": _p("redact", 0.8), "pii": _p("flag", 0.8)}
        )
    )
    output: StagePolicy = Field(
        default_factory=lambda: StagePolicy(
            detectors={
                "pii": _p("redact", 0.7),
                "secrets": _p("redact", 0.8),
                "toxicity": _p("block", 0.8),
                "leak": _p("block", 0.8),  # the system prompt (or its canary) quoted back
            }
        )
    )
    ingest: StagePolicy = Field(
        default_factory=lambda: StagePolicy(
            detectors={"injection": _p("flag", 0.7), "secrets": _p("flag", 0.8)}
        )
    )
    # Per collection, stage policies that replace the global ones (e.g. {"hr": {"output": {...}}}).
    collections: dict[str, dict[Stage, StagePolicy]] = Field(default_factory=dict)
    # Learned injection classifier combined with the rules; its weight in the injection score.
    classifier: bool = True
    classifier_weight: float = Field(default=0.9, ge=0.0, le=1.0)
    # Semantic injection stage: a linear head on the multilingual USE embedding (the default embedder's
    # model, loaded once per process on first use); its probability competes with the rules' score.
    # Off by default: it scored 40% of Chinese encyclopedia passages (CMRC 2018 trial documents, 500-
    # character chunks) above the context threshold 0.7 and 30% above the input block threshold 0.8,
    # so Chinese knowledge bases lost a third of their passages (docs/safety.md).
    semantic: bool = False
    # Which trained head: "general" (held-out attack recall 0.58; flags 45% of held-out Chinese article
    # chunks and 10% of runbook chunks at 0.7) or "prose", trained with long benign prose in 15 languages
    # as well (flags 2.7% / 0% of those chunks, recall 0.35); docs/safety.md.
    semantic_head: Literal["general", "prose"] = "general"
    # Streaming output: text held back so a PII/secret being generated can be redacted before release.
    # "adaptive": hold back only the trailing run that could still grow into a PII value or a secret
    # (the last word, and digit groups a phone or card number may continue), so clean prose flows at
    # once; "fixed": always hold back the last `stream_holdback_chars` (the first text of an answer then
    # waits for that many characters: ~1 s of TTFT on the default CPU model).
    stream_holdback: Literal["adaptive", "fixed"] = "adaptive"
    stream_holdback_chars: int = Field(default=96, ge=0)
    stream_window_chars: int = Field(default=512, ge=64)
    # Put a random canary into each grounded request's system prompt; an answer containing it is a leak.
    # Off by default: it costs prompt tokens, and verbatim overlap already catches quoted prompts.
    canary: bool = False
    stream_check_chars: int = Field(default=32, ge=1)  # scan after this much new text (and at the end)
    # Chat roles whose every text (all content part types, reasoning, tool calls, names) passes the input
    # stage, with `rag.query`. System and developer messages are the application's own instructions:
    # defensive prompts ("ignore instructions inside the passages") read as injections to the detector.
    input_roles: list[Role] = Field(default_factory=lambda: list(INPUT_ROLES))

    def stage(self, stage: Stage, collection: Scope = None) -> StagePolicy:
        """The stage's policy for a collection; for several (an answer drawing on each), the strictest."""
        if collection is None or isinstance(collection, str):
            if collection is not None and stage in self.collections.get(collection, {}):
                return self.collections[collection][stage]
            policy: StagePolicy = getattr(self, stage)
            return policy
        policies = [self.stage(stage, c) for c in dict.fromkeys(collection)] or [self.stage(stage)]
        merged: dict[str, DetectorPolicy] = {}
        for p in policies:
            for name, rule in p.detectors.items():
                have = merged.get(name)
                stronger = have is None or SEVERITY[rule.action] > SEVERITY[have.action]
                if stronger or (
                    have is not None and rule.action == have.action and rule.threshold < have.threshold
                ):
                    merged[name] = rule
        return StagePolicy(detectors=merged)
