"""LoRA adapters at run time, with vLLM's request shapes (docs/lora.md); admin keys only, audited."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from service.api.deps import StateDep, parse_body
from service.api.docs import documented
from service.auth import PermissionDenied, Principal, audit
from service.auth.deps import PrincipalDep
from service.engine.lora import LoraAdapters
from service.errors import APIError, BadRequest
from service.protocol.lora import LoadLoraAdapterRequest, UnloadLoraAdapterRequest
from service.protocol.responses import LoraResult
from service.state import AppState

router = APIRouter(tags=["models"])


def _adapters(state: AppState) -> LoraAdapters:
    if state.lora is None:  # pragma: no cover - the app factory always builds it
        raise BadRequest("LoRA serving is not configured", code="lora_disabled")
    return state.lora


def _require_admin(principal: Principal, action: str, what: str, name: str) -> None:
    try:
        principal.require_admin(what)
    except PermissionDenied:
        audit(principal, action, outcome="denied", adapter=name)
        raise


@router.post(
    "/v1/load_lora_adapter",
    summary="Load a LoRA adapter into the engine (admin)",
    **documented(LoraResult, 400, 401, 403, 404, 409, 429, 502, 503, body=LoadLoraAdapterRequest),
)
async def load_lora_adapter(request: Request, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    req, _ = await parse_body(request, LoadLoraAdapterRequest)
    _require_admin(principal, "lora.load", "load LoRA adapters", req.lora_name)
    try:
        result = await _adapters(state).load(req.lora_name, req.lora_path)
    except APIError as exc:
        audit(principal, "lora.load", outcome="failed", adapter=req.lora_name, path=req.lora_path,
              reason=exc.code or exc.status_code)  # fmt: skip
        raise
    audit(principal, "lora.load", adapter=req.lora_name, path=result["root"])
    return result


@router.post(
    "/v1/unload_lora_adapter",
    summary="Unload a LoRA adapter from the engine (admin)",
    **documented(LoraResult, 400, 401, 403, 404, 429, 502, 503, body=UnloadLoraAdapterRequest),
)
async def unload_lora_adapter(request: Request, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    req, _ = await parse_body(request, UnloadLoraAdapterRequest)
    _require_admin(principal, "lora.unload", "unload LoRA adapters", req.lora_name)
    try:
        result = await _adapters(state).unload(req.lora_name)
    except APIError as exc:
        audit(principal, "lora.unload", outcome="failed", adapter=req.lora_name,
              reason=exc.code or exc.status_code)  # fmt: skip
        raise
    audit(principal, "lora.unload", adapter=req.lora_name)
    return result
