"""A real gateway (`service.app.create_app`, real HTTP) in front of the scripted fake engine, for conftests.

Each suite keeps its own corpus, settings and fixtures; these are the steps they share: write a
corpus, settings for the fake engine, ingest into a collection, and serve the app on a free port.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from ingest.knowledge_base import KnowledgeBase
from ingest.store.factory import backend_from_settings
from service.app import create_app
from service.settings import EngineSettings, Settings
from tests.utils.fake_vllm import MODEL, FakeVLLM
from tests.utils.servers import serve_in_thread

# The scraper's key: with API keys /metrics needs the "metrics" permission (issue 19, #12). Suites
# that serve with keys list METRICS_KEY_ENTRY among them; `Gateway.metric` always presents it.
METRICS_KEY = "prometheus-scrape-key-Qz7Wp2Rx4Lm9Hk3"
METRICS_KEY_ENTRY = {"name": "prometheus", "key": METRICS_KEY, "role": "user", "permissions": ["metrics"]}


@dataclass
class Gateway:
    """A served gateway, the fake engine behind it and its settings (suites subclass it for more)."""

    url: str
    fake: FakeVLLM
    settings: Settings

    @property
    def v1(self) -> str:
        return self.url + "/v1"

    def sent(self) -> list[dict[str, Any]]:
        """Chat requests the engine received (the fake also records /v1/completions)."""
        return [r for r in self.fake.requests if "messages" in r]

    def metric(self, name: str, **labels: str) -> float:
        """The sum of a metric's samples whose labels include `labels` (0 when there are none)."""
        r = httpx.get(self.url + "/metrics", headers={"Authorization": f"Bearer {METRICS_KEY}"}, timeout=10)
        r.raise_for_status()
        text = r.text
        return sum(
            s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == name and labels.items() <= s.labels.items()
        )


def write_corpus(root: Path, files: Mapping[str, str]) -> Path:
    """Write `files` (path under `root` -> text) below `root`, making folders as needed; returns `root`."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def remote_settings(
    data_dir: Path, engine_url: str, *, engine: Mapping[str, Any] | None = None, **overrides: Any
) -> Settings:
    """Settings for a gateway in front of the fake engine at `engine_url`.

    `engine`: more EngineSettings fields (e.g. `lora`); `overrides`: other Settings fields.
    """
    # The relevance gate (service/rag/relevance.py) answers questions unlike every passage without
    # asking the model; these gateways exist to test what happens around scripted model answers, so
    # it is off unless a test turns it on (tests/service/test_relevance_gate.py does).
    rag = {"relevance_gate": "off", **dict(overrides.pop("rag", None) or {})}
    return Settings(
        data_dir=data_dir,
        engine=EngineSettings(
            mode="remote", url=engine_url, served_model_name=MODEL, model=MODEL, **(engine or {})
        ),
        rag=rag,
        **overrides,
    )


def ingest(settings: Settings, embedder: object, corpus: Path, collection: str = "default") -> None:
    """Ingest `corpus` straight through KnowledgeBase, not through a gateway (nor its ingestion hook),
    into the store the settings name (`store.backend`)."""
    backend = backend_from_settings(settings)
    try:
        KnowledgeBase(settings.collections_dir, embedder, backend=backend).ingest_paths(collection, [corpus])  # type: ignore[arg-type]
    finally:
        backend.close()


@contextmanager
def serve_gateway(
    settings: Settings, embedder: object, corpus: Path | None = None
) -> Iterator[tuple[str, FastAPI]]:
    """Ingest `corpus` (if any) into "default" as `ingest` does, then serve the gateway over real HTTP;
    yields its URL and the app, and stops it on exit."""
    if corpus is not None:
        ingest(settings, embedder, corpus)
    app = create_app(settings, embedder=embedder)  # type: ignore[arg-type]
    with serve_in_thread(app) as url:
        yield url, app
