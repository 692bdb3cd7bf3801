"""A real gateway over real HTTP, the project's sample corpus, and the scripted fake engine, for RCA tests.

Collections: `default` (deploy/sample_corpus: runbooks for KubePodCrashLooping, HighErrorRate,
OOMKilled, disk pressure, ragserve's own alerts) and `notes` (one unrelated document).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from service.rca.service import RcaService
from service.settings import RcaSettings, ToolSettings
from tests.conftest import REPO
from tests.utils.fake_vllm import FakeVLLM
from tests.utils.gateway import Gateway, ingest, remote_settings, serve_gateway, write_corpus
from tests.utils.servers import serve_in_thread

SAMPLE_CORPUS = REPO / "deploy" / "sample_corpus"


@dataclass
class RcaGateway(Gateway):
    app: Any

    @property
    def rca(self) -> RcaService:
        service: RcaService | None = self.app.state.ragserve.rca
        assert service is not None
        return service

    def post(self, body: dict[str, Any], **kw: Any) -> httpx.Response:
        kw.setdefault("timeout", 60)
        return httpx.post(self.v1 + "/rca", json=body, **kw)

    def webhook(self, payload: dict[str, Any], **kw: Any) -> httpx.Response:
        kw.setdefault("timeout", 30)
        return httpx.post(self.v1 + "/alertmanager/webhook", json=payload, **kw)

    def wait_idle(self, timeout_s: float = 30) -> None:
        """Until the background queue is empty and no worker is busy (polled over HTTP-visible state)."""
        deadline = time.monotonic() + timeout_s
        while self.rca._queue.qsize() or self.rca.busy:
            assert time.monotonic() < deadline, "background analyses did not finish"
            time.sleep(0.05)


def alert(name: str = "KubePodCrashLooping", *, status: str = "firing", **labels: str) -> dict[str, Any]:
    annotations = {
        "KubePodCrashLooping": {
            "summary": "Pod shop/cart-7d9f is crash looping",
            "description": "Pod shop/cart-7d9f (container cart) is restarting 5 times / 10 minutes.",
        },
        "HighErrorRate": {"summary": "checkout returns 5xx for 7% of requests"},
        "EtcdNoLeader": {"summary": "etcd cluster member has no leader", "description": "for 1 minute"},
    }.get(name, {"summary": f"{name} fired"})
    return {
        "status": status,
        "labels": {"alertname": name, "namespace": "shop", "severity": "warning", **labels},
        "annotations": annotations,
        "startsAt": "2026-11-23T10:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-11-23T10:30:00Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=up&g0.tab=1",
    }


def webhook_payload(*alerts: dict[str, Any], status: str | None = None) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": '{}:{alertname="test"}',
        "truncatedAlerts": 0,
        "status": status or ("firing" if any(a["status"] == "firing" for a in alerts) else "resolved"),
        "receiver": "ragserve",
        "groupLabels": {"alertname": alerts[0]["labels"]["alertname"]},
        "commonLabels": {"namespace": "shop"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": list(alerts),
    }


def model_reply(
    *refs: str,
    hypotheses: int = 1,
    severity: str = "warning",
    missing: list[str] | None = None,
    confidence: float = 0.7,
) -> str:
    """What the engine would write under the decoding schema (the fake does not enforce it)."""
    return json.dumps(
        {
            "summary": "The cart container crashes at start-up.",
            "severity": severity,
            "hypotheses": [
                {
                    "title": f"Bad config after rollout ({i})",
                    "evidence": list(refs),
                    "reasoning": "The logs show a missing setting right after the deploy.",
                    "confidence": confidence,
                    "checks": ["kubectl logs cart-7d9f --previous"],
                    "remediation": "kubectl rollout undo deployment/cart -n shop",
                }
                for i in range(hypotheses)
            ],
            "missing_data": missing or [],
        }
    )


@pytest.fixture(scope="session")
def _rca_gateway(shared_embedder: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RcaGateway]:
    fake = FakeVLLM()
    with serve_in_thread(fake.app, ready_path="/health") as engine_url:
        settings = remote_settings(
            tmp_path_factory.mktemp("rca-gateway"),
            engine_url,
            tools=ToolSettings(tool_timeout_s=5.0),
            rca=RcaSettings(json_whitespace="any"),  # tests read the JSON schema the engine gets
        )
        ingest(settings, shared_embedder, SAMPLE_CORPUS)
        notes = {"lunch.md": "# Lunch\n\nThe canteen serves soup on Mondays.\n"}
        ingest(settings, shared_embedder, write_corpus(tmp_path_factory.mktemp("rca-notes"), notes), "notes")
        with serve_gateway(settings, shared_embedder) as (url, app):
            yield RcaGateway(url=url, fake=fake, settings=settings, app=app)


@pytest.fixture
def gw(_rca_gateway: RcaGateway) -> Iterator[RcaGateway]:
    """The shared RCA gateway with a clean script; RCA and tool settings changed by a test are restored."""
    g = _rca_gateway
    g.wait_idle()
    g.fake.replies.clear()
    g.fake.requests.clear()
    saved_rca = g.settings.rca.model_copy(deep=True)
    saved_tools = g.settings.tools.model_copy(deep=True)
    store = g.rca.store
    saved_store = (store.max_rows, store.max_age_s)
    yield g
    g.wait_idle()
    for name in RcaSettings.model_fields:
        setattr(g.settings.rca, name, getattr(saved_rca, name))
    for name in ToolSettings.model_fields:
        setattr(g.settings.tools, name, getattr(saved_tools, name))
    store.max_rows, store.max_age_s = saved_store
    assert not g.fake.replies, f"scripted replies left unused: {list(g.fake.replies)}"
