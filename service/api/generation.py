"""`/v1/chat/completions` and `/v1/completions`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from service.api.deps import StateDep, parse_body
from service.api.docs import GENERATION, documented
from service.protocol.openai import ChatCompletionRequest, CompletionRequest
from service.protocol.responses import ChatCompletion, TextCompletion

router = APIRouter(tags=["generation"])

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"}


class RelayResponse(StreamingResponse):
    """A stream whose body is closed however the response ends: a client that goes away cancels the
    engine request at once (Starlette alone may leave the generator to the garbage collector)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            close = getattr(self.body_iterator, "aclose", None)
            if close is not None:
                with anyio.CancelScope(shield=True):
                    await close()


def _respond(result: dict[str, Any] | AsyncIterator[bytes], state: StateDep) -> Response:
    if isinstance(result, dict):
        return JSONResponse(result)
    return RelayResponse(_tracked(result, state), media_type="text/event-stream", headers=SSE_HEADERS)


async def _tracked(stream: AsyncIterator[bytes], state: StateDep) -> AsyncIterator[bytes]:
    """Count open streams so a graceful shutdown can wait for them to finish."""
    token = object()
    state.streams_in_flight.add(token)
    try:
        async for chunk in stream:
            yield chunk
    finally:
        state.streams_in_flight.discard(token)
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()  # runs the relay's own cleanup now: the upstream request is closed


@router.post(
    "/v1/chat/completions",
    summary="Chat completion, optionally grounded (rag/<collection>)",
    **documented(
        ChatCompletion, *GENERATION, body=ChatCompletionRequest, stream=True,
        ok_description="The answer; with `stream: true`, `chat.completion.chunk` events then `data: [DONE]` "
        "(an error after the first event: `data: {\"error\": ...}` then `data: [DONE]`)",
    ),
)  # fmt: skip
async def chat_completions(request: Request, state: StateDep) -> Response:
    req, raw = await parse_body(request, ChatCompletionRequest)
    # Tokens/min, a slot in the admission queue and the per-request deadline (service/auth).
    return _respond(
        await state.access.run_generation(lambda: state.chat.chat(req, raw), raw, receive=request.receive),
        state,
    )


@router.post(
    "/v1/completions",
    summary="Text completion",
    **documented(TextCompletion, *GENERATION, body=CompletionRequest, stream=True),
)
async def completions(request: Request, state: StateDep) -> Response:
    req, raw = await parse_body(request, CompletionRequest)
    return _respond(
        await state.access.run_generation(
            lambda: state.chat.completion(req, raw), raw, receive=request.receive
        ),
        state,
    )
