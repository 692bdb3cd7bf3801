"""Root-cause analysis: `/v1/rca`, the Alertmanager webhook and stored analyses (docs/rca.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from service.api.deps import StateDep
from service.api.generation import SSE_HEADERS, RelayResponse, _tracked
from service.auth.deps import PrincipalDep
from service.errors import BadRequest, NotFound, error_envelope
from service.rca.models import (
    AlertmanagerWebhook,
    AlertStatus,
    AnalysisStatus,
    RcaRequest,
    RcaResponse,
    RcaStreamEvent,
    StoredAnalysis,
    StoredAnalysisList,
    WebhookResponse,
)
from service.rca.service import RcaService, describe_request
from service.rca.store import InvalidCursor, ListFilter
from service.state import AppState

router = APIRouter(tags=["rca"])

_ERROR = {
    "description": "OpenAI error envelope",
    "content": {
        "application/json": {
            "example": error_envelope(
                "alert.labels: labels.alertname is required (a non-empty string)",
                "invalid_request_error",
                "alert.labels",
            )
        }
    },
}
_STREAM_EXAMPLE = (
    'data: {"type":"retrieval","runbooks":[...]}\n\n'
    'data: {"type":"analysis_delta","delta":"{\\"summary\\""}\n\n'
    'data: {"type":"analysis_done"}\n\ndata: {"type":"result","result":{...}}\n\ndata: [DONE]\n\n'
)


def _stream_event_schema() -> dict[str, Any]:
    """`RcaStreamEvent` for the OpenAPI document: references to models that are components already
    (through `RcaResponse`) point there; the others are inlined, so every `$ref` resolves."""
    template = "#/components/schemas/{model}"
    schema = RcaStreamEvent.model_json_schema(ref_template=template)
    defs = schema.pop("$defs", {})
    components = {"RcaResponse", *RcaResponse.model_json_schema(ref_template=template).get("$defs", {})}

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            name = str(node.get("$ref", "")).rsplit("/", 1)[-1]
            if name in defs and name not in components:
                return walk(defs[name])
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    out: dict[str, Any] = walk(schema)
    return out


def _rca(state: AppState) -> RcaService:
    if state.rca is None:  # pragma: no cover - built at start-up
        raise RuntimeError("the RCA service is not running")
    return state.rca


@router.post(
    "/v1/rca",
    summary="Analyse one alert: runbooks, evidence and structured hypotheses",
    response_model=RcaResponse,
    responses={
        200: {
            "description": "The analysis; with `stream: true`, server-sent `RcaStreamEvent` objects then "
            "`data: [DONE]`.",
            "content": {
                "text/event-stream": {
                    "schema": _stream_event_schema(),
                    "example": _STREAM_EXAMPLE,
                }
            },
        },
        400: _ERROR,
        404: {"description": "Unknown or inaccessible collection"},
        502: {"description": "The model did not produce a valid analysis (code `invalid_analysis`)"},
        503: {"description": "Engine not ready or overloaded"},
    },
)
async def create_analysis(request: Request, state: StateDep, body: RcaRequest) -> Response:
    rca = _rca(state)
    # Visible-collection check first: a key that may not read the collection gets a 404 before admission.
    await state.knowledge.require(body.collection or state.settings.default_collection)
    if body.stream:

        async def start() -> AsyncIterator[bytes]:
            return rca.stream(body)

        stream = await state.access.run_generation(start, describe_request(body))
        assert not isinstance(stream, dict)
        return RelayResponse(_tracked(stream, state), media_type="text/event-stream", headers=SSE_HEADERS)
    result = await state.access.run_generation(
        lambda: rca.analyze(body), describe_request(body), receive=request.receive
    )
    return JSONResponse(result)


@router.post(
    "/v1/alertmanager/webhook",
    summary="Alertmanager webhook receiver: analyse firing alerts in the background",
    status_code=202,
    response_model=WebhookResponse,
    responses={400: _ERROR, 404: {"description": "Unknown or inaccessible collection"}},
)
async def alertmanager_webhook(
    state: StateDep,
    body: AlertmanagerWebhook,
    collection: Annotated[
        str | None, Query(description="Collection to search for runbooks (default: the server's default).")
    ] = None,
) -> JSONResponse:
    name = collection or state.settings.default_collection
    await state.knowledge.require(name)
    result = await _rca(state).webhook(body, collection=name)
    return JSONResponse(result.model_dump(mode="json"), status_code=202)


@router.get(
    "/v1/rca/analyses",
    summary="List stored analyses, newest first",
    response_model=StoredAnalysisList,
    responses={400: _ERROR},
)
async def list_analyses(
    state: StateDep,
    principal: PrincipalDep,
    status: Annotated[AnalysisStatus | None, Query(description="Analysis status.")] = None,
    alert_status: Annotated[AlertStatus | None, Query(description="Alert status.")] = None,
    alertname: Annotated[str | None, Query(description="Exact alert name.", max_length=200)] = None,
    fingerprint: Annotated[str | None, Query(description="Alert fingerprint.", max_length=64)] = None,
    since: Annotated[datetime | None, Query(description="Created at or after (RFC 3339).")] = None,
    until: Annotated[datetime | None, Query(description="Created before (RFC 3339).")] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="Page size.")] = 20,
    offset: Annotated[int, Query(ge=0, description="Skip this many (ignored with `cursor`).")] = 0,
    cursor: Annotated[
        str | None, Query(description="`next_cursor` of the previous page.", max_length=200)
    ] = None,
) -> StoredAnalysisList:
    flt = ListFilter(
        status=status,
        alert_status=alert_status,
        alertname=alertname,
        fingerprint=fingerprint,
        since=since,
        until=until,
        collections=principal.collections,
    )
    try:
        page, total, first, nxt = _rca(state).store.list(flt, limit=limit, offset=offset, cursor=cursor)
    except InvalidCursor as exc:
        raise BadRequest(str(exc), param="cursor", code="invalid_cursor") from exc
    return StoredAnalysisList(
        data=page, total=total, limit=limit, offset=first, has_more=nxt is not None, next_cursor=nxt
    )


@router.get(
    "/v1/rca/analyses/{analysis_id}",
    summary="One stored analysis",
    response_model=StoredAnalysis,
    responses={404: {"description": "No such analysis (or not visible to this API key)"}},
)
async def get_analysis(
    state: StateDep,
    principal: PrincipalDep,
    analysis_id: Annotated[str, Path(max_length=64, description="Analysis id.")],
) -> StoredAnalysis:
    found = _rca(state).store.get(analysis_id)
    if found is None or not principal.can_read(found.collection):
        raise NotFound(
            f"analysis '{analysis_id}' does not exist", param="analysis_id", code="analysis_not_found"
        )
    return found
