"""The analysis the model must write: its JSON schema with bounds, the decoding constraint, the check."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from service.rca.models import Severity
from service.settings import RcaSettings

SEVERITIES: tuple[Severity, ...] = ("critical", "warning", "info", "unknown")


# -- the decoding schema ------------------------------------------------------------------------


@dataclass(frozen=True)
class OutputBounds:
    hypotheses: int
    summary: int
    title: int
    reasoning: int
    check: int
    checks: int
    remediation: int
    refs: int
    missing: int
    missing_chars: int = 80

    @classmethod
    def from_settings(cls, cfg: RcaSettings, max_hypotheses: int | None) -> OutputBounds:
        return cls(
            hypotheses=min(max_hypotheses or cfg.max_hypotheses, 5),
            summary=cfg.max_summary_chars,
            title=cfg.max_title_chars,
            reasoning=cfg.max_reasoning_chars,
            check=cfg.max_check_chars,
            checks=cfg.max_checks,
            remediation=cfg.max_remediation_chars,
            refs=cfg.max_evidence_refs,
            missing=cfg.max_missing_items,
        )

    def scaled(self, ratio: float) -> OutputBounds:
        """Bounds for a smaller token budget (`ratio` of the configured one): the characters of every
        string and the hypotheses shrink with it, never below the compact floors."""
        if ratio >= 1:
            return self
        floor = self.compact()

        def part(value: int, least: int) -> int:
            return max(least, int(value * ratio))

        return OutputBounds(
            hypotheses=part(self.hypotheses, 1),
            summary=part(self.summary, floor.summary),
            title=part(self.title, floor.title),
            reasoning=part(self.reasoning, floor.reasoning),
            check=part(self.check, floor.check),
            checks=part(self.checks, 1),
            remediation=part(self.remediation, floor.remediation),
            refs=part(self.refs, 1),
            missing=part(self.missing, 0),
            missing_chars=part(self.missing_chars, floor.missing_chars),
        )

    def compact(self) -> OutputBounds:
        """Tighter bounds for a retry after output that was cut off or invalid."""
        return OutputBounds(
            hypotheses=1,
            summary=max(20, self.summary // 2),
            title=max(10, self.title // 2),
            reasoning=max(20, self.reasoning // 2),
            check=max(10, self.check // 2),
            checks=min(2, self.checks),
            remediation=max(20, self.remediation // 2),
            refs=min(2, self.refs),
            missing=min(1, self.missing),
            missing_chars=60,
        )


def _string(max_len: int, min_len: int = 1) -> dict[str, Any]:
    return {"type": "string", "minLength": min_len, "maxLength": max_len}


def output_schema(refs: list[str], bounds: OutputBounds, *, enforce_refs: bool = True) -> dict[str, Any]:
    """The JSON the model must write. Refs are an enum of the ids it was given; no excerpts."""
    hyp_props: dict[str, Any] = {"title": _string(bounds.title)}
    if not enforce_refs:  # checking the output: unknown refs are dropped later, not fatal
        hyp_props["evidence"] = {"type": "array", "items": {"type": "string"}, "maxItems": bounds.refs}
    elif refs:
        # At least one ref: left free, SmolLM2-135M cited nothing and copied a log line as its
        # reasoning (first real run); a hypothesis with no evidence is of no use to the operator.
        hyp_props["evidence"] = {
            "type": "array",
            "items": {"type": "string", "enum": refs},
            "minItems": 1,
            "maxItems": bounds.refs,
        }
    else:  # nothing to cite: only an empty list
        hyp_props["evidence"] = {"type": "array", "items": {"type": "string", "maxLength": 1}, "maxItems": 0}
    required = ["title", "evidence"]
    hyp_props.update(
        reasoning=_string(bounds.reasoning),
        confidence={"type": "number", "minimum": 0, "maximum": 1},
        checks={"type": "array", "items": _string(bounds.check), "minItems": 1, "maxItems": bounds.checks},
        remediation=_string(bounds.remediation),
    )
    required += ["reasoning", "confidence", "checks", "remediation"]
    return {
        "type": "object",
        "properties": {
            "summary": _string(bounds.summary),
            "severity": {"type": "string", "enum": list(SEVERITIES)},
            "hypotheses": {
                "type": "array",
                "minItems": 1,
                "maxItems": bounds.hypotheses,
                "items": {
                    "type": "object",
                    "properties": hyp_props,
                    "required": required,
                    "additionalProperties": False,
                },
            },
            "missing_data": {
                "type": "array",
                "items": _string(bounds.missing_chars),
                "maxItems": bounds.missing,
            },
        },
        "required": ["summary", "severity", "hypotheses", "missing_data"],
        "additionalProperties": False,
    }


def decoding_constraint(schema: dict[str, Any], whitespace: str) -> dict[str, Any]:
    """vLLM `structured_outputs` for the schema. vLLM's JSON-schema grammar lets the model put any
    whitespace between tokens, and SmolLM2-135M spent its whole max_tokens on newlines and
    indentation (measured: 284 lines in 1914 characters, cut off). With `compact`, the gateway
    sends the same schema as an EBNF grammar without optional whitespace, built by xgrammar (vLLM's
    default backend, installed beside it); without xgrammar it falls back to the JSON schema."""
    if whitespace == "compact":
        try:
            import xgrammar
        except ImportError:  # a gateway-only install: the engine still enforces the schema
            return {"json": schema}
        grammar = xgrammar.Grammar.from_json_schema(
            json.dumps(schema), any_whitespace=False, separators=(",", ":")
        )
        return {"grammar": str(grammar)}
    return {"json": schema}


class InvalidAnalysis(ValueError):
    """The model's output is not JSON of the required shape."""


def parse_output(text: str, refs: list[str], bounds: OutputBounds) -> dict[str, Any]:
    """The model's JSON, checked against the output schema (refs are checked separately)."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InvalidAnalysis(f"not JSON: {exc}") from exc
    validator = Draft202012Validator(output_schema(refs, bounds, enforce_refs=False))
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.path))
    if errors:
        e = errors[0]
        where = "/".join(str(p) for p in e.path) or "(root)"
        raise InvalidAnalysis(f"{where}: {e.message}")
    assert isinstance(data, dict)
    return data
