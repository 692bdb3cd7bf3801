"""A real gateway over real HTTP in front of a scripted engine that also serves vLLM-style /metrics."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from service.settings import Settings
from tests.utils.fake_vllm import FakeVLLM
from tests.utils.gateway import Gateway as BaseGateway
from tests.utils.gateway import ingest, remote_settings, serve_gateway, write_corpus
from tests.utils.servers import serve_in_thread

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy" / "prometheus" / "ragserve-rules.yml"
RULES_TEST = REPO / "deploy" / "prometheus" / "tests" / "ragserve-rules.test.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "ragserve.json"

CORPUS = {
    "runbooks/oom.md": "# OOMKilled\n\nA container exceeded its memory limit and the kernel killed it "
    "with exit code 137. Check `kubectl describe pod` for Reason: OOMKilled.\n",
    "runbooks/disk.md": "# Disk full\n\nRemove unused container images with `crictl rmi --prune` and "
    "configure log rotation for the runtime.\n",
}


class FakeVLLMWithMetrics(FakeVLLM):
    """The scripted engine plus vLLM's /metrics (same names and labels as vLLM 0.32) and header capture."""

    def __init__(self) -> None:
        self.headers: list[dict[str, str]] = []
        self.waiting = 2
        super().__init__()

    def _build(self) -> Any:
        app = super()._build()
        registry = CollectorRegistry()
        labels = ["model_name", "engine"]
        values = (self.model, "0")
        running = Gauge("vllm:num_requests_running", "running", labels, registry=registry)
        waiting = Gauge("vllm:num_requests_waiting", "waiting", labels, registry=registry)
        kv = Gauge("vllm:kv_cache_usage_perc", "kv", labels, registry=registry)
        preempt = Counter("vllm:num_preemptions", "preemptions", labels, registry=registry)
        prompt = Counter("vllm:prompt_tokens", "prompt", labels, registry=registry)
        gen = Counter("vllm:generation_tokens", "generation", labels, registry=registry)
        Counter("vllm:prefix_cache_queries", "q", labels, registry=registry).labels(*values).inc(100)
        Counter("vllm:prefix_cache_hits", "h", labels, registry=registry).labels(*values).inc(40)
        Gauge("vllm:engine_sleep_state", "not re-exported", [*labels, "sleep_state"], registry=registry)
        queue = Histogram("vllm:request_queue_time_seconds", "q", labels, registry=registry)
        ttft = Histogram("vllm:time_to_first_token_seconds", "t", labels, registry=registry)
        fake = self

        @app.middleware("http")
        async def capture(request: Request, call_next: Any) -> Response:
            fake.headers.append({k.lower(): v for k, v in request.headers.items()})
            response: Response = await call_next(request)
            return response

        @app.get("/metrics")
        async def metrics() -> Response:
            n = len([r for r in fake.requests if "messages" in r or "prompt" in r])
            running.labels(*values).set(1)
            waiting.labels(*values).set(fake.waiting)
            kv.labels(*values).set(0.25)
            preempt.labels(*values)
            prompt.labels(*values).inc(10 * n)
            gen.labels(*values).inc(5 * n)
            queue.labels(*values).observe(0.01)
            ttft.labels(*values).observe(0.2)
            return Response(generate_latest(registry), media_type="text/plain; version=0.0.4")

        return app


@dataclass
class Gateway(BaseGateway):
    fake: FakeVLLMWithMetrics


def gateway_settings(data_dir: Path, engine_url: str, **extra: Any) -> Settings:
    return remote_settings(data_dir, engine_url, server={"shutdown_grace_s": 2}, **extra)


@pytest.fixture(scope="session")
def obs_engine() -> Iterator[tuple[str, FakeVLLMWithMetrics]]:
    fake = FakeVLLMWithMetrics()
    with serve_in_thread(fake.app, ready_path="/health") as url:
        yield url, fake


def seed(settings: Settings, embedder: Any, tmp: Path) -> None:
    ingest(settings, embedder, write_corpus(tmp, CORPUS))


@pytest.fixture(scope="session")
def obs_gateway(
    obs_engine: tuple[str, FakeVLLMWithMetrics],
    shared_embedder: object,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Gateway]:
    engine_url, fake = obs_engine
    settings = gateway_settings(tmp_path_factory.mktemp("obs-data"), engine_url)
    seed(settings, shared_embedder, tmp_path_factory.mktemp("obs-corpus"))
    with serve_gateway(settings, shared_embedder) as (url, _app):
        yield Gateway(url=url, fake=fake, settings=settings)
