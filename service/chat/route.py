"""What a chat request asks for, parsed once: the model it names, the engine model and the RAG plan.

`model: "rag/<collection>"` and the `rag` extension field both ground an answer; every later
stage (input guard, grounding, tools, relay) reads the `ChatRoute` instead of parsing them again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from service.errors import NotFound
from service.protocol.openai import ChatCompletionRequest
from service.rag.prompt import GroundedPrompt
from service.settings import Settings

RAG_PREFIX = "rag/"


@dataclass(frozen=True)
class RagPlan:
    collection: str
    top_k: int
    mode: str
    filters: dict[str, Any] | None
    query: str | None
    language: str


@dataclass(frozen=True)
class ChatRoute:
    public_model: str  # what the client named (answers carry it back)
    engine_model: str  # what the engine is asked for
    rag: RagPlan | None  # None: a plain request

    @property
    def collection(self) -> str | None:
        return self.rag.collection if self.rag is not None else None


def route(req: ChatCompletionRequest, settings: Settings) -> ChatRoute:
    """Parse `model` and `rag` into one value; `rag/` without a collection is a 404 as for any model."""
    model = req.model
    rag = req.rag
    collection: str | None = None
    engine_model = model
    if model.startswith(RAG_PREFIX):
        collection = model[len(RAG_PREFIX) :]
        if not collection:
            raise NotFound(
                "model 'rag/' names no collection; use rag/<collection>",
                param="model",
                code="model_not_found",
            )
        engine_model = settings.engine.served_model_name
    if rag is not None and rag.collection:
        collection = rag.collection
    if collection is None and rag is None:
        return ChatRoute(model, engine_model, None)
    cfg = settings.rag
    plan = RagPlan(
        collection=collection or settings.default_collection,
        top_k=min(rag.top_k if rag and rag.top_k else cfg.default_top_k, cfg.max_top_k),
        mode=(rag.mode if rag and rag.mode else cfg.default_mode),
        filters=rag.filters if rag else None,
        query=rag.query if rag else None,
        language=rag.language if rag else "auto",
    )
    return ChatRoute(model, engine_model, plan)


@dataclass
class PreparedRequest:
    """What goes upstream, and what the response must carry back."""

    body: dict[str, Any]
    public_model: str
    engine_model: str
    grounded: GroundedPrompt | None
    collection: str | None
    client_wants_usage: bool
    # Extension fields for the response (non-streaming) or its final chunk (e.g. `tool_trace`).
    final_fields: dict[str, Any] = field(default_factory=dict)
    # Collections the answer also draws on (server-tool searches): the output guard applies the
    # strictest of their policies and the request collection's.
    searched: tuple[str, ...] = ()

    @property
    def guard_scope(self) -> str | tuple[str, ...] | None:
        """Whose output policy applies: the request's collection, or the strictest of all it read."""
        if not self.searched:
            return self.collection
        return tuple(dict.fromkeys(c for c in (self.collection, *self.searched) if c))
