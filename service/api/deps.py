"""Shared router helpers: typed access to app state and strict-but-friendly body parsing."""

from __future__ import annotations

import json
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from pydantic import BaseModel, ValidationError

from service.errors import BadRequest
from service.state import AppState

M = TypeVar("M", bound=BaseModel)


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.ragserve
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def validation_message(exc: ValidationError) -> tuple[str, str | None]:
    """One readable line and the offending parameter from a pydantic error."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ()))
    msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    return (f"{loc}: {msg}" if loc else msg), (loc or None)


async def parse_body(request: Request, model: type[M]) -> tuple[M, dict[str, Any]]:
    """Parse the JSON body ourselves so malformed JSON and bad fields both get a 400 envelope."""
    raw_bytes = await request.body()
    if not raw_bytes:
        raise BadRequest("the request body is empty; send a JSON object", code="invalid_json")
    try:
        raw = json.loads(raw_bytes)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}", code="invalid_json") from exc
    if not isinstance(raw, dict):
        raise BadRequest("the request body must be a JSON object", code="invalid_json")
    try:
        parsed = model.model_validate(raw)
    except ValidationError as exc:
        message, param = validation_message(exc)
        raise BadRequest(message, param=param) from exc
    return parsed, raw
