"""The chat pipeline, tools and RCA over `ScriptedModel`, in-process: no engine, no HTTP server.

The components are the app factory's (guard, relay, grounding over a real knowledge base with the
real embedder); only the model's transport is scripted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ingest.knowledge_base import KnowledgeBase
from service.chat.grounding import Grounder
from service.chat.pipeline import ChatPipeline
from service.chat.relay import Relay
from service.knowledge import KnowledgeService
from service.llm import ScriptedModel
from service.observability.metrics import Metrics
from service.protocol.openai import ChatCompletionRequest
from service.rca.analyzer import RcaAnalyzer
from service.rca.models import RcaRequest
from service.safety import GuardPipeline
from service.settings import EngineSettings, RcaSettings, Settings
from service.tools.service import ToolService

MODEL = "scripted"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
RUNBOOK = "# OOMKilled\n\nExit code 137 means the kernel killed the container: it ran out of memory.\n"


@dataclass
class Parts:
    model: ScriptedModel
    chat: ChatPipeline
    rca: RcaAnalyzer


@pytest.fixture
def parts(shared_embedder: object, tmp_path: Path) -> Iterator[Parts]:
    settings = Settings(
        data_dir=tmp_path,
        engine=EngineSettings(mode="remote", url="http://unused", served_model_name=MODEL, model=MODEL),
        rca=RcaSettings(json_whitespace="any"),
    )
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "oom.md").write_text(RUNBOOK, encoding="utf-8")
    kb = KnowledgeBase(settings.collections_dir, shared_embedder)  # type: ignore[arg-type]
    kb.ingest_paths("default", [tmp_path / "corpus"])
    metrics = Metrics()
    knowledge = KnowledgeService(kb, metrics, tmp_path / "jobs")
    model = ScriptedModel(model=MODEL, metrics=metrics)
    guard = GuardPipeline(settings.safety, metrics)
    relay = Relay(model=model, guard=guard, metrics=metrics)
    tools = ToolService(
        model=model, guard=guard, relay=relay, knowledge=knowledge, settings=settings, metrics=metrics
    )
    grounder = Grounder(model=model, knowledge=knowledge, guard=guard, settings=settings)
    chat = ChatPipeline(settings=settings, guard=guard, grounder=grounder, tools=tools, relay=relay)
    rca = RcaAnalyzer(model=model, knowledge=knowledge, settings=settings, metrics=metrics, guard=guard)
    yield Parts(model, chat, rca)
    knowledge.close()


async def ask(parts: Parts, **raw: Any) -> dict[str, Any]:
    raw.setdefault("model", MODEL)
    raw.setdefault("messages", [{"role": "user", "content": "What does exit code 137 mean?"}])
    out = await parts.chat.chat(ChatCompletionRequest.model_validate(raw), raw)
    assert isinstance(out, dict)
    return out


async def test_a_grounded_answer_cites_the_runbook(parts: Parts) -> None:
    parts.model.script("It ran out of memory [1].")
    out = await ask(parts, model="rag/default")
    assert out["model"] == "rag/default" and out["citations"][0]["document_id"] == "oom.md"
    sent = parts.model.requests[-1]
    assert sent["model"] == MODEL and "kernel killed the container" in json.dumps(sent["messages"])


async def test_a_required_tool_call_fits_a_small_max_tokens(parts: Parts) -> None:
    parts.model.script(json.dumps({"name": "get_weather", "arguments": {"city": "Oslo"}}))
    out = await ask(parts, tools=[WEATHER], tool_choice="required", max_tokens=64)
    call = out["choices"][0]["message"]["tool_calls"][0]["function"]
    assert call == {"name": "get_weather", "arguments": '{"city": "Oslo"}'}
    assert out["choices"][0]["finish_reason"] == "tool_calls" and out["usage"]["completion_tokens"] == 5


async def test_a_streamed_answer_ends_with_done(parts: Parts) -> None:
    parts.model.script("Memory ran out [1].")
    raw = {
        "model": "rag/default",
        "stream": True,
        "messages": [{"role": "user", "content": "exit code 137?"}],
    }
    out = await parts.chat.chat(ChatCompletionRequest.model_validate(raw), raw)
    assert not isinstance(out, dict)
    frames = [f async for f in out]
    assert frames[-1] == b"data: [DONE]\n\n"
    last = json.loads(frames[-2].decode().removeprefix("data: "))
    assert last["citations"][0]["document_id"] == "oom.md"


async def test_an_analysis_of_an_alert(parts: Parts) -> None:
    reply = {
        "summary": "The container ran out of memory.",
        "severity": "warning",
        "hypotheses": [
            {
                "title": "Memory limit too low",
                "evidence": ["runbook:1"],
                "reasoning": "Exit code 137.",
                "confidence": 0.8,
                "checks": ["kubectl describe pod"],
                "remediation": "Raise the limit.",
            }
        ],
        "missing_data": [],
    }
    parts.model.script(json.dumps(reply))
    req = RcaRequest.model_validate(
        {"alert": {"labels": {"alertname": "OOMKilled"}, "annotations": {"summary": "exit code 137"}}}
    )
    result = await parts.rca.analyze(req, analysis_id="a1")
    assert result.hypotheses[0].evidence[0].ref == "runbook:1"
    assert "kernel killed" in result.hypotheses[0].evidence[0].excerpt
    assert result.usage is not None and result.usage.completion_tokens > 0
