"""The model interface: `complete`, `stream` and `structured` over the engine (or a scripted fake)."""

from service.llm.model import ChatModel, ChatStream, Completion, EngineModel, StructuredAttempt, Usage
from service.llm.scripted import ScriptedModel

__all__ = [
    "ChatModel",
    "ChatStream",
    "Completion",
    "EngineModel",
    "ScriptedModel",
    "StructuredAttempt",
    "Usage",
]
