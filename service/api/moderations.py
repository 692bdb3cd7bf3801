"""`/v1/moderations`: the gateway's safety detectors in OpenAI's moderation shape."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from service.api.deps import StateDep, parse_body
from service.api.docs import documented
from service.errors import BadRequest
from service.protocol.responses import ModerationResponse
from service.safety.protocol import ModerationRequest

router = APIRouter(tags=["safety"])

MAX_INPUTS = 64


@router.post(
    "/v1/moderations",
    summary="Classify text: prompt_injection, jailbreak, pii, secrets, toxicity",
    **documented(ModerationResponse, 400, 401, 413, 429, body=ModerationRequest),
)
async def moderations(request: Request, state: StateDep) -> dict[str, Any]:
    req, _ = await parse_body(request, ModerationRequest)
    texts = [req.input] if isinstance(req.input, str) else req.input
    if not texts or len(texts) > MAX_INPUTS:
        raise BadRequest(f"input must hold 1 to {MAX_INPUTS} texts", param="input")
    guard = state.guard
    results = await run_in_threadpool(lambda: [guard.moderate(t) for t in texts])
    return {"id": f"modr-{uuid.uuid4().hex}", "model": req.model or "ragserve-safety", "results": results}
