"""The web UI in Debian's Chromium against the real engine (the shared e2e server, default model).

Loads the page, posts an alert through the Alertmanager webhook and waits for its analysis to appear
in the list, opens it and its first runbook citation (the passage and its whole document), then asks
a question in the chat and checks the answer streamed in with citations. Screenshots:
var/test-artifacts/ui/live/*.png. Named to run before test_live.py, whose last tests stop the engine.
"""

from __future__ import annotations

import httpx

from tests.e2e.conftest import LiveServer
from tests.utils.browser import require_browser, run_browser


def test_ui_alert_analysis_and_streamed_chat(live_server: LiveServer) -> None:
    require_browser()
    result = run_browser(live_server.url, "live", max_tokens="48", alert_timeout="240", timeout_s=420)

    assert [s["name"] for s in result["steps"] if not s["ok"]] == []
    assert result["external_requests"] == [] and result["page_errors"] == []
    audited = {a["page"]: a["violations"] for a in result["accessibility"]}  # axe-core, WCAG 2.1 A/AA
    assert len(audited) == 4, audited
    assert [v for vs in audited.values() for v in vs if v["impact"] in ("serious", "critical")] == []

    # The analysis the page showed is the stored one, with the runbook passage it cites.
    alert = result["alert"]
    assert alert["webhook_action"] == "queued"
    stored = httpx.get(f"{live_server.v1}/rca/analyses/{alert['analysis_id']}", timeout=30).json()
    assert stored["status"] == "completed" == alert["list_status"]
    analysis = stored["result"]
    assert alert["summary"] == analysis["summary"]
    assert alert["hypotheses"] == len(analysis["hypotheses"]) >= 1
    assert alert["runbooks"] == len(analysis["runbooks"]) >= 1
    assert alert["runbook"]["passage"].strip() == analysis["runbooks"][0]["text"].strip()
    assert "oom" in analysis["runbooks"][0]["document_id"].lower()  # the OOMKilled runbook, found first

    chat = result["chat"]
    assert chat["partial_states"] >= 2 and len(chat["first_partial"]) < len(chat["answer"])
    assert chat["citations"] >= 1
    assert chat["citation"]["passage"].strip()
    assert chat["citation"]["document_passages"] >= 1
    assert any(p.endswith("live-answer.png") for p in result["screenshots"])
