"""Everything the routers need, built once at start-up and hung on `app.state.ragserve`."""

from __future__ import annotations

from dataclasses import dataclass, field

from ingest.embedding import Embedder
from service.auth import AccessControl
from service.chat.pipeline import ChatPipeline
from service.embeddings import EmbeddingService
from service.engine.client import EngineClient, EngineHealth
from service.engine.lora import LoraAdapters
from service.knowledge import KnowledgeService
from service.llm import ChatModel
from service.observability.metrics import Metrics
from service.rca.service import RcaService
from service.safety import GuardPipeline
from service.settings import Settings
from service.tools.service import ToolService


@dataclass
class AppState:
    settings: Settings
    metrics: Metrics
    engine: EngineClient
    engine_health: EngineHealth
    knowledge: KnowledgeService
    guard: GuardPipeline  # input, context and output guards (chat, tools, RCA, moderations, ingestion)
    model: ChatModel  # the model interface (service/llm)
    tools: ToolService
    chat: ChatPipeline  # /v1/chat/completions and /v1/completions
    embeddings: EmbeddingService
    embedder: Embedder
    access: AccessControl
    rca: RcaService | None = None  # root-cause analysis (service/rca)
    lora: LoraAdapters | None = None  # LoRA admin routes (service/engine/lora.py)
    draining: bool = False
    streams_in_flight: set[object] = field(default_factory=set)
