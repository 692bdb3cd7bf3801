"""The web UI in Debian's Chromium against a real gateway with API keys, in front of a scripted engine.

The engine is beside the point here (the real-engine run is tests/e2e/test_a_ui_live.py): this checks
the key prompt, keyboard navigation, streaming and citations, upload with job progress, an alert from
the webhook to its analysis and runbook passage, and the Chinese UI. Screenshots:
var/test-artifacts/ui/fake/*.png.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from service.app import create_app
from service.settings import EngineSettings, Settings
from tests.conftest import REPO
from tests.ui.conftest import ADMIN_KEY, UIGateway, keys_file
from tests.utils.browser import require_browser, run_browser
from tests.utils.fake_vllm import MODEL, FakeVLLM
from tests.utils.servers import serve_in_thread

CHAT_REPLY = "Exit code 137 means the kernel killed the container for using more memory than its limit [1]."
ANALYSIS = {
    "summary": "The cart container exceeded its memory limit and was OOMKilled.",
    "severity": "critical",
    "hypotheses": [
        {
            "title": "Memory limit too low for the cart container",
            "evidence": ["runbook:1"],
            "reasoning": "Exit code 137 with reason OOMKilled, as the runbook describes.",
            "confidence": 0.72,
            "checks": ["kubectl describe pod cart-7d9f -n shop"],
            "remediation": "Raise the memory limit or find what allocates the memory.",
        }
    ],
    "missing_data": ["No memory usage metrics were supplied."],
}


@pytest.fixture(scope="module")
def browser_gateway(
    ui_fake_engine: tuple[str, FakeVLLM], shared_embedder: object, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[UIGateway]:
    from ingest.knowledge_base import KnowledgeBase

    require_browser()  # skip before building a gateway where the platform lacks node or Chromium
    engine_url, fake = ui_fake_engine
    root = tmp_path_factory.mktemp("ui-browser")
    settings = Settings(
        data_dir=root / "data",
        engine=EngineSettings(mode="remote", url=engine_url, served_model_name=MODEL, model=MODEL),
        server={"ui_dir": REPO / "ui" / "dist", "shutdown_grace_s": 2},
        auth_keys_file=keys_file(root),
    )
    kb = KnowledgeBase(settings.collections_dir, shared_embedder)  # type: ignore[arg-type]
    kb.ingest_paths("default", [REPO / "deploy" / "sample_corpus" / "runbooks"])
    app = create_app(settings, embedder=shared_embedder)  # type: ignore[arg-type]
    with serve_in_thread(app) as url:
        yield UIGateway(url=url, fake=fake, settings=settings, ui_dir=REPO / "ui" / "dist")


def test_ui_in_chromium(browser_gateway: UIGateway) -> None:
    fake = browser_gateway.fake
    fake.replies.clear()
    fake.script(CHAT_REPLY, json.dumps(ANALYSIS))  # the chat comes first in the scenario, then the alert
    fake.token_delay_s = 0.03  # slow enough that the page shows the answer growing
    sent_before = len(fake.requests)
    try:
        result = run_browser(browser_gateway.url, "fake", key=ADMIN_KEY, max_tokens="64")
    finally:
        fake.token_delay_s = 0.0

    assert [s["name"] for s in result["steps"] if not s["ok"]] == []
    assert result.keys() >= {"chat", "upload", "alert", "zh"}, result
    assert result["external_requests"] == [] and result["page_errors"] == []
    audited = {a["page"]: a["violations"] for a in result["accessibility"]}  # axe-core, WCAG 2.1 A/AA
    assert len(audited) == 7, audited
    assert [v for vs in audited.values() for v in vs if v["impact"] in ("serious", "critical")] == []
    chat = result["chat"]
    assert chat["answer"] == CHAT_REPLY
    assert chat["partial_states"] >= 2 and len(chat["first_partial"]) < len(CHAT_REPLY)
    assert chat["citations"] >= 1 and chat["status"] == f"Answer complete, {chat['citations']} sources."
    assert chat["citation"]["title"] == "[1] pod-oomkilled.md"  # the OOM runbook, first
    streamed = [r for r in fake.requests[sent_before:] if r.get("stream")]
    assert [r.get("max_tokens") for r in streamed] == [64], streamed  # the page's "answer length"

    # What the page showed after the upload is what the API has.
    auth = {"Authorization": f"Bearer {ADMIN_KEY}"}
    docs = httpx.get(browser_gateway.v1 + "/collections/uploads/documents", headers=auth).json()["data"]
    assert sorted(d["document_id"] for d in docs) == sorted(result["upload"]["documents"])
    assert sorted(result["upload"]["documents"]) == ["cert-expiry.txt", "disk-pressure.md"]
    assert result["upload"]["progress"] == [2, 2]

    alert = result["alert"]
    stored = httpx.get(f"{browser_gateway.v1}/rca/analyses/{alert['analysis_id']}", headers=auth).json()
    assert stored["status"] == "completed" == alert["list_status"]
    assert alert["summary"] == ANALYSIS["summary"] == stored["result"]["summary"]
    assert alert["confidences"] == ["72%"]
    assert alert["runbooks"] == len(stored["result"]["runbooks"]) >= 1
    assert alert["runbook"]["passage"].strip() == stored["result"]["runbooks"][0]["text"].strip()

    assert result["zh"]["heading"] == "告警与分析"
    assert "严重" in result["zh"]["badges"] and "已完成" in result["zh"]["badges"]
    for path in result["screenshots"]:
        assert path.endswith(".png")
