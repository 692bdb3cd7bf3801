"""Root-cause analysis end to end on the real engine (SmolLM2-135M) over the seeded sample corpus.

What the 135M model writes is weak; what these tests hold the gateway to is the contract: a
schema-valid analysis generated under structured outputs, the right runbook cited from retrieval,
and evidence references that all point at items really supplied or retrieved, with the server's
own text as excerpts. The file sorts before test_live.py, whose last tests stop the server.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from service.rca.models import RcaResponse, StoredAnalysis
from tests.e2e.conftest import LiveServer

pytestmark = pytest.mark.engine

LOGS = [
    "2026-11-23T09:58:41Z cart starting version 2.3.1",
    "2026-11-23T09:58:42Z cart FATAL: config key PAYMENT_URL is not set",
]


def _check(out: RcaResponse, logs: list[str], changes: list[str]) -> None:
    runbook_text = {c.ref: c.text for c in out.runbooks}
    for h in out.hypotheses:
        assert 0.0 <= h.confidence <= 1.0 and h.title and h.remediation
        for e in h.evidence:
            kind, _, n = e.ref.partition(":")
            assert kind == e.kind
            if kind == "runbook":
                assert e.ref in runbook_text and runbook_text[e.ref].strip().startswith(e.excerpt.rstrip("…"))
            elif kind == "log":
                assert int(n) < len(logs) and logs[int(n)] in e.excerpt
            elif kind == "change":
                assert int(n) < len(changes) and changes[int(n)] in e.excerpt
            else:
                pytest.fail(f"reference to evidence that was never supplied: {e.ref}")


def test_rca_on_a_sample_corpus_alert(live_server: LiveServer) -> None:
    body: dict[str, Any] = {
        "alert": {
            "status": "firing",
            "labels": {"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "cart-7d9f"},
            "annotations": {"summary": "Pod shop/cart-7d9f is crash looping"},
            "startsAt": "2026-11-23T10:00:00Z",
        },
        "evidence": {
            "logs": [{"text": t} for t in LOGS],
            "changes": [{"description": "cart v2.3.1 rolled out", "kind": "deploy"}],
        },
    }
    r = httpx.post(live_server.v1 + "/rca", json=body, timeout=600)
    assert r.status_code == 200, r.text
    out = RcaResponse.model_validate(r.json())
    assert out.runbooks and out.runbooks[0].document_id == "runbooks/kube-pod-crashlooping.md"
    assert out.hypotheses and out.summary
    _check(out, LOGS, ["cart v2.3.1 rolled out"])
    stored = StoredAnalysis.model_validate(httpx.get(f"{live_server.v1}/rca/analyses/{out.id}").json())
    assert stored.status == "completed" and stored.result == out


def test_webhook_alert_becomes_a_stored_cited_analysis(live_server: LiveServer) -> None:
    alert = {
        "status": "firing",
        "labels": {"alertname": "HighErrorRate", "service": "checkout", "severity": "critical"},
        "annotations": {"summary": "checkout returns 5xx for 7% of requests"},
        "startsAt": "2026-11-23T10:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=up&g0.tab=1",
        "fingerprint": "a1b2c3d4e5f60718",
    }
    payload = {"version": "4", "groupKey": "{}:{}", "status": "firing", "receiver": "ragserve",
               "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
               "externalURL": "http://alertmanager:9093", "alerts": [alert]}  # fmt: skip
    r = httpx.post(live_server.v1 + "/alertmanager/webhook", json=payload, timeout=30)
    assert r.status_code == 202, r.text
    (entry,) = r.json()["alerts"]
    assert entry["action"] == "queued" and entry["fingerprint"] == "a1b2c3d4e5f60718"
    deadline = time.monotonic() + 600
    while True:
        stored = StoredAnalysis.model_validate(
            httpx.get(f"{live_server.v1}/rca/analyses/{entry['analysis_id']}").json()
        )
        if stored.status in ("completed", "failed"):
            break
        assert time.monotonic() < deadline, "the background analysis did not finish"
        time.sleep(2)
    assert stored.status == "completed", stored.error
    assert stored.result is not None
    # The sample corpus has the HighErrorRate runbook in English and in Chinese: either is the right one.
    assert stored.result.runbooks
    assert stored.result.runbooks[0].document_id in (
        "runbooks/high-error-rate.md",
        "runbooks/high-error-rate-zh.md",
    )
    _check(stored.result, [], [])
