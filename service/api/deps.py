"""Shared router helpers: typed access to app state and strict-but-friendly body parsing."""

from __future__ import annotations

import json
import re
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


# No OpenAI request nests anywhere near this deep (a tool schema's own bound is 64 levels).
MAX_JSON_DEPTH = 128


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def encodable(value: Any) -> bool:
    """Every string (and key) in `value` encodes as UTF-8: no lone surrogates."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return True


def too_deep() -> str:
    return f"the request body nests more than {MAX_JSON_DEPTH} levels of arrays and objects"


def json_depth(value: Any) -> int:
    """How deep arrays and objects nest in `value` (iteratively: no recursion on hostile input)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in node if isinstance(v, (dict, list)))
    return deepest


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
    except RecursionError as exc:  # the parser recurses per level: ~1,000 levels of [ or {
        raise BadRequest(too_deep(), code="invalid_json") from exc
    if not isinstance(raw, dict):
        raise BadRequest("the request body must be a JSON object", code="invalid_json")
    if json_depth(raw) > MAX_JSON_DEPTH:  # later stages (validation, schemas) recurse too
        raise BadRequest(too_deep(), code="invalid_json")
    if _SURROGATE_ESCAPE.search(raw_bytes) and not encodable(raw):
        # JSON may escape half a UTF-16 pair; no UTF-8 text (logs, the engine, a response) can hold it.
        raise BadRequest(
            "the request body holds an unpaired UTF-16 surrogate escape (\\ud800-\\udfff); "
            "send valid Unicode text",
            code="invalid_json",
        )
    try:
        parsed = model.model_validate(raw)
    except ValidationError as exc:
        message, param = validation_message(exc)
        raise BadRequest(message, param=param) from exc
    return parsed, raw
