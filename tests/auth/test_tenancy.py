"""Roles and collection isolation: a key sees only its collections, everywhere, before any search."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import httpx
import pytest

from service.auth.context import RequestAccess, bind, unbind
from service.auth.principal import Principal
from tests.auth.conftest import (
    ADMIN_KEY,
    FIN_ADMIN_KEY,
    OPS_KEY,
    SECRET,
    Gateway,
    GatewayFactory,
    base_keys,
    bearer,
)
from tests.utils.fake_vllm import MODEL

QUESTION = [{"role": "user", "content": "What does exit code 137 cost and where is the ledger?"}]


@pytest.fixture
def gw(start_gateway: GatewayFactory) -> Gateway:
    return start_gateway(keys=base_keys())


def engine_saw_secret(gw: Gateway) -> bool:
    return SECRET in json.dumps(gw.fake.requests)


def finance_searches(gw: Gateway) -> float:
    return gw.metric("ragserve_retrieval_request_duration_seconds_count", collection="finance")


def assert_hidden(r: httpx.Response, name: str = "finance") -> None:
    """A collection the key may not see answers exactly like one that does not exist."""
    assert r.status_code == 404, r.text
    err = r.json()["error"]
    assert err["code"] == "collection_not_found"
    assert SECRET not in r.text


def test_models_and_collections_list_only_the_keys_collections(gw: Gateway) -> None:
    models = httpx.get(gw.v1 + "/models", headers=bearer(OPS_KEY)).json()["data"]
    ids = {m["id"] for m in models}
    assert "rag/runbooks" in ids and "rag/finance" not in ids and MODEL in ids
    # the engine's filesystem paths (`root`) are for admin keys only
    assert all("root" not in m for m in models)
    admin_models = httpx.get(gw.v1 + "/models", headers=bearer(ADMIN_KEY)).json()["data"]
    assert any(m.get("root") for m in admin_models if m["id"] == MODEL)
    names = [c["name"] for c in httpx.get(gw.v1 + "/collections", headers=bearer(OPS_KEY)).json()["data"]]
    assert names == ["runbooks"]
    admin = [c["name"] for c in httpx.get(gw.v1 + "/collections", headers=bearer(ADMIN_KEY)).json()["data"]]
    assert sorted(admin) == ["finance", "runbooks"]


def test_hidden_collections_look_missing_and_are_never_searched(gw: Gateway) -> None:
    before = finance_searches(gw)
    h = bearer(OPS_KEY)
    hidden = httpx.post(gw.v1 + "/retrieve", json={"query": "ledger", "collection": "finance"}, headers=h)
    missing = httpx.post(gw.v1 + "/retrieve", json={"query": "ledger", "collection": "nope"}, headers=h)
    assert_hidden(hidden)
    assert missing.status_code == 404
    # Same words, only the name differs: the answer does not tell "hidden" from "missing".
    assert hidden.json()["error"]["message"].replace("finance", "X") == missing.json()["error"][
        "message"
    ].replace("nope", "X")
    assert_hidden(httpx.get(gw.v1 + "/collections/finance/documents", headers=h))
    assert_hidden(gw.chat(OPS_KEY, {"model": "rag/finance", "messages": QUESTION}))
    assert_hidden(gw.chat(OPS_KEY, {"model": MODEL, "messages": QUESTION, "rag": {"collection": "finance"}}))
    assert finance_searches(gw) == before  # refused before the similarity search, not filtered after
    assert not engine_saw_secret(gw)
    ok = httpx.post(gw.v1 + "/retrieve", json={"query": "exit code 137", "collection": "runbooks"}, headers=h)
    assert ok.status_code == 200 and SECRET not in ok.text


def test_rag_chat_cites_only_the_keys_collection(gw: Gateway) -> None:
    gw.fake.script("Exit code 137 means the kernel killed it [1].")
    r = gw.chat(OPS_KEY, {"model": "rag/runbooks", "messages": QUESTION})
    assert r.status_code == 200, r.text
    cits = r.json()["citations"]
    assert cits and all(c["document_id"] in ("oom.md", "disk.md") for c in cits)
    gw.fake.script("[1]")
    r = gw.chat(OPS_KEY, {"model": MODEL, "messages": QUESTION, "rag": {"top_k": 5}})  # default: runbooks
    assert r.status_code == 200 and SECRET not in r.text
    assert not engine_saw_secret(gw)
    # The same question from the admin reaches finance: the isolation is the key's, not the data's.
    gw.fake.script("[1]")
    r = gw.chat(ADMIN_KEY, {"model": "rag/finance", "messages": QUESTION})
    assert r.status_code == 200 and SECRET in r.text


def test_streamed_rag_chat_on_a_hidden_collection(gw: Gateway) -> None:
    body: dict[str, Any] = {"model": "rag/finance", "messages": QUESTION, "stream": True}
    assert_hidden(gw.chat(OPS_KEY, body))


def test_user_keys_cannot_manage_the_knowledge_base(gw: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ragserve.audit")
    h = bearer(OPS_KEY)
    files = {"file": ("new.md", b"# New\n\nSome text.\n", "text/markdown")}
    for r in (
        httpx.post(gw.v1 + "/collections", json={"name": "mine"}, headers=h),
        httpx.delete(gw.v1 + "/collections/runbooks", headers=h),
        httpx.post(gw.v1 + "/collections/runbooks/documents", files=files, headers=h),
        httpx.delete(gw.v1 + "/collections/runbooks/documents/oom.md", headers=h),
        # Other collections' names give the same 403: nothing is learned about them either.
        httpx.post(gw.v1 + "/collections/finance/documents", files=files, headers=h),
        httpx.delete(gw.v1 + "/collections/finance", headers=h),
    ):
        assert r.status_code == 403, r.text
        assert r.json()["error"]["type"] == "permission_error"
        assert "role 'user'" in r.json()["error"]["message"]
    docs = httpx.get(gw.v1 + "/collections/runbooks/documents", headers=h).json()["data"]
    assert {d["document_id"] for d in docs} == {"oom.md", "disk.md"}
    denied = [r for r in caplog.records if r.name == "ragserve.audit" and "denied" in r.getMessage()]
    assert len(denied) == 6 and all(getattr(r, "key", None) == "ops" for r in denied)
    assert gw.metric("ragserve_rejected_requests_total", status="403", reason="permission") == 6


def test_admin_keys_manage_only_their_collections(gw: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ragserve.audit")
    fin = bearer(FIN_ADMIN_KEY)
    r = httpx.post(gw.v1 + "/collections", json={"name": "elsewhere"}, headers=fin)
    assert r.status_code == 403 and r.json()["error"]["code"] == "collection_not_allowed"
    assert httpx.delete(gw.v1 + "/collections/runbooks", headers=fin).status_code == 403
    files = {"file": ("q3.md", b"# Q3\n\nNumbers.\n", "text/markdown")}
    up = httpx.post(gw.v1 + "/collections/finance/documents", files=files, headers=fin)
    assert up.status_code == 202, up.text
    job_id = up.json()["job_id"]
    # The job belongs to finance: the ops key cannot even learn that it exists.
    assert httpx.get(gw.v1 + f"/jobs/{job_id}", headers=bearer(OPS_KEY)).status_code == 404
    deadline = time.monotonic() + 60
    while (job := httpx.get(gw.v1 + f"/jobs/{job_id}", headers=fin).json())["status"] not in (
        "succeeded",
        "failed",
    ):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert job["status"] == "succeeded", job
    assert httpx.delete(gw.v1 + "/collections/finance/documents/q3.md", headers=fin).status_code == 200
    admin = bearer(ADMIN_KEY)
    assert httpx.post(gw.v1 + "/collections", json={"name": "scratch"}, headers=admin).status_code == 201
    assert httpx.delete(gw.v1 + "/collections/scratch", headers=admin).status_code == 200
    actions = [
        (r.action, r.key)  # type: ignore[attr-defined]
        for r in caplog.records
        if r.name == "ragserve.audit" and getattr(r, "outcome", "") == "ok"
    ]
    assert actions == [
        ("documents.upload", "fin-admin"),
        ("document.delete", "fin-admin"),
        ("collection.create", "admin"),
        ("collection.delete", "admin"),
    ]


def test_server_tools_never_reach_a_hidden_collection(gw: Gateway) -> None:
    """Whatever the tool loop does with a call naming `finance`, nothing of it reaches the ops key."""
    call = json.dumps(
        {"name": "search_knowledge_base", "arguments": {"query": "ledger", "collection": "finance"}}
    )
    gw.fake.script(call, call, "answer", "The ledger is unknown.")
    body = {
        "model": MODEL,
        "messages": QUESTION,
        "server_tools": ["search_knowledge_base"],
        "tool_choice": "required",
    }
    before = finance_searches(gw)
    r = gw.chat(OPS_KEY, body)
    assert r.status_code in (200, 400, 404, 502), r.text
    assert SECRET not in r.text
    assert "finance" not in json.dumps([m for req in gw.fake.requests for m in req.get("messages", [])])
    assert finance_searches(gw) == before
    assert not engine_saw_secret(gw)


async def test_the_knowledge_service_gate_covers_every_caller(gw: Gateway, shared_embedder: Any) -> None:
    """The one door to the index refuses a bound principal's hidden collections, whoever calls it."""
    from ingest.knowledge_base import KnowledgeBase
    from service.errors import NotFound
    from service.knowledge import KnowledgeService
    from service.observability.metrics import Metrics

    ks = KnowledgeService(
        KnowledgeBase(gw.settings.collections_dir, shared_embedder), Metrics(), gw.settings.data_dir / "jobs2"
    )
    try:
        token = bind(RequestAccess(Principal("ops", "user", frozenset({"runbooks"}))))
        try:
            assert [c["name"] for c in await ks.list_collections()] == ["runbooks"]
            for call in (
                ks.search("finance", "ledger", top_k=3, mode="hybrid", filters=None),
                ks.list_documents("finance"),
                ks.require("finance"),
            ):
                with pytest.raises(NotFound):
                    await call
            assert await ks.search("runbooks", "exit code 137", top_k=1, mode="dense", filters=None)
        finally:
            unbind(token)
        # Outside a request (ingestion jobs, start-up) nothing is hidden.
        assert sorted(c["name"] for c in await ks.list_collections()) == ["finance", "runbooks"]
    finally:
        ks.close()
