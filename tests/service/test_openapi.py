"""/openapi.json (what /docs shows): every API route's request body, answer and error responses."""

from __future__ import annotations

from typing import Any

import pytest

from service.app import create_app
from service.settings import EngineSettings, Settings


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("openapi"), engine=EngineSettings(mode="remote", url="http://x")
    )
    schema: dict[str, Any] = create_app(settings).openapi()  # no lifespan: nothing starts
    return schema


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_every_reference_resolves(spec: dict[str, Any]) -> None:
    components = spec["components"]["schemas"]
    missing = {r for r in _refs(spec) if r.rsplit("/", 1)[-1] not in components}
    assert not missing


def _api_operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, ops in spec["paths"].items()
        if path.startswith("/v1/")
        for method, op in ops.items()
    ]


def test_every_api_route_documents_its_answer_and_errors(spec: dict[str, Any]) -> None:
    for path, method, op in _api_operations(spec):
        codes = {int(c) for c in op["responses"] if c != "default"}
        ok = [c for c in codes if c < 300]
        assert ok, (method, path)
        ok_content = op["responses"][str(ok[0])].get("content", {})
        schema = ok_content.get("application/json", {}).get("schema")
        assert schema and schema != {}, (method, path, "no response schema")
        errors = [c for c in codes if c >= 400 and c != 422]
        assert errors, (method, path, "no error responses")
        assert 422 not in codes, (method, path, "validation errors are 400 envelopes here")


def test_post_routes_document_their_json_bodies(spec: dict[str, Any]) -> None:
    for path, method, op in _api_operations(spec):
        if method != "post" or path.endswith("/documents"):  # uploads are multipart
            continue
        body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
        assert body.get("schema"), (method, path)
    chat = spec["paths"]["/v1/chat/completions"]["post"]
    assert chat["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "ChatCompletionRequest"
    )
    assert "text/event-stream" in chat["responses"]["200"]["content"]
    envelope = chat["responses"]["400"]["content"]["application/json"]["schema"]["$ref"]
    assert envelope.endswith("/ErrorResponse")
    request = spec["components"]["schemas"]["ChatCompletionRequest"]
    assert {"model", "messages", "rag", "tools"} <= set(request["properties"])
    assert request.get("additionalProperties", True) is not False  # unknown fields pass through


def test_middleware_answers_are_documented_on_every_route(spec: dict[str, Any]) -> None:
    """What the gateway answers before a route runs (issue 19): Host/keys/limits, cross-site, size, type."""
    for path, ops in spec["paths"].items():
        if path in ("/healthz", "/readyz"):
            continue
        for method, op in ops.items():
            codes = set(op["responses"])
            assert {"400", "401", "429"} <= codes, (method, path, codes)
            if method in ("post", "delete"):
                assert {"403", "413"} <= codes, (method, path, codes)
            if method == "post" and not path.endswith("/documents"):
                assert "415" in codes, (method, path, codes)
            if path.startswith("/v1/collections") and method in ("post", "delete"):
                assert "507" in codes, (method, path, codes)
