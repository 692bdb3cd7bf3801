"""RCA and API keys: a user key may analyse and read analyses of the collections it can see, no more."""

from __future__ import annotations

import json

import httpx

from tests.auth.conftest import ADMIN_KEY, OPS_KEY, SECRET, GatewayFactory, base_keys, bearer


def _alert(name: str = "KubePodOOMKilled") -> dict[str, object]:
    return {"labels": {"alertname": name}, "annotations": {"summary": "container killed with exit code 137"}}


def _reply(*refs: str) -> str:
    hyp = {"title": "memory limit", "evidence": list(refs), "reasoning": "exit code 137", "confidence": 0.8,
           "checks": ["kubectl describe pod"], "remediation": "raise the limit"}  # fmt: skip
    return json.dumps({"summary": "OOM", "severity": "warning", "hypotheses": [hyp], "missing_data": []})


def test_user_keys_analyse_and_read_only_their_collections(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(keys=base_keys())
    rca = gw.v1 + "/rca"
    assert httpx.post(rca, json={"alert": _alert()}).status_code == 401
    # A user key on its collection: allowed, grounded in that collection only.
    gw.fake.script(_reply("runbook:1"))
    r = httpx.post(
        rca, json={"alert": _alert(), "collection": "runbooks"}, headers=bearer(OPS_KEY), timeout=30
    )
    assert r.status_code == 200, r.text
    mine = r.json()
    assert mine["runbooks"] and mine["runbooks"][0]["document_id"] == "oom.md"
    # The other collection looks missing, for analyses and for the webhook, and is never searched.
    for url, body in ((rca, {"alert": _alert(), "collection": "finance"}),
                      (gw.v1 + "/alertmanager/webhook?collection=finance",
                       {"status": "firing", "alerts": [_alert()]})):  # fmt: skip
        r = httpx.post(url, json=body, headers=bearer(OPS_KEY), timeout=30)
        assert r.status_code == 404 and r.json()["error"]["code"] == "collection_not_found", r.text
    assert SECRET not in json.dumps(gw.fake.requests)
    # An admin analyses over finance; the user key cannot list or fetch that analysis.
    gw.fake.script(_reply())
    theirs = httpx.post(
        rca, json={"alert": _alert(), "collection": "finance"}, headers=bearer(ADMIN_KEY), timeout=30
    ).json()
    assert theirs["collection"] == "finance"
    listed = httpx.get(gw.v1 + "/rca/analyses", headers=bearer(OPS_KEY)).json()
    assert [d["id"] for d in listed["data"]] == [mine["id"]] and listed["total"] == 1
    assert httpx.get(f"{gw.v1}/rca/analyses/{theirs['id']}", headers=bearer(OPS_KEY)).status_code == 404
    assert httpx.get(f"{gw.v1}/rca/analyses/{mine['id']}", headers=bearer(OPS_KEY)).status_code == 200
    admin_list = httpx.get(gw.v1 + "/rca/analyses", headers=bearer(ADMIN_KEY)).json()
    assert admin_list["total"] == 2
    # The user key may post the webhook for its own collection (Alertmanager carries a key too).
    gw.fake.script(_reply())
    hook = httpx.post(
        gw.v1 + "/alertmanager/webhook?collection=runbooks",
        json={"status": "firing", "alerts": [_alert("NodeDiskFull")]},
        headers=bearer(OPS_KEY),
        timeout=30,
    )
    assert hook.status_code == 202 and hook.json()["alerts"][0]["action"] == "queued"


def test_webhooks_are_bounded_and_charged_to_the_sending_key(start_gateway: GatewayFactory) -> None:
    # issue 19, finding 3: each queued analysis takes its estimate from the sender's token bucket.
    keys = base_keys()
    keys[1]["tokens_per_minute"] = 1500  # ops: about two analyses' worth (640 max_tokens + the alert)
    gw = start_gateway(keys=keys, rca={"max_alerts_per_webhook": 3})
    hook = gw.v1 + "/alertmanager/webhook?collection=runbooks"
    too_many = {"status": "firing", "alerts": [_alert(f"A{i}") for i in range(4)]}
    r = httpx.post(hook, json=too_many, headers=bearer(OPS_KEY), timeout=30)
    assert r.status_code == 400 and r.json()["error"]["param"] == "alerts", r.text
    three = {"status": "firing", "alerts": [_alert(f"B{i}") for i in range(3)]}
    r = httpx.post(hook, json=three, headers=bearer(OPS_KEY), timeout=30)
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limit_exceeded", r.text
    assert r.headers["Retry-After"]
    # The admin key's bucket is its own: its webhook is unaffected.
    r = httpx.post(
        hook, json={"status": "firing", "alerts": [_alert("C")]}, headers=bearer(ADMIN_KEY), timeout=30
    )
    assert r.status_code == 202, r.text
