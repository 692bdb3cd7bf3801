"""A real gateway (real HTTP, real embedder, real FAISS/BM25) in front of a scripted fake engine."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from service.app import create_app
from service.settings import EngineSettings, Settings
from tests.utils.fake_vllm import MODEL, FakeVLLM
from tests.utils.servers import serve_in_thread

CORPUS = {
    "runbooks/oom.md": "# OOMKilled\n\n## Diagnosis\n\nA container exceeded its memory limit and the "
    "kernel killed it with exit code 137. Check `kubectl describe pod` for Reason: OOMKilled.\n",
    "runbooks/disk.md": "# Disk full\n\n## Mitigation\n\nRemove unused container images with "
    "`crictl rmi --prune` and configure log rotation for the runtime.\n",
    "guide/zh.md": "# 错误率\n\n服务在五分钟内返回 5xx 错误的比例超过百分之五时，"
    "应先检查最近一次发布，然后回滚。\n",
}


@dataclass
class Gateway:
    url: str
    fake: FakeVLLM
    settings: Settings

    @property
    def v1(self) -> str:
        return self.url + "/v1"


@pytest.fixture(scope="session")
def fake_engine() -> Iterator[tuple[str, FakeVLLM]]:
    fake = FakeVLLM()
    with serve_in_thread(fake.app, ready_path="/health") as url:
        yield url, fake


def write_corpus(root: Path) -> Path:
    for rel, text in CORPUS.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def gateway(
    fake_engine: tuple[str, FakeVLLM], shared_embedder: object, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    from ingest.knowledge_base import KnowledgeBase

    engine_url, fake = fake_engine
    data_dir = tmp_path_factory.mktemp("gateway-data")
    settings = Settings(
        data_dir=data_dir,
        engine=EngineSettings(mode="remote", url=engine_url, served_model_name=MODEL, model=MODEL),
        server={"max_request_bytes": 256 * 1024, "max_upload_bytes": 1024 * 1024, "shutdown_grace_s": 5},
    )
    corpus = write_corpus(tmp_path_factory.mktemp("corpus"))
    KnowledgeBase(settings.collections_dir, shared_embedder).ingest_paths("default", [corpus])  # type: ignore[arg-type]
    app = create_app(settings, embedder=shared_embedder)  # type: ignore[arg-type]
    with serve_in_thread(app) as url:
        yield Gateway(url=url, fake=fake, settings=settings)
