"""The application factory: `create_app(settings)` builds the gateway; nothing happens at import."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware

from ingest.embedding import Embedder
from ingest.knowledge_base import KnowledgeBase
from ingest.store.factory import backend_from_settings
from service import __version__
from service.api import collections, embeddings, generation, health, lora, models, moderations, retrieve
from service.api import rca as rca_api
from service.api.docs import install_openapi
from service.auth import AccessControl
from service.auth.middleware import AuthMiddleware
from service.chat.grounding import Grounder
from service.chat.pipeline import ChatPipeline
from service.chat.relay import Relay
from service.embeddings import EmbeddingService
from service.engine.client import EngineClient, EngineHealth, RemoteEngineMonitor
from service.engine.cpu import choose_dtype, has_cuda_gpu, omp_threads_bind
from service.engine.lora import LoraAdapters, launch_from_settings
from service.engine.supervisor import LoraLaunch, VLLMSupervisor, default_launch_spec
from service.errors import APIError, error_envelope, error_response, error_type_for_status
from service.knowledge import KnowledgeService
from service.llm import EngineModel
from service.middleware import BodySizeLimit, BrowserGuard, HTTPMetrics, RequestContext
from service.observability import tracing
from service.observability.metrics import Metrics
from service.rca.service import build_rca_service
from service.safety import GuardPipeline
from service.settings import EngineSettings, Settings
from service.state import AppState
from service.tools.service import ToolService
from service.ui import build_router as build_ui_router
from service.ui import default_ui_dir, log_ui_state

logger = logging.getLogger("ragserve")

# Response headers a browser front end may read (rate limits, retry hints, the request id).
CORS_EXPOSED_HEADERS = [
    "x-request-id", "retry-after", "retry-after-ms",
    "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests",
    "x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens",
]  # fmt: skip


def embedded_engine_key(eng: EngineSettings) -> str:
    """The key the embedded vLLM demands and the gateway sends: the configured one, else a random
    one made now (each gateway start). Without it any local user could reach the child on loopback
    and skip the gateway's keys, limits and guards, or load LoRA adapters."""
    if not eng.api_key:
        eng.api_key = secrets.token_urlsafe(32)
    return eng.api_key


async def _start_engine(
    settings: Settings, metrics: Metrics, lora: LoraLaunch | None = None
) -> tuple[EngineHealth, str, Any]:
    """Return (health, base URL, closer) for the configured engine shape."""
    eng = settings.engine
    if eng.mode == "remote":
        if not eng.url:
            raise RuntimeError("engine.mode is 'remote' but RAGSERVE_ENGINE__URL is not set")
        monitor = RemoteEngineMonitor(eng.url, api_key=eng.api_key)
        await monitor.check()
        monitor.start()
        return monitor, eng.url, monitor.stop

    from service.engine.model_prep import resolve_model

    model_path = await run_in_threadpool(resolve_model, eng.model, settings.models_dir, variant=eng.variant)
    embedded_engine_key(eng)
    spec = default_launch_spec(
        api_key=eng.api_key,
        model_path=model_path,
        served_model_name=eng.served_model_name,
        dtype=choose_dtype(eng.dtype),
        max_model_len=eng.max_model_len,
        port=eng.port,
        enforce_eager=eng.enforce_eager,
        max_num_seqs=eng.max_num_seqs,
        kv_cache_space_gib=eng.kv_cache_space_gib,
        tool_call_parser=eng.tool_call_parser,
        extra_args=eng.extra_args,
        quantization=eng.quantization,
        lora=lora,
        cpu_threads_bind=None if has_cuda_gpu() else omp_threads_bind(eng.cpu_threads_bind),
    )

    def on_state(state: str) -> None:
        metrics.engine_up.set(1 if state == "ready" else 0)
        if state == "restarting":
            metrics.engine_restarts.inc()

    supervisor = VLLMSupervisor(
        spec,
        startup_timeout_s=eng.startup_timeout_s,
        restart_backoff_s=eng.restart_backoff_s,
        max_restarts=eng.max_restarts,
        on_state_change=on_state,
    )
    await supervisor.start()
    return supervisor, spec.url, supervisor.stop


def create_app(settings: Settings, *, embedder: Embedder | None = None) -> FastAPI:
    """Build the gateway. `embedder` lets tests share one loaded model across apps."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        t0 = time.monotonic()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        stop_tracing = tracing.configure_tracing(settings.tracing, version=__version__)
        lora_launch = launch_from_settings(settings) if settings.engine.mode == "embedded" else None
        health, url, stop_engine = await _start_engine(settings, metrics, lora_launch)
        metrics.engine_stats.attach(
            url, api_key=settings.engine.api_key, timeout_s=settings.engine.metrics_timeout_s
        )
        if embedder is not None:
            emb = embedder
        else:
            emb = await run_in_threadpool(
                Embedder.load,
                settings.embedding.model,
                settings.embedding.device,
                settings.embedding.batch_size,
            )
        backend = await run_in_threadpool(backend_from_settings, settings)
        kb = KnowledgeBase(settings.collections_dir, emb, backend=backend)
        engine = EngineClient(
            url, health=health, api_key=settings.engine.api_key, timeout_s=settings.engine.request_timeout_s
        )
        knowledge = KnowledgeService(
            kb,
            metrics,
            settings.data_dir / "jobs",
            staging_root=settings.uploads_dir,
            max_pending_jobs=settings.server.max_pending_jobs,
            max_staged_bytes=settings.server.max_staged_upload_bytes,
            max_job_records=settings.server.max_job_records,
        )
        # Shared components, built once: the guards, the model interface (with its context-length
        # cache), the relay; the chat pipeline, tools and RCA are built over them.
        guard = GuardPipeline(settings.safety, metrics)  # input, context and output guards
        model = EngineModel(engine, metrics=metrics, context_length_fallback=settings.engine.max_model_len)
        relay = Relay(model=model, guard=guard, metrics=metrics, rag=settings.rag)
        tools = ToolService(
            model=model, guard=guard, relay=relay, knowledge=knowledge, settings=settings, metrics=metrics
        )
        grounder = Grounder(model=model, knowledge=knowledge, guard=guard, settings=settings)
        state = AppState(
            settings=settings,
            metrics=metrics,
            engine=engine,
            engine_health=health,
            knowledge=knowledge,
            guard=guard,
            model=model,
            tools=tools,
            chat=ChatPipeline(settings=settings, guard=guard, grounder=grounder, tools=tools, relay=relay),
            embeddings=EmbeddingService(
                emb, {settings.embedding.model, f"sentence-transformers/{emb.model_id}"}
            ),
            embedder=emb,
            access=access,
        )
        state.lora = LoraAdapters(
            settings=settings, engine=engine, metrics=metrics, launch=lora_launch,
            reserved_names=set(state.embeddings.aliases),
        )  # fmt: skip
        kb.chunk_guard = guard.ingest_chunks  # flag poisoned chunks at ingestion
        # alerts -> analyses; its workers start here
        state.rca = build_rca_service(
            model=model, guard=guard, knowledge=knowledge, settings=settings, metrics=metrics, access=access
        )
        state.rca.start()
        metrics.build_info.info(
            {"version": __version__, "model": settings.engine.served_model_name, "embedder": emb.model_id}
        )
        app.state.ragserve = state
        logger.info("gateway started in %.1f s (engine %s at %s)", time.monotonic() - t0, health.state, url)
        try:
            yield
        finally:
            state.draining = True
            await _drain(state, settings.server.shutdown_grace_s)
            await state.rca.stop()
            await engine.aclose()
            await stop_engine()
            kb.backend.close()
            await access.aclose()
            await metrics.engine_stats.aclose()
            if stop_tracing is not None:
                stop_tracing()
            knowledge.close()
            logger.info("gateway stopped")

    metrics = Metrics()
    access = AccessControl(settings, metrics)  # reads the keys file now: a broken one stops start-up
    app = FastAPI(
        title="ragserve",
        version=__version__,
        description="OpenAI-compatible RAG gateway with its own vLLM model serving.",
        lifespan=lifespan,
    )
    for r in (
        health.router,
        models.router,
        lora.router,
        generation.router,
        embeddings.router,
        retrieve.router,
        collections.router,
        moderations.router,
        rca_api.router,
    ):
        app.include_router(r)
    ui_dir = settings.server.ui_dir or default_ui_dir()
    app.include_router(build_ui_router(ui_dir))  # the web UI at /ui/ (docs/ui.md)
    log_ui_state(ui_dir)
    _install_error_handlers(app)
    install_openapi(app)  # request bodies the routers parse themselves, in /openapi.json
    app.add_middleware(
        BrowserGuard,
        check_host=not access.enabled,
        allowed_hosts=settings.server.allowed_hosts,
        allowed_origins=settings.cors.allow_origins,
    )
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.server.max_request_bytes,
        upload_max_bytes=settings.server.max_upload_bytes,
    )
    app.add_middleware(AuthMiddleware, access=access)  # before the body is read: 401/429 cost nothing
    if settings.cors.allow_origins:  # outside auth: preflights carry no key, and 401s need CORS headers
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors.allow_origins,
            allow_credentials=settings.cors.allow_credentials,
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=["*"],
            expose_headers=CORS_EXPOSED_HEADERS,
            max_age=settings.cors.max_age_s,
        )
    app.add_middleware(HTTPMetrics, metrics=metrics)
    app.add_middleware(RequestContext)  # outermost: every log line and error response has the id
    return app


async def _drain(state: AppState, grace_s: float) -> None:
    """Let in-flight streams finish (uvicorn has stopped accepting new connections)."""
    deadline = time.monotonic() + grace_s
    while state.streams_in_flight and time.monotonic() < deadline:  # noqa: ASYNC110 - polling a set
        await asyncio.sleep(0.2)
    if state.streams_in_flight:
        logger.warning(
            "%d streams still open after %.0f s; stopping anyway", len(state.streams_in_flight), grace_s
        )


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        status, envelope, headers = error_response(exc)
        return JSONResponse(envelope, status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        err = exc.errors()[0] if exc.errors() else {}
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "path", "query"))
        msg = f"{loc}: {err.get('msg', 'invalid request')}" if loc else str(err.get("msg", "invalid request"))
        return JSONResponse(error_envelope(msg, "invalid_request_error", loc or None, None), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = str(exc.detail) if exc.detail else "error"
        if exc.status_code == 404 and message == "Not Found":
            message = "no such route; see /docs for the API"
        if exc.status_code == 405:
            message = "method not allowed on this route"
        return JSONResponse(
            error_envelope(message, error_type_for_status(exc.status_code), None, None),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error")
        status, envelope, headers = error_response(exc)
        return JSONResponse(envelope, status_code=status, headers=headers)
