"""Probes and metrics: `/healthz` (alive), `/readyz` (engine answers, index loaded), `/metrics`."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.api.deps import StateDep

router = APIRouter(tags=["operations"])
logger = logging.getLogger("ragserve.health")


@router.get("/healthz", summary="Liveness")
async def healthz(state: StateDep) -> Response:
    # The supervisor gave up restarting the embedded engine: only a process restart can help,
    # so liveness fails and the orchestrator restarts the pod. A starting engine is still alive.
    # The probes are public: they say ok / failed and ready / not ready, nothing about tenants or errors.
    if state.engine_health.state == "failed":
        logger.error("liveness failed: the embedded engine failed repeatedly")
        return JSONResponse({"status": "failed"}, 503)
    return JSONResponse({"status": "ok"})


@router.get("/readyz", summary="Readiness: engine answers and the index is loaded")
async def readyz(state: StateDep) -> Response:
    engine_ready = state.engine_health.ready
    index_ok = True
    try:
        await state.knowledge.list_collections()
    except Exception as exc:  # an unreadable index is a readiness failure, not a crash
        index_ok = False
        logger.warning("not ready: the index cannot be read: %s", exc)
    ready = engine_ready and index_ok and not state.draining
    if not ready:
        logger.debug(  # probes poll every few seconds: DEBUG, like their access lines
            "not ready: engine %s, index %s, draining %s",
            state.engine_health.state, "ok" if index_ok else "unreadable", state.draining,
        )  # fmt: skip
    state.metrics.engine_up.set(1 if engine_ready else 0)
    body = {"status": "ready" if ready else "not ready"}
    headers = {} if ready else {"Retry-After": "10"}
    return JSONResponse(body, status_code=200 if ready else 503, headers=headers)


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(state: StateDep) -> Response:
    state.metrics.engine_up.set(1 if state.engine_health.ready else 0)
    # Gauges read at scrape time: vLLM's own statistics and the indexes' manifests.
    await state.metrics.engine_stats.refresh()
    await state.knowledge.refresh_index_metrics()
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
