"""`/v1/retrieve`: the passages a grounded answer would see, through the same context guard.

Quarantined chunks and passages carrying planted instructions are dropped, secrets redacted and
flagged passages marked in `metadata.safety`, exactly as before they enter a prompt.
"""

from __future__ import annotations

import functools
from typing import Any

import anyio
from fastapi import APIRouter, Request

from service.api.deps import StateDep, parse_body
from service.api.docs import documented
from service.protocol.openai import RetrieveRequest
from service.protocol.responses import RetrieveResponse

router = APIRouter(tags=["retrieval"])


@router.post(
    "/v1/retrieve",
    summary="Search a collection (hybrid, dense or BM25)",
    **documented(RetrieveResponse, 400, 401, 404, 413, 429, body=RetrieveRequest),
)
async def retrieve(request: Request, state: StateDep) -> dict[str, Any]:
    req, _ = await parse_body(request, RetrieveRequest)
    collection = req.collection or state.settings.default_collection
    await state.knowledge.require(collection)
    mode = req.mode or state.settings.rag.default_mode
    hits = await state.knowledge.search(
        collection, req.query, top_k=req.top_k, mode=mode, filters=req.filters
    )
    screen = functools.partial(state.guard.filter_context, hits, collection=collection)
    hits = await anyio.to_thread.run_sync(screen)  # CPU-bound: off the event loop
    return {
        "object": "list",
        "collection": collection,
        "mode": mode,
        "results": [h.to_dict() for h in hits],
    }
