"""The gateway's HTTP contract, through real HTTP, against the scripted fake engine."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import openai
import pytest

from service.settings import DEFAULT_EMBEDDER
from tests.service.conftest import Gateway
from tests.utils.fake_vllm import MODEL


def sse_events(text: str) -> list[str]:
    """Split a raw SSE body into its `data:` payloads, checking the framing on the way."""
    assert text.endswith("\n\n"), "every SSE event ends with a blank line"
    events = []
    for block in text.split("\n\n"):
        if not block:
            continue
        assert block.startswith("data: "), f"unexpected SSE line: {block!r}"
        events.append(block[len("data: ") :])
    return events


def chat(gw: Gateway, body: dict[str, Any], **kw: Any) -> httpx.Response:
    return httpx.post(gw.v1 + "/chat/completions", json=body, timeout=30, **kw)


def test_health_and_readiness(gateway: Gateway) -> None:
    assert httpx.get(gateway.url + "/healthz").json() == {"status": "ok"}
    r = httpx.get(gateway.url + "/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ready"}  # public: ready or not, no counts or errors (issue 19, #12)


def test_models_lists_base_embedder_and_rag_collections(gateway: Gateway) -> None:
    data = httpx.get(gateway.v1 + "/models").json()
    assert data["object"] == "list"
    ids = {m["id"]: m for m in data["data"]}
    assert MODEL in ids
    assert DEFAULT_EMBEDDER in ids
    assert ids["rag/default"]["parent"] == MODEL
    assert all(m["object"] == "model" for m in data["data"])


def test_plain_chat_passes_through_with_usage(gateway: Gateway) -> None:
    gateway.fake.script("Hello there.")
    r = chat(gateway, {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8})
    assert r.status_code == 200
    body = r.json()
    assert body["choices"][0]["message"]["content"] == "Hello there."
    assert body["usage"]["completion_tokens"] == 2
    assert "citations" not in body
    assert gateway.fake.requests[-1]["messages"] == [{"role": "user", "content": "hi"}]


def test_rag_chat_grounds_prompt_and_returns_citations(gateway: Gateway) -> None:
    gateway.fake.script("The kernel killed it for exceeding its memory limit [1].")
    r = chat(
        gateway,
        {
            "model": "rag/default",
            "messages": [{"role": "user", "content": "Why was my container killed with exit code 137?"}],
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "rag/default"
    cits = body["citations"]
    assert cits and cits[0]["index"] == 1
    assert cits[0]["document_id"] == "runbooks/oom.md"
    assert cits[0]["cited"] is True
    assert set(cits[0]) >= {"index", "chunk_id", "document_id", "source", "page", "score", "text"}
    sent = gateway.fake.requests[-1]
    assert sent["model"] == MODEL  # the virtual model maps to the base model
    assert sent["messages"][0]["role"] == "system"
    assert "[1]" in sent["messages"][-1]["content"] and "exit code 137" in sent["messages"][-1]["content"]
    assert sent["max_tokens"] > 0


def test_rag_extension_field_on_base_model(gateway: Gateway) -> None:
    gateway.fake.script("Prune images [1].")
    r = chat(
        gateway,
        {
            "model": MODEL,
            "messages": [{"role": "user", "content": "disk is full, what to remove?"}],
            "rag": {"collection": "default", "top_k": 1, "mode": "bm25"},
        },
    )
    assert r.status_code == 200, r.text
    cits = r.json()["citations"]
    assert len(cits) == 1 and cits[0]["document_id"] == "runbooks/disk.md"


def test_rag_chinese_question_uses_chinese_template(gateway: Gateway) -> None:
    gateway.fake.script("应先检查最近一次发布 [1]。")
    r = chat(
        gateway,
        {"model": "rag/default", "messages": [{"role": "user", "content": "错误率过高时应该先做什么？"}]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["citations"][0]["document_id"] == "guide/zh.md"
    assert "段落" in gateway.fake.requests[-1]["messages"][-1]["content"]


def test_rag_passages_respect_token_budget(gateway: Gateway) -> None:
    # The fake's context is 2048 "tokens" (words); asking for 1875 leaves room for some passages only.
    gateway.fake.script("I don't know.")
    r = chat(
        gateway,
        {
            "model": "rag/default",
            "max_tokens": 1875,
            "messages": [{"role": "user", "content": "memory limit exit code"}],
            "rag": {"top_k": 3},
        },
    )
    assert r.status_code == 200, r.text
    sent = gateway.fake.requests[-1]
    n_words = sum(len(str(m["content"]).split()) for m in sent["messages"])
    assert n_words + 1875 <= 2048
    assert 0 < len(r.json()["citations"]) < 3


def test_streaming_sse_framing_and_citations_on_final_chunk(gateway: Gateway) -> None:
    gateway.fake.script("Check the pod description [1].")
    r = chat(
        gateway,
        {
            "model": "rag/default",
            "stream": True,
            "messages": [{"role": "user", "content": "How do I confirm an OOMKilled container?"}],
        },
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert len({c["id"] for c in chunks}) == 1, "one id per stream"
    assert all(c["model"] == "rag/default" for c in chunks)
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert all(f is None for f in finishes[:-1]) and finishes[-1] == "stop"
    assert "citations" in chunks[-1] and all("citations" not in c for c in chunks[:-1])
    assert not any("usage" in c and c["usage"] for c in chunks), "usage only when asked for"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Check the pod description [1]."


def test_streaming_include_usage_puts_usage_last(gateway: Gateway) -> None:
    gateway.fake.script("one two three")
    r = chat(
        gateway,
        {
            "model": MODEL,
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "count"}],
        },
    )
    chunks = [json.loads(e) for e in sse_events(r.text)[:-1]]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 3


def test_openai_client_sync_async_and_stream(gateway: Gateway) -> None:
    client = openai.OpenAI(base_url=gateway.v1, api_key="unused")
    gateway.fake.script("Roll back the release [1].")
    resp = client.chat.completions.create(
        model="rag/default", messages=[{"role": "user", "content": "what to do on high error rate"}]
    )
    assert resp.choices[0].message.content == "Roll back the release [1]."
    assert resp.usage is not None and resp.usage.total_tokens > 0
    assert resp.model_extra and resp.model_extra["citations"]

    gateway.fake.script("a b c d")
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "x"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    parts, usage = [], None
    for ev in stream:
        if ev.choices:
            parts.append(ev.choices[0].delta.content or "")
        if ev.usage:
            usage = ev.usage
    assert "".join(parts) == "a b c d" and usage is not None and usage.completion_tokens == 4

    async def run_async() -> str:
        aclient = openai.AsyncOpenAI(base_url=gateway.v1, api_key="unused")
        gateway.fake.script("async works")
        r = await aclient.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "y"}])
        await aclient.close()
        return r.choices[0].message.content or ""

    import asyncio

    assert asyncio.run(run_async()) == "async works"


def test_completions_endpoint(gateway: Gateway) -> None:
    gateway.fake.script("continued text")
    client = openai.OpenAI(base_url=gateway.v1, api_key="unused")
    r = client.completions.create(model=MODEL, prompt="Once upon", max_tokens=4)
    assert r.choices[0].text == "continued text"
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model="rag/default", prompt="x", max_tokens=4)


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"model": MODEL, "messages": []}, 400, "messages"),
        ({"model": MODEL}, 400, "messages"),
        (
            {"model": MODEL, "messages": [{"role": "user", "content": "x"}], "temperature": 5},
            400,
            "temperature",
        ),
        ({"model": MODEL, "messages": [{"role": "user", "content": "x"}], "n": 3}, 400, "n"),
        ({"model": MODEL, "messages": [{"role": "wizard", "content": "x"}]}, 400, None),
        (
            {
                "model": MODEL,
                "messages": [{"role": "user", "content": "x"}],
                "response_format": {"type": "json_schema"},
            },
            400,
            None,
        ),
        ({"model": "nope", "messages": [{"role": "user", "content": "x"}]}, 404, None),
        ({"model": "rag/missing", "messages": [{"role": "user", "content": "x"}]}, 404, "collection"),
        ({"model": MODEL, "messages": [{"role": "user", "content": "x"}], "rag": {"bogus": 1}}, 400, None),
    ],
)
def test_bad_requests_get_openai_error_envelopes(
    gateway: Gateway, body: dict[str, Any], status: int, param: str | None
) -> None:
    r = chat(gateway, body)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["message"]
    if param:
        assert err["param"] and err["param"].startswith(param)


def test_malformed_json_and_wrong_shapes(gateway: Gateway) -> None:
    r = httpx.post(
        gateway.v1 + "/chat/completions", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    r = httpx.post(gateway.v1 + "/chat/completions", json=[1, 2])
    assert r.status_code == 400
    r = httpx.get(gateway.v1 + "/nothing-here")
    assert r.status_code == 404 and "error" in r.json()


def test_context_length_error_is_400(gateway: Gateway) -> None:
    long = "word " * 3000
    r = chat(gateway, {"model": MODEL, "messages": [{"role": "user", "content": long}]})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "context_length_exceeded"


def test_oversized_body_is_413(gateway: Gateway) -> None:
    big = "x" * (300 * 1024)
    r = chat(gateway, {"model": MODEL, "messages": [{"role": "user", "content": big}]})
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "request_too_large"


def test_embeddings_float_and_base64(gateway: Gateway) -> None:
    import base64

    import numpy as np

    client = openai.OpenAI(base_url=gateway.v1, api_key="unused")
    r = client.embeddings.create(
        model=DEFAULT_EMBEDDER, input=["restart the pod", "rotate logs"], encoding_format="float"
    )
    assert len(r.data) == 2 and len(r.data[0].embedding) == 512
    assert abs(float(np.linalg.norm(r.data[0].embedding)) - 1.0) < 1e-3
    assert r.usage.prompt_tokens > 0
    raw = httpx.post(
        gateway.v1 + "/embeddings",
        json={"model": DEFAULT_EMBEDDER, "input": "restart the pod", "encoding_format": "base64"},
    ).json()
    vec = np.frombuffer(base64.b64decode(raw["data"][0]["embedding"]), dtype="<f4")
    assert vec.shape == (512,)
    assert np.allclose(vec, r.data[0].embedding, atol=1e-5)
    bad = httpx.post(gateway.v1 + "/embeddings", json={"model": "other", "input": "x"})
    assert bad.status_code == 404


def test_langchain_clients(gateway: Gateway) -> None:
    from langchain_openai import ChatOpenAI, OpenAIEmbeddings

    gateway.fake.script("langchain streamed [1]")
    llm = ChatOpenAI(base_url=gateway.v1, api_key="unused", model="rag/default", stream_usage=True)
    chunks = list(llm.stream("How do I prune images?"))
    text = "".join(str(c.content) for c in chunks)
    assert text == "langchain streamed [1]"
    total = chunks[0]
    for c in chunks[1:]:
        total = total + c
    assert total.usage_metadata is not None and total.usage_metadata["output_tokens"] == 3
    emb = OpenAIEmbeddings(
        base_url=gateway.v1, api_key="unused", model=DEFAULT_EMBEDDER, check_embedding_ctx_length=False
    )
    vecs = emb.embed_documents(["a runbook", "a manual"])
    assert len(vecs) == 2 and len(vecs[0]) == 512


def test_retrieve(gateway: Gateway) -> None:
    r = httpx.post(
        gateway.v1 + "/retrieve",
        json={"query": "crictl rmi --prune", "collection": "default", "top_k": 2, "mode": "bm25"},
    )
    assert r.status_code == 200
    results = r.json()["results"]
    assert results[0]["document_id"] == "runbooks/disk.md"
    assert set(results[0]) >= {"chunk_id", "document_id", "source", "page", "score", "text", "metadata"}
    r = httpx.post(gateway.v1 + "/retrieve", json={"query": "x", "collection": "nope"})
    assert r.status_code == 404
    r = httpx.post(gateway.v1 + "/retrieve", json={"query": "x", "top_k": 0})
    assert r.status_code == 400
    r = httpx.post(
        gateway.v1 + "/retrieve", json={"query": "memory", "filters": {"document_id": "runbooks/disk.md"}}
    )
    assert {h["document_id"] for h in r.json()["results"]} <= {"runbooks/disk.md"}


def _wait_job(gw: Gateway, job_id: str, timeout_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = httpx.get(f"{gw.v1}/jobs/{job_id}").json()
        assert job["status"] in ("queued", "running", "succeeded", "failed")
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.2)
    raise TimeoutError(job_id)


def test_collection_lifecycle_upload_jobs_and_delete(gateway: Gateway) -> None:
    v1 = gateway.v1
    r = httpx.post(v1 + "/collections", json={"name": "team-a"})
    assert r.status_code == 201, r.text
    assert httpx.post(v1 + "/collections", json={"name": "team-a"}).status_code == 409
    assert httpx.post(v1 + "/collections", json={"name": "../etc"}).status_code == 400
    files = [
        ("file", ("alpha.md", b"# Alpha\n\nThe alpha service listens on port 7001.\n", "text/markdown")),
        ("file", ("beta.txt", b"Beta restarts every night at 02:00 UTC.", "text/plain")),
    ]
    r = httpx.post(v1 + "/collections/team-a/documents", files=files)
    assert r.status_code == 202, r.text
    job = _wait_job(gateway, r.json()["job_id"])
    assert job["status"] == "succeeded", job
    assert job["summary"]["added"] == 2
    docs = httpx.get(v1 + "/collections/team-a/documents").json()
    assert docs["object"] == "list"
    assert {d["document_id"] for d in docs["data"]} == {"alpha.md", "beta.txt"}
    assert all(set(d) >= {"document_id", "source", "chunks", "sha256", "ingested_at"} for d in docs["data"])
    names = {m["id"] for m in httpx.get(v1 + "/models").json()["data"]}
    assert "rag/team-a" in names
    hits = httpx.post(
        v1 + "/retrieve", json={"query": "which port does alpha listen on", "collection": "team-a"}
    )
    assert hits.json()["results"][0]["document_id"] == "alpha.md"
    # re-upload unchanged: skipped
    r = httpx.post(v1 + "/collections/team-a/documents", files=files[:1])
    assert _wait_job(gateway, r.json()["job_id"])["summary"]["unchanged"] == 1
    assert httpx.delete(v1 + "/collections/team-a/documents/alpha.md").status_code == 200
    assert httpx.delete(v1 + "/collections/team-a/documents/alpha.md").status_code == 404
    docs = httpx.get(v1 + "/collections/team-a/documents").json()["data"]
    assert [d["document_id"] for d in docs] == ["beta.txt"]
    assert httpx.delete(v1 + "/collections/team-a").status_code == 200
    assert httpx.get(v1 + "/collections/team-a/documents").status_code == 404
    assert httpx.get(v1 + "/jobs/job-doesnotexist").status_code == 404


def test_upload_rejects_traversal_and_reports_bad_files(gateway: Gateway) -> None:
    v1 = gateway.v1
    r = httpx.post(
        v1 + "/collections/uploads/documents", files=[("file", ("../evil.md", b"x", "text/plain"))]
    )
    assert r.status_code == 400 and "not allowed" in r.json()["error"]["message"]
    r = httpx.post(v1 + "/collections/uploads/documents", json={"file": "x"})
    assert r.status_code == 400
    files = [
        ("file", ("broken.pdf", b"%PDF-1.4 this is not a pdf", "application/pdf")),
        ("file", ("ok.txt", b"A fine document about queues.", "text/plain")),
    ]
    r = httpx.post(v1 + "/collections/uploads/documents", files=files)
    job = _wait_job(gateway, r.json()["job_id"])
    assert job["status"] == "succeeded"
    assert job["summary"]["failed"] == 1 and job["summary"]["added"] == 1
    assert job["summary"]["failures"][0]["source"].endswith("broken.pdf")


def test_metrics_exposed(gateway: Gateway) -> None:
    text = httpx.get(gateway.url + "/metrics").text
    for name in (
        "ragserve_http_requests_total",
        "ragserve_http_request_duration_seconds_bucket",
        "ragserve_retrieval_duration_seconds_bucket",
        "ragserve_build_info",
        "ragserve_engine_up 1.0",
    ):
        assert name in text, name
    assert 'route="/v1/chat/completions"' in text


def test_embeddings_accept_token_arrays(gateway: Gateway, shared_embedder: Any) -> None:
    import numpy as np

    url = gateway.v1 + "/embeddings"
    text_vec = httpx.post(url, json={"model": DEFAULT_EMBEDDER, "input": "restart the pod"}).json()
    ids = shared_embedder.token_ids("restart the pod")
    r = httpx.post(url, json={"model": DEFAULT_EMBEDDER, "input": [ids]})
    assert r.status_code == 200, r.text
    assert np.allclose(r.json()["data"][0]["embedding"], text_vec["data"][0]["embedding"], atol=1e-5)
    assert r.json()["usage"]["prompt_tokens"] == len(ids)
