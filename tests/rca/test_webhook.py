"""The Alertmanager webhook over real HTTP: background analyses, dedup by fingerprint, resolved
notifications, stored analyses (filters, pagination, retention), and the RCA metrics."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from service.rca.evidence import fingerprint
from tests.rca.conftest import RcaGateway, alert, model_reply, webhook_payload


def _wait_status(gw: RcaGateway, analysis_id: str, status: str, timeout_s: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        got = httpx.get(f"{gw.v1}/rca/analyses/{analysis_id}").json()
        if got.get("status") == status:
            return got
        assert time.monotonic() < deadline, got
        time.sleep(0.1)


def test_firing_alerts_are_analysed_once_then_resolved_then_refire(gw: RcaGateway) -> None:
    pod_a = alert("KubePodCrashLooping", pod="cart-1")
    pod_b = alert("KubePodCrashLooping", pod="cart-2")
    gw.fake.script(model_reply("runbook:1"), model_reply("runbook:1"))
    r = gw.webhook(webhook_payload(pod_a, pod_b))
    assert r.status_code == 202, r.text
    first = r.json()
    assert [a["action"] for a in first["alerts"]] == ["queued", "queued"]
    ids = [a["analysis_id"] for a in first["alerts"]]
    assert first["alerts"][0]["fingerprint"] == fingerprint(pod_a["labels"])
    # Alertmanager repeats the notification: no new analysis, whatever state the first one is in.
    again = gw.webhook(webhook_payload(pod_a, pod_b)).json()
    assert [a["action"] for a in again["alerts"]] == ["duplicate", "duplicate"]
    assert [a["analysis_id"] for a in again["alerts"]] == ids
    done = [_wait_status(gw, aid, "completed") for aid in ids]
    assert all(d["source"] == "webhook" and d["alert_status"] == "firing" for d in done)
    result = done[0]["result"]
    assert result["runbooks"][0]["document_id"] == "runbooks/kube-pod-crashlooping.md"
    assert result["hypotheses"][0]["evidence"][0]["ref"] == "runbook:1"
    assert len(gw.sent()) == 2
    assert gw.webhook(webhook_payload(pod_a)).json()["alerts"][0]["action"] == "duplicate"

    # Resolved: marked, not analysed again.
    resolved = {**pod_a, "status": "resolved", "endsAt": "2026-11-23T10:30:00Z"}
    r = gw.webhook(webhook_payload(resolved))
    assert r.json()["alerts"][0] == {
        "alertname": "KubePodCrashLooping", "fingerprint": fingerprint(pod_a["labels"]), "status": "resolved",
        "action": "resolved", "analysis_id": ids[0],
    }  # fmt: skip
    got = httpx.get(f"{gw.v1}/rca/analyses/{ids[0]}").json()
    assert got["alert_status"] == "resolved" and got["resolved_at"].startswith("2026-11-23T10:30:00")
    assert got["status"] == "completed" and got["result"] is not None
    assert len(gw.sent()) == 2
    # A resolved alert nobody analysed is ignored.
    stranger = {**alert("KubePodCrashLooping", pod="never-seen"), "status": "resolved"}
    assert gw.webhook(webhook_payload(stranger)).json()["alerts"][0]["action"] == "ignored"

    # It fires again after resolution: a new analysis.
    gw.fake.script(model_reply("runbook:1"))
    refire = gw.webhook(webhook_payload(pod_a)).json()["alerts"][0]
    assert refire["action"] == "queued" and refire["analysis_id"] not in ids
    _wait_status(gw, refire["analysis_id"], "completed")
    hist = httpx.get(gw.v1 + "/rca/analyses", params={"fingerprint": fingerprint(pod_a["labels"])}).json()
    assert hist["total"] == 2 and {d["alert_status"] for d in hist["data"]} == {"firing", "resolved"}


def test_failed_background_analysis_is_stored_and_retried_on_the_next_notification(gw: RcaGateway) -> None:
    a = alert("HighErrorRate", service="orders")
    gw.fake.script("garbage", "more garbage")
    aid = gw.webhook(webhook_payload(a)).json()["alerts"][0]["analysis_id"]
    failed = _wait_status(gw, aid, "failed")
    assert "valid analysis" in failed["error"] and failed["result"] is None
    gw.fake.script(model_reply("runbook:1"))
    retry = gw.webhook(webhook_payload(a)).json()["alerts"][0]
    assert retry["action"] == "queued" and retry["analysis_id"] != aid
    _wait_status(gw, retry["analysis_id"], "completed")


def test_malformed_webhook_payloads_are_400(gw: RcaGateway) -> None:
    good = webhook_payload(alert())
    cases: list[tuple[dict[str, Any], str]] = [
        ({k: v for k, v in good.items() if k != "alerts"}, "alerts"),
        ({**good, "alerts": [{"labels": {"pod": "x"}}]}, "alerts.0.labels"),
        ({**good, "status": "pending"}, "status"),
        ({**good, "alerts": [{**alert(), "startsAt": "not a time"}]}, "alerts.0.startsAt"),
    ]
    for body, param in cases:
        r = gw.webhook(body)
        assert r.status_code == 400, r.text
        assert r.json()["error"]["param"] == param, r.json()
    assert gw.webhook(good, params={"collection": "nope"}).status_code == 404
    assert gw.rca.store.count() >= 0 and not gw.sent()


def test_listing_filters_and_pagination(gw: RcaGateway) -> None:
    t_start = httpx.get(gw.url + "/healthz").headers.get("date")
    assert t_start
    names = [f"PagingTest{i}" for i in range(5)]
    for name in names:
        gw.fake.script(model_reply())
        assert gw.post({"alert": alert(name)}).status_code == 200
    q = {"alertname": "PagingTest3"}
    one = httpx.get(gw.v1 + "/rca/analyses", params=q).json()
    assert one["total"] == 1 and one["data"][0]["alertname"] == "PagingTest3" and not one["has_more"]
    # Cursor pages walk every analysis once, newest first.
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, "status": "completed", "since": "2000-01-01T00:00:00Z"}
        if cursor:
            params["cursor"] = cursor
        page = httpx.get(gw.v1 + "/rca/analyses", params=params).json()
        seen += [d["id"] for d in page["data"]]
        assert page["limit"] == 2 and len(page["data"]) <= 2
        cursor = page["next_cursor"]
        if not page["has_more"]:
            assert cursor is None
            break
    assert len(seen) == len(set(seen)) == page["total"]
    ours = [d for d in seen if d in {x["id"] for x in _all(gw, "PagingTest")}]
    assert len(ours) == 5
    # Offset pages agree with cursor pages.
    by_offset = httpx.get(
        gw.v1 + "/rca/analyses", params={"limit": 2, "offset": 2, "status": "completed"}
    ).json()
    assert [d["id"] for d in by_offset["data"]] == seen[2:4] and by_offset["offset"] == 2
    # Time window: nothing before 2000, nothing after far future.
    assert httpx.get(gw.v1 + "/rca/analyses", params={"until": "2000-01-01T00:00:00Z"}).json()["total"] == 0
    assert httpx.get(gw.v1 + "/rca/analyses", params={"since": "2999-01-01T00:00:00Z"}).json()["total"] == 0
    # Bad parameters: 400 envelopes naming them.
    for params, param in (
        ({"cursor": "%%%"}, "cursor"),
        ({"status": "done"}, "status"),
        ({"limit": 0}, "limit"),
    ):
        r = httpx.get(gw.v1 + "/rca/analyses", params=params)
        assert r.status_code == 400 and r.json()["error"]["param"] == param, r.text
    r = httpx.get(gw.v1 + "/rca/analyses/rca_doesnotexist")
    assert r.status_code == 404 and r.json()["error"]["code"] == "analysis_not_found"


def _all(gw: RcaGateway, prefix: str) -> list[dict[str, Any]]:
    rows = httpx.get(gw.v1 + "/rca/analyses", params={"limit": 200}).json()["data"]
    return [r for r in rows if r["alertname"].startswith(prefix)]


def test_retention_keeps_the_newest_rows(gw: RcaGateway) -> None:
    store = gw.rca.store
    store.max_rows = 2
    ids = []
    for i in range(4):
        gw.fake.script(model_reply())
        ids.append(gw.post({"alert": alert(f"RetentionTest{i}")}).json()["id"])
    assert store.count() == 2
    # The two newest survive; every older row was dropped.
    assert [httpx.get(f"{gw.v1}/rca/analyses/{i}").status_code for i in ids] == [404, 404, 200, 200]
    # Age: everything finished is older than a zero max age.
    store.max_age_s = 0.0
    gw.fake.script(model_reply())
    newest = gw.post({"alert": alert("RetentionTest9")}).json()["id"]
    time.sleep(0.01)
    store.prune()
    assert store.count() == 0 and httpx.get(f"{gw.v1}/rca/analyses/{newest}").status_code == 404


def test_rca_metrics(gw: RcaGateway) -> None:
    completed = gw.metric("ragserve_rca_analyses_total", source="api", status="completed")
    failed = gw.metric("ragserve_rca_analyses_total", source="api", status="failed")
    dup = gw.metric("ragserve_rca_webhook_alerts_total", action="duplicate")
    verified = gw.metric("ragserve_rca_evidence_refs_total", outcome="verified")
    dropped = gw.metric("ragserve_rca_evidence_refs_total", outcome="dropped")
    no_runbook = gw.metric("ragserve_rca_no_runbook_total")
    gw.fake.script(model_reply("runbook:1", "log:9"), "bad", "bad", model_reply())
    gw.post({"alert": alert()})
    gw.post({"alert": alert()})
    a = alert("EtcdNoLeader", member="m-metrics")
    gw.webhook(webhook_payload(a))
    gw.wait_idle()
    gw.webhook(webhook_payload(a))
    assert gw.metric("ragserve_rca_analyses_total", source="api", status="completed") == completed + 1
    assert gw.metric("ragserve_rca_analyses_total", source="api", status="failed") == failed + 1
    assert gw.metric("ragserve_rca_analyses_total", source="webhook", status="completed") >= 1
    assert gw.metric("ragserve_rca_webhook_alerts_total", action="duplicate") == dup + 1
    assert gw.metric("ragserve_rca_evidence_refs_total", outcome="verified") == verified + 1
    assert gw.metric("ragserve_rca_evidence_refs_total", outcome="dropped") == dropped + 1
    assert gw.metric("ragserve_rca_no_runbook_total") == no_runbook + 1
    assert gw.metric("ragserve_rca_analysis_duration_seconds_count", source="api") >= 2
    assert gw.metric("ragserve_rca_queue_depth") == 0


def test_analyses_left_by_a_previous_process_are_queued_again(tmp_path: Path) -> None:
    from service.rca.evidence import alert_summary
    from service.rca.models import Alert
    from service.rca.store import AnalysisStore

    store = AnalysisStore(tmp_path / "rca.db", max_rows=10, max_age_s=3600)
    summary = alert_summary(Alert.model_validate(alert()))
    queued = store.create(alert=summary, collection="default", source="webhook", request={}).analysis_id
    running = store.create(alert=summary, collection="default", source="api", request={}, status="running")
    done = store.create(alert=summary, collection="default", source="api", request={}, status="running")
    store.fail(done.analysis_id, "boom")
    store.close()
    reopened = AnalysisStore(tmp_path / "rca.db", max_rows=10, max_age_s=3600)
    assert sorted(reopened.requeue_interrupted()) == sorted([queued, running.analysis_id])
    statuses = {a: reopened.get(a).status for a in (queued, running.analysis_id, done.analysis_id)}  # type: ignore[union-attr]
    assert statuses == {queued: "queued", running.analysis_id: "queued", done.analysis_id: "failed"}
    reopened.close()
