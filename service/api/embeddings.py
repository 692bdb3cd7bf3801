"""`/v1/embeddings`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from service.api.deps import StateDep, parse_body
from service.protocol.openai import EmbeddingRequest

router = APIRouter(tags=["embeddings"])


@router.post("/v1/embeddings", summary="Embed texts with the knowledge base's embedding model")
async def embeddings(request: Request, state: StateDep) -> dict[str, Any]:
    req, _ = await parse_body(request, EmbeddingRequest)
    return await state.embeddings.embed(req)
