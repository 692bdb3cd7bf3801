"""RCA decoding budgets: a caller's small options.max_tokens shrinks the analysis, never yields a 5xx."""

from __future__ import annotations

import json

import pytest

from tests.rca.conftest import RcaGateway, alert, model_reply


def test_a_small_max_tokens_scales_the_output_bounds(gw: RcaGateway) -> None:
    gw.fake.script(model_reply("runbook:1"))
    r = gw.post({"alert": alert(), "options": {"max_tokens": 128}})
    assert r.status_code == 200, r.text
    small = gw.sent()[-1]["structured_outputs"]["json"]["properties"]
    gw.fake.script(model_reply("runbook:1"))
    assert gw.post({"alert": alert()}).status_code == 200
    default = gw.sent()[-1]["structured_outputs"]["json"]["properties"]
    assert default["summary"]["maxLength"] == gw.settings.rca.max_summary_chars  # the setting, unchanged
    assert small["summary"]["maxLength"] < default["summary"]["maxLength"]
    assert small["hypotheses"]["maxItems"] <= default["hypotheses"]["maxItems"]


def test_an_analysis_cut_off_by_the_callers_max_tokens_is_a_400(
    gw: RcaGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gw.fake, "cut_at_max_tokens", True)
    long = json.dumps({"summary": " ".join("word" for _ in range(200))})
    gw.fake.script(long, long)
    r = gw.post({"alert": alert(), "options": {"max_tokens": 64}})
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["param"] == "options.max_tokens" and err["code"] == "max_tokens_too_small"
    assert "options.max_tokens=64" in err["message"]


def test_a_cut_off_within_the_servers_own_budget_stays_a_502(
    gw: RcaGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gw.fake, "cut_at_max_tokens", True)
    gw.settings.rca.max_tokens = 64
    long = json.dumps({"summary": " ".join("word" for _ in range(200))})
    gw.fake.script(long, long)
    r = gw.post({"alert": alert()})
    assert r.status_code == 502, r.text
    assert "raise options.max_tokens" in r.json()["error"]["message"]
