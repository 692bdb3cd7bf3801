"""A real gateway over real HTTP in front of the scripted fake engine, for function-calling tests.

Its own fake engine and gateway (not the service tests' ones) so tests can change the tool
settings and register test-only server tools without touching other suites.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from service.settings import ToolSettings
from service.tools.service import ToolService
from tests.service.conftest import CORPUS
from tests.utils.fake_vllm import FakeVLLM
from tests.utils.gateway import Gateway, remote_settings, serve_gateway, write_corpus
from tests.utils.servers import serve_in_thread


@dataclass
class ToolGateway(Gateway):
    app: Any

    @property
    def tools(self) -> ToolService:
        service: ToolService | None = self.app.state.ragserve.tools
        assert service is not None
        return service


@pytest.fixture(scope="session")
def _tool_gateway(shared_embedder: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ToolGateway]:
    fake = FakeVLLM()
    with serve_in_thread(fake.app, ready_path="/health") as engine_url:
        settings = remote_settings(
            tmp_path_factory.mktemp("tools-gateway"),
            engine_url,
            tools=ToolSettings(tool_timeout_s=2.0, deadline_s=20.0),
        )
        corpus = write_corpus(tmp_path_factory.mktemp("tools-corpus"), CORPUS)
        with serve_gateway(settings, shared_embedder, corpus) as (url, app):
            yield ToolGateway(url=url, fake=fake, settings=settings, app=app)


@pytest.fixture
def gw(_tool_gateway: ToolGateway, monkeypatch: pytest.MonkeyPatch) -> Iterator[ToolGateway]:
    """The shared tool gateway with a clean script; tool settings changed by a test are restored."""
    g = _tool_gateway
    g.fake.replies.clear()
    g.fake.requests.clear()
    saved = g.settings.tools.model_copy(deep=True)
    registry = dict(g.tools.registry._tools)
    yield g
    for name in ToolSettings.model_fields:
        setattr(g.settings.tools, name, getattr(saved, name))
    g.tools.registry._tools = registry
    assert not g.fake.replies, f"scripted replies left unused: {list(g.fake.replies)}"
