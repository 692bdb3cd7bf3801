"""Safety filtering: guard pipeline (input, context, output, ingest), detectors and policies."""

from service.safety.pipeline import ContentBlocked, GuardPipeline, StreamGuard, Verdict
from service.safety.policy import SafetySettings

__all__ = ["ContentBlocked", "GuardPipeline", "SafetySettings", "StreamGuard", "Verdict"]
