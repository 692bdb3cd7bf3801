"""`/v1/chat/completions` and `/v1/completions`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from service.api.deps import StateDep, parse_body
from service.protocol.openai import ChatCompletionRequest, CompletionRequest

router = APIRouter(tags=["generation"])

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"}


def _respond(result: dict[str, Any] | AsyncIterator[bytes], state: StateDep) -> Response:
    if isinstance(result, dict):
        return JSONResponse(result)
    return StreamingResponse(_tracked(result, state), media_type="text/event-stream", headers=SSE_HEADERS)


async def _tracked(stream: AsyncIterator[bytes], state: StateDep) -> AsyncIterator[bytes]:
    """Count open streams so a graceful shutdown can wait for them to finish."""
    token = object()
    state.streams_in_flight.add(token)
    try:
        async for chunk in stream:
            yield chunk
    finally:
        state.streams_in_flight.discard(token)


@router.post("/v1/chat/completions", summary="Chat completion, optionally grounded (rag/<collection>)")
async def chat_completions(request: Request, state: StateDep) -> Response:
    req, raw = await parse_body(request, ChatCompletionRequest)
    return _respond(await state.generation.chat(req, raw), state)


@router.post("/v1/completions", summary="Text completion")
async def completions(request: Request, state: StateDep) -> Response:
    req, raw = await parse_body(request, CompletionRequest)
    return _respond(await state.generation.completion(req, raw), state)
