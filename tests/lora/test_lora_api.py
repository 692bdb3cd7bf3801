"""LoRA admin routes and adapter selection through the gateway, against the scripted engine.

The engine is beside the point here (tests/e2e/test_lora_live.py runs the real one): these tests
check who may load and unload, what is refused before the engine sees it, how the engine's own
refusals come back, and that an adapter name selects the adapter in plain, grounded and tool requests.
"""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from service.settings import DEFAULT_EMBEDDER
from tests.lora.conftest import USER_KEY, LoraGateway, write_adapter
from tests.utils.fake_vllm import MODEL


def _error(r: httpx.Response, status: int, code: str | None) -> dict[str, object]:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["code"] == code, err
    return dict(err)


def test_load_list_select_unload(lora_gateway: LoraGateway, tmp_path: Path) -> None:
    gw = lora_gateway
    path = write_adapter(tmp_path / "ops-format")
    before = gw.metric("ragserve_lora_adapter_operations_total", operation="load", outcome="ok")
    r = gw.post("/load_lora_adapter", {"lora_name": "ops-format", "lora_path": str(path)})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == "ops-format" and body["parent"] == MODEL and body["rank"] == 8
    assert body["status"] == "loaded" and "added successfully" in body["message"]
    assert gw.fake.adapters == {"ops-format": str(path)}
    assert gw.metric("ragserve_lora_adapter_operations_total", operation="load", outcome="ok") == before + 1

    models = {m["id"]: m for m in httpx.get(gw.v1 + "/models", headers=_auth(), timeout=10).json()["data"]}
    assert models["ops-format"]["parent"] == MODEL
    assert models[MODEL].get("parent") is None

    # Plain request: the adapter's name goes to the engine as the model, and back to the client.
    gw.fake.script("Adapter answer.")
    hello = [{"role": "user", "content": "hello"}]
    r = httpx.post(gw.v1 + "/chat/completions", headers=_auth(), timeout=30,
                   json={"model": "ops-format", "messages": hello, "max_tokens": 8})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["model"] == "ops-format" and gw.fake.requests[-1]["model"] == "ops-format"
    assert gw.metric("ragserve_generation_tokens_total", model="ops-format") >= 2

    # Grounded with the `rag` field: retrieval and citations as for the base model, the adapter generates.
    gw.fake.script("Exit code 137 means the kernel killed it [1].")
    question = [{"role": "user", "content": "What does exit code 137 mean?"}]
    r = httpx.post(gw.v1 + "/chat/completions", headers=_auth(), timeout=30, json={
        "model": "ops-format", "rag": {"collection": "default", "top_k": 1},
        "messages": question, "max_tokens": 32})  # fmt: skip
    assert r.status_code == 200, r.text
    sent = gw.fake.requests[-1]
    assert sent["model"] == "ops-format"
    assert "exit code 137" in str(sent["messages"]).lower()  # the passage reached the adapter's prompt
    assert r.json()["citations"][0]["document_id"] == "oom.md"
    assert r.json()["citations"][0]["cited"] is True

    # Streamed too.
    gw.fake.script("Streamed adapter answer.")
    with httpx.stream("POST", gw.v1 + "/chat/completions", headers=_auth(), timeout=30, json={
        "model": "ops-format", "stream": True, "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 8}) as s:  # fmt: skip
        lines = [ln for ln in s.iter_lines() if ln.startswith("data: {")]
    assert lines and all('"model":"ops-format"' in ln.replace(" ", "") for ln in lines)

    r = gw.post("/unload_lora_adapter", {"lora_name": "ops-format"})
    assert r.status_code == 200 and r.json()["status"] == "unloaded"
    assert gw.fake.adapters == {}
    r = httpx.post(gw.v1 + "/chat/completions", headers=_auth(), timeout=30, json={
        "model": "ops-format", "messages": [{"role": "user", "content": "hello"}]})  # fmt: skip
    _error(r, 404, "model_not_found")


def test_tools_with_an_adapter_go_to_the_adapter(lora_gateway: LoraGateway, tmp_path: Path) -> None:
    gw = lora_gateway
    path = write_adapter(tmp_path / "tools-lora")
    assert (
        gw.post("/load_lora_adapter", {"lora_name": "tools-lora", "lora_path": str(path)}).status_code == 200
    )
    try:
        gw.fake.script('{"name": "get_weather", "arguments": {"city": "Paris"}}')
        r = httpx.post(gw.v1 + "/chat/completions", headers=_auth(), timeout=30, json={
            "model": "tools-lora", "messages": [{"role": "user", "content": "Weather in Paris?"}],
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {
                "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
            "tool_choice": "required"})  # fmt: skip
        assert r.status_code == 200, r.text
        assert gw.fake.requests[-1]["model"] == "tools-lora"
        call = r.json()["choices"][0]["message"]["tool_calls"][0]
        assert call["function"]["name"] == "get_weather"
    finally:
        gw.post("/unload_lora_adapter", {"lora_name": "tools-lora"})


def test_user_keys_and_anonymous_callers_are_refused(
    lora_gateway: LoraGateway, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gw = lora_gateway
    caplog.set_level(logging.INFO, logger="ragserve.audit")
    path = write_adapter(tmp_path / "a")
    err = _error(gw.post("/load_lora_adapter", {"lora_name": "a", "lora_path": str(path)}, key=USER_KEY),
                 403, "insufficient_role")  # fmt: skip
    assert err["type"] == "permission_error"
    _error(gw.post("/unload_lora_adapter", {"lora_name": "a"}, key=USER_KEY), 403, "insufficient_role")
    r = gw.post("/load_lora_adapter", {"lora_name": "a", "lora_path": str(path)}, key=None)
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    assert gw.fake.adapters == {}
    denied = [r.getMessage() for r in caplog.records if r.name == "ragserve.audit"]
    assert any("lora.load denied by key 'ops'" in m for m in denied), denied
    assert any("lora.unload denied by key 'ops'" in m for m in denied), denied


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda p: p / "missing", "adapter_not_found"),
        (lambda p: write_adapter(p / "big", rank=64), "lora_rank_too_large"),
        (lambda p: write_adapter(p / "dora", config={"use_dora": True}), "invalid_adapter"),
        (lambda p: write_adapter(p / "prefix", config={"peft_type": "PREFIX_TUNING"}), "invalid_adapter"),
        (lambda p: write_adapter(p / "noweights", weights=False), "invalid_adapter"),
        (lambda p: (p / "noconfig").mkdir() or p / "noconfig", "invalid_adapter"),
    ],
)
def test_bad_adapters_get_a_400_before_the_engine(
    lora_gateway: LoraGateway, tmp_path: Path, make: object, code: str
) -> None:
    gw = lora_gateway
    path = make(tmp_path)  # type: ignore[operator]
    n = len(gw.fake.requests)
    err = _error(gw.post("/load_lora_adapter", {"lora_name": "bad", "lora_path": str(path)}), 400, code)
    assert err["param"] == "lora_path" and err["type"] == "invalid_request_error"
    assert "bad" not in gw.fake.adapters and len(gw.fake.requests) == n


def test_broken_weights_get_a_400_and_the_engine_stays_up(lora_gateway: LoraGateway, tmp_path: Path) -> None:
    gw = lora_gateway
    path = write_adapter(tmp_path / "broken")
    weights = path / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:40])  # truncated: the engine's worker cannot read it
    before = gw.metric("ragserve_lora_adapter_operations_total", operation="load", outcome="rejected")
    err = _error(gw.post("/load_lora_adapter", {"lora_name": "broken", "lora_path": str(path)}), 400,
                 "invalid_adapter")  # fmt: skip
    assert "could not load adapter 'broken'" in str(err["message"])
    assert (
        gw.metric("ragserve_lora_adapter_operations_total", operation="load", outcome="rejected")
        == before + 1
    )
    assert httpx.get(gw.url + "/readyz", timeout=10).status_code == 200


@pytest.mark.parametrize(
    "name", [MODEL, "rag/default", DEFAULT_EMBEDDER, "has/slash", "with space", "-dash-first"]
)
def test_names_that_clash_or_are_malformed(lora_gateway: LoraGateway, tmp_path: Path, name: str) -> None:
    path = write_adapter(tmp_path / "ok")
    err = _error(lora_gateway.post("/load_lora_adapter", {"lora_name": name, "lora_path": str(path)}), 400,
                 "invalid_adapter_name")  # fmt: skip
    assert err["param"] == "lora_name"


def test_duplicates_unknowns_and_malformed_bodies(lora_gateway: LoraGateway, tmp_path: Path) -> None:
    gw = lora_gateway
    path = write_adapter(tmp_path / "dup")
    assert gw.post("/load_lora_adapter", {"lora_name": "dup", "lora_path": str(path)}).status_code == 200
    try:
        _error(
            gw.post("/load_lora_adapter", {"lora_name": "dup", "lora_path": str(path)}), 409, "adapter_exists"
        )
    finally:
        assert gw.post("/unload_lora_adapter", {"lora_name": "dup"}).status_code == 200
    _error(gw.post("/unload_lora_adapter", {"lora_name": "dup"}), 404, "adapter_not_found")
    _error(gw.post("/unload_lora_adapter", {"lora_name": MODEL}), 400, "invalid_adapter_name")
    err = _error(gw.post("/load_lora_adapter", {"lora_name": "x"}), 400, None)
    assert err["param"] == "lora_path"
    r = httpx.post(
        gw.v1 + "/load_lora_adapter",
        content=b"{not json",
        headers={**_auth(), "Content-Type": "application/json"},
        timeout=10,
    )
    _error(r, 400, "invalid_json")


def test_an_engine_without_runtime_loading_gets_a_clear_400(
    lora_gateway: LoraGateway, tmp_path: Path
) -> None:
    gw = lora_gateway
    gw.fake.lora_updates = False
    try:
        path = str(write_adapter(tmp_path / "z"))
        err = _error(
            gw.post("/load_lora_adapter", {"lora_name": "z", "lora_path": path}), 400, "lora_disabled"
        )
        assert "VLLM_ALLOW_RUNTIME_LORA_UPDATING" in str(err["message"])
    finally:
        gw.fake.lora_updates = True


def _auth() -> dict[str, str]:
    from tests.lora.conftest import ADMIN_KEY

    return {"Authorization": f"Bearer {ADMIN_KEY}"}
