"""`/v1/models`: the base model, its LoRA adapters, the embedder and one `rag/<collection>` each."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter

from service.api.deps import StateDep
from service.api.docs import documented
from service.auth.deps import PrincipalDep
from service.errors import APIError
from service.protocol.responses import ModelList

router = APIRouter(tags=["models"])


def _card(model_id: str, owned_by: str, **extra: Any) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": int(time.time()), "owned_by": owned_by, **extra}


@router.get("/v1/models", summary="List models", **documented(ModelList, 401, 429))
async def list_models(state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    base = state.settings.engine.served_model_name
    # vLLM's `root` is a filesystem path (model or adapter directory): shown to admin keys only.
    fields = ("root", "parent", "max_model_len") if principal.is_admin else ("parent", "max_model_len")
    data: list[dict[str, Any]] = []
    try:
        upstream = await state.engine.get_json("/v1/models")
        for m in upstream.get("data", []):
            extra = {k: m[k] for k in fields if m.get(k) is not None}
            data.append(_card(str(m["id"]), "ragserve", **extra))
    except APIError:
        # Engine not ready: still list what this gateway serves so clients can discover it.
        data.append(_card(base, "ragserve"))
        if state.settings.engine.lora.enabled:
            for name in state.settings.engine.lora.adapters:
                data.append(_card(name, "ragserve", parent=base))
    data.append(_card(state.embeddings.model_id, "ragserve", kind="embedding"))
    for c in await state.knowledge.list_collections():
        data.append(_card(f"rag/{c['name']}", "ragserve", parent=base, kind="rag", collection=c["name"]))
    return {"object": "list", "data": data}
