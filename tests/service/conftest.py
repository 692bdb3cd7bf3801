"""A real gateway (real HTTP, real embedder, real FAISS/BM25) in front of a scripted fake engine."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.utils.fake_vllm import FakeVLLM
from tests.utils.gateway import Gateway, remote_settings, serve_gateway, write_corpus
from tests.utils.servers import serve_in_thread

CORPUS = {
    "runbooks/oom.md": "# OOMKilled\n\n## Diagnosis\n\nA container exceeded its memory limit and the "
    "kernel killed it with exit code 137. Check `kubectl describe pod` for Reason: OOMKilled.\n",
    "runbooks/disk.md": "# Disk full\n\n## Mitigation\n\nRemove unused container images with "
    "`crictl rmi --prune` and configure log rotation for the runtime.\n",
    "guide/zh.md": "# 错误率\n\n服务在五分钟内返回 5xx 错误的比例超过百分之五时，"
    "应先检查最近一次发布，然后回滚。\n",
}


@pytest.fixture(scope="session")
def fake_engine() -> Iterator[tuple[str, FakeVLLM]]:
    fake = FakeVLLM()
    with serve_in_thread(fake.app, ready_path="/health") as url:
        yield url, fake


# Request and upload limits small enough for the size tests to reach.
SERVER_LIMITS = {"max_request_bytes": 256 * 1024, "max_upload_bytes": 1024 * 1024, "shutdown_grace_s": 5}


@contextmanager
def corpus_gateway(
    fake_engine: tuple[str, FakeVLLM],
    embedder: object,
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    **overrides: Any,
) -> Iterator[Gateway]:
    """A gateway with CORPUS ingested into `default`, in front of the fake engine; `overrides`:
    more Settings fields (e.g. `store`)."""
    engine_url, fake = fake_engine
    settings = remote_settings(tmp_path_factory.mktemp(name), engine_url, server=SERVER_LIMITS, **overrides)
    corpus = write_corpus(tmp_path_factory.mktemp("corpus"), CORPUS)
    with serve_gateway(settings, embedder, corpus) as (url, _app):
        yield Gateway(url=url, fake=fake, settings=settings)


@pytest.fixture(scope="session")
def gateway(
    fake_engine: tuple[str, FakeVLLM], shared_embedder: object, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    with corpus_gateway(fake_engine, shared_embedder, tmp_path_factory, "gateway-data") as gw:
        yield gw
