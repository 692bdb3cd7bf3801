"""Everything the routers need, built once at start-up and hung on `app.state.ragserve`."""

from __future__ import annotations

from dataclasses import dataclass, field

from ingest.embedding import Embedder
from service.auth import AccessControl
from service.embeddings import EmbeddingService
from service.engine.client import EngineClient, EngineHealth
from service.engine.lora import LoraAdapters
from service.generation import GenerationService
from service.knowledge import KnowledgeService
from service.observability.metrics import Metrics
from service.rca.service import RcaService
from service.settings import Settings
from service.tools.service import ToolService


@dataclass
class AppState:
    settings: Settings
    metrics: Metrics
    engine: EngineClient
    engine_health: EngineHealth
    knowledge: KnowledgeService
    generation: GenerationService
    embeddings: EmbeddingService
    embedder: Embedder
    access: AccessControl
    tools: ToolService | None = None
    rca: RcaService | None = None  # root-cause analysis (service/rca)
    lora: LoraAdapters | None = None  # LoRA admin routes (service/engine/lora.py)
    draining: bool = False
    streams_in_flight: set[object] = field(default_factory=set)
