"""`POST /v1/rca` over real HTTP: retrieval of the sample-corpus runbooks, the decoding schema sent to
the engine, server-side verification of evidence refs, budgets, bad input, streaming."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import jsonschema
import pytest

from service.rca.models import RcaResponse, RcaStreamEvent
from tests.rca.conftest import RcaGateway, alert, model_reply

LOG = "2026-11-23T09:59:58Z cart: FATAL config key PAYMENT_URL is not set"


def _decoding_schema(gw: RcaGateway) -> dict[str, Any]:
    body = gw.sent()[-1]
    schema: dict[str, Any] = body["structured_outputs"]["json"]
    return schema


def _ref_enum(schema: dict[str, Any]) -> list[str]:
    props = schema["properties"]["hypotheses"]["items"]["properties"]
    return list(props["evidence"]["items"].get("enum", []))


def test_analysis_cites_the_runbook_and_verified_evidence(gw: RcaGateway) -> None:
    gw.fake.script(model_reply("runbook:1", "log:0", "change:0", "log:7"))
    body = {
        "alert": alert(),
        "evidence": {
            "logs": [{"text": LOG, "source": "cart-7d9f"}],
            "changes": [{"description": "cart v2.3.1 rolled out", "kind": "deploy", "id": "CH-42"}],
        },
    }
    r = gw.post(body)
    assert r.status_code == 200, r.text
    out = RcaResponse.model_validate(r.json())
    # Runbooks come from retrieval; the right one is first.
    assert out.runbooks and out.runbooks[0].document_id == "runbooks/kube-pod-crashlooping.md"
    assert out.runbooks[0].ref == "runbook:1" and out.runbooks[0].index == 1
    # The best runbook's diagnosis and mitigation come along (the alert text matches its "Meaning").
    crash = [c.text for c in out.runbooks if c.document_id == "runbooks/kube-pod-crashlooping.md"]
    assert any("kubectl logs POD" in t for t in crash) and any("rollout undo" in t for t in crash), crash
    assert len({c.chunk_id for c in out.runbooks}) == len(out.runbooks)
    # The engine decoded under a schema whose refs are exactly the ids it was shown.
    schema = _decoding_schema(gw)
    refs = _ref_enum(schema)
    assert "runbook:1" in refs and "log:0" in refs and "change:0" in refs and "log:7" not in refs
    jsonschema.validate(json.loads(model_reply("runbook:1", "log:0")), schema)
    h = out.hypotheses[0]
    by_ref = {e.ref: e for e in h.evidence}
    assert set(by_ref) == {"runbook:1", "log:0", "change:0"}  # log:7 was never supplied
    assert by_ref["log:0"].kind == "log" and "PAYMENT_URL is not set" in by_ref["log:0"].excerpt
    assert by_ref["change:0"].kind == "change" and "cart v2.3.1 rolled out" in by_ref["change:0"].excerpt
    assert by_ref["runbook:1"].excerpt[:40] == out.runbooks[0].text.strip()[:40]
    assert any("not supplied" in m for m in out.missing_data)
    assert 0 <= h.confidence <= 1 and out.severity == "warning"
    # The prompt quotes the evidence under its ids.
    prompt = gw.sent()[-1]["messages"][-1]["content"]
    assert (
        "ALERT KubePodCrashLooping (firing)" in prompt and '[log:0] """' in prompt and "[runbook:1]" in prompt
    )
    # Stored and retrievable by id.
    stored = httpx.get(f"{gw.v1}/rca/analyses/{out.id}").json()
    assert stored["status"] == "completed" and stored["source"] == "api"
    assert stored["result"]["hypotheses"] == r.json()["hypotheses"]
    assert stored["fingerprint"] == out.alert.fingerprint and len(out.alert.fingerprint) == 16


def test_no_relevant_runbook_says_so(gw: RcaGateway) -> None:
    gw.fake.script(model_reply())
    r = gw.post({"alert": alert("EtcdNoLeader")})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["runbooks"] == []
    assert any("no runbook" in m for m in out["missing_data"])
    assert any("no logs, metrics, traces or changes" in m for m in out["missing_data"])
    schema = _decoding_schema(gw)
    assert not any(ref.startswith("runbook:") for ref in _ref_enum(schema))
    assert "No runbook in the knowledge base matches this alert" in gw.sent()[-1]["messages"][-1]["content"]
    assert out["hypotheses"][0]["evidence"] == []


def test_runbook_threshold_is_a_setting(gw: RcaGateway) -> None:
    gw.settings.rca.min_dense_score = 0.99
    gw.fake.script(model_reply())
    out = gw.post({"alert": alert("HighErrorRate"), "options": {"min_score": 0.99}}).json()
    # Only passages that name the alert (in their text, document or runbook title) still count, plus more
    # of the best of those runbooks: the English and the Chinese HighErrorRate runbooks, nothing else.
    titled = {"runbooks/high-error-rate.md", "runbooks/high-error-rate-zh.md"}  # "# ...HighErrorRate" titles
    assert {c["document_id"] for c in out["runbooks"]} <= titled and out["runbooks"]


def test_decoding_schema_bounds_every_string_and_array(gw: RcaGateway) -> None:
    gw.fake.script(model_reply("runbook:1"))
    assert gw.post({"alert": alert(), "options": {"max_hypotheses": 3}}).status_code == 200
    schema = _decoding_schema(gw)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "string" and "enum" not in node:
                assert "maxLength" in node, node
            if node.get("type") == "array":
                assert "maxItems" in node, node
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(schema)
    assert schema["properties"]["hypotheses"]["maxItems"] == 3
    assert "excerpt" not in json.dumps(schema)  # the model never writes evidence text


def test_huge_evidence_is_cut_to_the_budget_and_said_so(gw: RcaGateway) -> None:
    logs = [{"text": f"line {i} " + "x" * 400} for i in range(3000)]
    gw.fake.script(model_reply("log:0", "log:2999"))
    r = gw.post({"alert": alert(), "evidence": {"logs": logs}})
    assert r.status_code == 200, r.text
    out = r.json()
    assert any("not analysed" in m and "of 3000 log items" in m for m in out["missing_data"]), out[
        "missing_data"
    ]
    assert any("cut to 300 characters" in m for m in out["missing_data"])
    refs = _ref_enum(_decoding_schema(gw))
    assert "log:0" in refs and "log:2999" not in refs
    assert [e["ref"] for e in out["hypotheses"][0]["evidence"]] == ["log:0"]
    prompt = gw.sent()[-1]["messages"][-1]["content"]
    assert len(prompt) < gw.settings.rca.evidence_max_chars + 6000


def test_prompt_is_trimmed_to_the_model_context(gw: RcaGateway) -> None:
    gw.settings.rca.evidence_max_chars = 200_000
    gw.settings.rca.evidence_item_max_chars = 2000
    logs = [{"text": " ".join(f"w{i}x{j}" for j in range(300))} for i in range(40)]
    gw.fake.script(model_reply("log:0"))
    r = gw.post({"alert": alert(), "evidence": {"logs": logs}, "options": {"max_tokens": 512}})
    assert r.status_code == 200, r.text
    assert any("to fit the model's context" in m for m in r.json()["missing_data"])
    sent = gw.sent()[-1]
    words = sum(len(str(m["content"]).split()) for m in sent["messages"])
    assert words + 512 <= gw.fake.max_model_len


def test_invalid_output_is_retried_with_tighter_bounds(gw: RcaGateway) -> None:
    gw.fake.script('{"summary": "cut off', model_reply("runbook:1"))
    r = gw.post({"alert": alert()})
    assert r.status_code == 200, r.text
    first, second = (s["structured_outputs"]["json"] for s in gw.sent()[-2:])
    assert second["properties"]["hypotheses"]["maxItems"] == 1
    assert second["properties"]["summary"]["maxLength"] < first["properties"]["summary"]["maxLength"]


def test_invalid_output_twice_is_a_502_and_a_failed_analysis(gw: RcaGateway) -> None:
    gw.fake.script(
        "not json", json.dumps({"summary": "x", "severity": "bad", "hypotheses": [], "missing_data": []})
    )
    r = gw.post({"alert": alert()})
    assert r.status_code == 502
    err = r.json()["error"]
    assert err["code"] == "invalid_analysis" and "valid analysis" in err["message"]
    listing = httpx.get(gw.v1 + "/rca/analyses", params={"status": "failed", "limit": 1}).json()
    assert listing["data"][0]["error"].startswith("the model did not produce a valid analysis")


def test_malformed_alert_payloads_are_400_naming_the_field(gw: RcaGateway) -> None:
    cases: list[tuple[Any, str | None]] = [
        ({"alert": {"labels": {"severity": "critical"}}}, "alert.labels"),
        ({"alert": {"labels": {"alertname": ""}}}, "alert.labels"),
        ({"alert": {"labels": "KubePodCrashLooping"}}, "alert.labels"),
        ({"alert": {"labels": {"alertname": "X"}, "status": "burning"}}, "alert.status"),
        ({"alert": {"labels": {"alertname": "X"}, "startsAt": "yesterday"}}, "alert.startsAt"),
        ({"evidence": {}}, "alert"),
        ({"alert": alert(), "evidence": {"logs": [{"source": "x"}]}}, "evidence.logs.0.text"),
        ({"alert": alert(), "options": {"max_hypotheses": 9}}, "options.max_hypotheses"),
    ]
    for body, param in cases:
        r = gw.post(body)
        assert r.status_code == 400, (body, r.text)
        err = r.json()["error"]
        assert err["type"] == "invalid_request_error"
        assert err["param"] is not None and err["param"].startswith(param or ""), (body, err)
        assert err["param"] in err["message"]
    r = httpx.post(gw.v1 + "/rca", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    r = gw.post({"alert": alert(), "collection": "nope"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "collection_not_found"
    assert not gw.sent()


def test_streaming_sends_progress_then_the_verified_result(gw: RcaGateway) -> None:
    gw.fake.script(model_reply("runbook:1", "log:0", "log:5"))
    body = {"alert": alert(), "evidence": {"logs": [{"text": LOG}]}, "stream": True}
    events: list[Any] = []
    with httpx.stream("POST", gw.v1 + "/rca", json=body, timeout=60) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: "):
                events.append(line[6:])
    assert events[-1] == "[DONE]"
    parsed = [RcaStreamEvent.model_validate_json(e) for e in events[:-1]]
    types = [e.type for e in parsed]
    assert types[0] == "retrieval" and types[-1] == "result" and types[-2] == "analysis_done"
    assert "analysis_delta" in types
    assert parsed[0].runbooks and parsed[0].runbooks[0].document_id == "runbooks/kube-pod-crashlooping.md"
    deltas = "".join(e.delta or "" for e in parsed if e.type == "analysis_delta")
    assert json.loads(deltas)["hypotheses"][0]["evidence"] == ["runbook:1", "log:0", "log:5"]
    result = parsed[-1].result
    assert result is not None
    assert [e.ref for e in result.hypotheses[0].evidence] == ["runbook:1", "log:0"]
    stored = httpx.get(f"{gw.v1}/rca/analyses/{result.id}").json()
    assert stored["status"] == "completed"


def test_streaming_error_travels_in_the_stream(gw: RcaGateway) -> None:
    gw.fake.script("nope", "still nope")
    body = {"alert": alert(), "stream": True}
    with httpx.stream("POST", gw.v1 + "/rca", json=body, timeout=60) as r:
        lines = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    last = json.loads(lines[-2])
    assert last["type"] == "error" and last["error"]["code"] == "invalid_analysis"


def test_openapi_describes_the_contract(gw: RcaGateway) -> None:
    spec = httpx.get(gw.url + "/openapi.json").json()
    paths = spec["paths"]
    for path in ("/v1/rca", "/v1/alertmanager/webhook", "/v1/rca/analyses", "/v1/rca/analyses/{analysis_id}"):
        assert path in paths
    schemas = spec["components"]["schemas"]
    ev = schemas["EvidenceRef"]["properties"]["kind"]
    assert set(ev["enum"]) == {"runbook", "log", "metric", "trace", "change"}
    assert schemas["Hypothesis"]["properties"]["confidence"]["maximum"] == 1
    assert "startsAt" in schemas["Alert"]["properties"] and "generatorURL" in schemas["Alert"]["properties"]
    assert paths["/v1/rca"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/RcaRequest"
    )
    # Every reference resolves (client generators fail on dangling ones), including the SSE schema.
    refs: list[str] = []

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for v in node.values():
                collect(v)
        elif isinstance(node, list):
            for v in node:
                collect(v)

    collect(spec)
    assert refs and all(r.startswith("#/components/schemas/") and r.split("/")[-1] in schemas for r in refs)
    sse = paths["/v1/rca"]["post"]["responses"]["200"]["content"]["text/event-stream"]["schema"]
    assert set(sse["properties"]["type"]["enum"]) >= {"retrieval", "tool_call", "result", "error"}
    params = {p["name"]: p for p in paths["/v1/rca/analyses"]["get"]["parameters"]}
    assert {"status", "alert_status", "alertname", "since", "until", "limit", "offset", "cursor"} <= set(
        params
    )
    for name, schema in schemas.items():
        if name.startswith(("Rca", "Alert", "Hypothesis", "Evidence", "Stored", "Webhook", "Runbook")):
            for prop, p in schema.get("properties", {}).items():
                assert p.get("description") or "$ref" in p or "allOf" in p, (name, prop)


def test_compact_decoding_sends_a_whitespace_free_grammar(gw: RcaGateway) -> None:
    gw.settings.rca.json_whitespace = "compact"
    gw.fake.script(model_reply("runbook:1", "log:0"))
    r = gw.post({"alert": alert(), "evidence": {"logs": [{"text": LOG}]}})
    assert r.status_code == 200, r.text
    constraint = gw.sent()[-1]["structured_outputs"]
    assert set(constraint) == {"grammar"}
    grammar = constraint["grammar"]
    assert '"\\"runbook:1\\""' in grammar and '"\\"log:0\\""' in grammar  # the refs enum
    assert '"\\"summary\\""' in grammar and "{1, 160}" in grammar  # bounded strings
    root = next(line for line in grammar.splitlines() if line.startswith("root ::="))
    assert "[ \\n" not in root  # no optional whitespace between the fields


def test_an_engine_without_grammars_gets_the_json_schema(gw: RcaGateway) -> None:
    gw.settings.rca.json_whitespace = "compact"
    gw.fake.refused_structured_outputs = {"grammar"}
    analyzer = gw.rca.analyzer
    try:
        gw.fake.script(model_reply("runbook:1"), model_reply("runbook:1"))
        assert gw.post({"alert": alert()}).status_code == 200
        assert gw.post({"alert": alert()}).status_code == 200
        kinds = [set(r["structured_outputs"]) for r in gw.sent()]
        assert kinds == [{"grammar"}, {"json"}, {"json"}]  # refused once, then remembered
    finally:
        gw.fake.refused_structured_outputs = set()
        analyzer._grammar_ok = True


def test_a_client_leaving_a_stream_fails_the_stored_analysis(gw: RcaGateway) -> None:
    gw.fake.token_delay_s = 0.2
    try:
        gw.fake.script(model_reply("runbook:1"))
        body = {"alert": alert(), "stream": True}
        cancelled_before = gw.fake.cancelled_streams
        with httpx.stream("POST", gw.v1 + "/rca", json=body, timeout=60) as r:
            for line in r.iter_lines():
                if line.startswith("data: ") and '"analysis_delta"' in line:
                    break  # leave while the model is still writing
        deadline = time.monotonic() + 20
        while True:
            failed = httpx.get(gw.v1 + "/rca/analyses", params={"status": "failed", "limit": 1}).json()[
                "data"
            ]
            if failed and "closed the stream" in (failed[0]["error"] or ""):
                break
            assert time.monotonic() < deadline, failed
            time.sleep(0.1)
        # ... and the engine stops generating for nobody: its stream is closed (the scripted reply
        # would take ~9 s more at 0.2 s a word).
        deadline = time.monotonic() + 3
        while gw.fake.in_flight or gw.fake.cancelled_streams == cancelled_before:
            assert time.monotonic() < deadline, "the engine stream was left open"
            time.sleep(0.05)
    finally:
        gw.fake.token_delay_s = 0.0


def test_frequency_penalty_is_a_setting(gw: RcaGateway, monkeypatch: pytest.MonkeyPatch) -> None:
    gw.fake.script(model_reply("runbook:1"))
    assert gw.post({"alert": alert()}).status_code == 200
    assert gw.sent()[-1]["frequency_penalty"] == 0.5  # the default
    monkeypatch.setattr(gw.settings.rca, "frequency_penalty", 0.0)
    gw.fake.script(model_reply("runbook:1"))
    assert gw.post({"alert": alert()}).status_code == 200
    assert "frequency_penalty" not in gw.sent()[-1]  # 0 is off: vLLM's own default
