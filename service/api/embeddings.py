"""`/v1/embeddings`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from service.api.deps import StateDep, parse_body
from service.api.docs import documented
from service.protocol.openai import EmbeddingRequest
from service.protocol.responses import EmbeddingList

router = APIRouter(tags=["embeddings"])


@router.post(
    "/v1/embeddings",
    summary="Embed texts with the knowledge base's embedding model",
    **documented(EmbeddingList, 400, 401, 404, 413, 429, body=EmbeddingRequest),
)
async def embeddings(request: Request, state: StateDep) -> dict[str, Any]:
    req, _ = await parse_body(request, EmbeddingRequest)
    return await state.embeddings.embed(req)
