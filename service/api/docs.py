"""OpenAPI documentation of the routes: request bodies, response models and error responses.

Routes that parse their own JSON body (`parse_body`, so malformed JSON and bad fields get the
OpenAI envelope and unknown fields pass through to the engine) declare it with `json_body(Model)`;
`errors(...)` lists the error responses a route can return, each with the envelope's schema.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from service.protocol.responses import ErrorResponse

_REF = "#/components/schemas/{model}"

ERROR_DESCRIPTIONS = {
    400: "Invalid request (malformed JSON, a bad field, a blocked input, max_tokens too small)",
    401: "Missing or unknown API key (when a keys file is configured)",
    403: "The API key's role or collections do not allow this",
    404: "Unknown model, collection, document, job or analysis",
    409: "Conflict with the current state (e.g. the adapter or collection exists)",
    413: "Request body or upload over the size limit",
    415: "Unsupported content type",
    429: "Rate limit (requests or tokens per minute) exceeded; see Retry-After",
    502: "The engine answered with nothing the gateway can serve (invalid structured output, engine error)",
    503: "Engine not ready, restarting or overloaded (admission queue full); see Retry-After",
    504: "The request or the engine took longer than its deadline",
    507: "Not enough storage: the disk is (nearly) full; what was published is unchanged",
}
# Answered before any route runs (service/middleware.py, service/auth): documented on every route
# they can reach, so a client (or schemathesis) meets no status the document does not list.
_PROBES = ("/healthz", "/readyz")
_UNSAFE = ("post", "put", "patch", "delete")
# What every authenticated route can answer besides its own errors.
COMMON = (401, 429)
GENERATION = (400, 401, 403, 404, 413, 429, 502, 503, 504)

_request_models: list[type[BaseModel]] = []


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries for these error statuses, with the OpenAI error envelope."""
    return {c: {"model": ErrorResponse, "description": ERROR_DESCRIPTIONS[c]} for c in sorted(set(codes))}


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra=` for a route that reads `model` as its JSON body itself."""
    _request_models.append(model)
    ref = {"$ref": _REF.format(model=model.__name__)}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


def sse_response(model: type[BaseModel], description: str) -> dict[int | str, dict[str, Any]]:
    """A 200 that is `model` as JSON, or server-sent events when the request streams."""
    return {
        200: {
            "model": model,
            "description": description,
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    }


def _add_gateway_errors(schema: dict[str, Any], error: dict[str, Any]) -> None:
    """The statuses middleware answers with: every route but the probes can get 400 (`invalid_host`
    without keys), 401 and 429 (keys, failed-auth throttling, rate limits); writes 403 (a foreign
    `Origin` without keys) and 413 (body size); JSON bodies 415; knowledge-base writes 507."""
    for path, ops in schema.get("paths", {}).items():
        if path in _PROBES:
            continue
        for method, op in ops.items():
            codes = {400, 401, 429}
            if path == "/metrics":
                codes.add(403)  # the metrics permission
            if method in _UNSAFE:
                codes |= {403, 413}
                if method != "delete" and not path.endswith("/documents"):
                    codes.add(415)  # uploads are multipart by design
            if path.startswith("/v1/collections") and method in _UNSAFE:
                codes.add(507)
            responses = op.setdefault("responses", {})
            content = {"application/json": {"schema": error}}
            for code in sorted(codes):
                responses.setdefault(str(code), {"description": ERROR_DESCRIPTIONS[code], "content": content})


def install_openapi(app: FastAPI) -> None:
    """Add the self-parsed request bodies' schemas to the app's OpenAPI components."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        # FastAPI documents a 422 for parameter validation; this gateway answers those with 400 and
        # the OpenAI envelope (service/app.py).
        error = {"$ref": _REF.format(model=ErrorResponse.__name__)}
        for ops in schema.get("paths", {}).values():
            for op in ops.values():
                responses = op.get("responses", {})
                if responses.pop("422", None) is not None and "400" not in responses:
                    responses["400"] = {
                        "description": ERROR_DESCRIPTIONS[400],
                        "content": {"application/json": {"schema": error}},
                    }
        _add_gateway_errors(schema, error)
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        components.setdefault(ErrorResponse.__name__, ErrorResponse.model_json_schema(ref_template=_REF))
        for model in _request_models:
            found = model.model_json_schema(ref_template=_REF)
            for name, definition in found.pop("$defs", {}).items():
                components.setdefault(name, definition)
            components.setdefault(model.__name__, found)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def documented(
    ok: type[BaseModel] | None,
    *codes: int,
    body: type[BaseModel] | None = None,
    stream: bool = False,
    ok_status: int = 200,
    ok_description: str = "Successful response",
) -> dict[str, Any]:
    """Route keyword arguments documenting its body, its answer and its errors, without changing
    what it returns (no response filtering: relayed engine answers keep every field)."""
    responses: dict[int | str, dict[str, Any]] = {}
    if ok is not None:
        responses[ok_status] = {"model": ok, "description": ok_description}
        if stream:
            responses[ok_status]["content"] = {"text/event-stream": {"schema": {"type": "string"}}}
    responses.update(errors(*codes))
    out: dict[str, Any] = {"response_model": None, "responses": responses}
    if body is not None:
        out["openapi_extra"] = json_body(body)
    return out
