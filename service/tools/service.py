"""Function calling on `/v1/chat/completions`: client tools, server tools and the bounded tool loop.

Per model, calls are decoded either by vLLM's own tool parser (`native`, for models where it is
known to work) or by the gateway (`guided`, the default): the engine generates under a JSON schema
that only admits calls to the allowed tools with schema-valid arguments, and the gateway writes
that JSON as OpenAI `tool_calls`. For `auto`, a constrained choice between the tool names and
"answer" comes first; answers are then generated normally (and stream for real).

Server tools (`server_tools`, an extension) run in the gateway: their results are fed back to the
model for up to `tools.max_iterations` rounds within `tools.deadline_s`, each call within
`tools.tool_timeout_s`; the answer carries `tool_trace` (and `citations` from knowledge-base
searches). A call to a client tool ends the loop and goes back to the client as usual.

The rooms: `planning` (which tools, validated), `decoder` (one round's calls), `runner` (server
tools run within their bounds), `answer` (the final answer or the client's calls); this module is
the loop that joins them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from service.chat.relay import Relay
from service.chat.route import ChatRoute, PreparedRequest
from service.knowledge import KnowledgeService
from service.llm import ChatModel
from service.observability.metrics import Metrics
from service.protocol.openai import ChatCompletionRequest
from service.safety import GuardPipeline
from service.settings import Settings
from service.tools import constrained
from service.tools.answer import ToolAnswers
from service.tools.builtins import ToolContext, ToolRegistry, default_registry
from service.tools.decoder import CallDecoder
from service.tools.definitions import ToolChoice
from service.tools.planning import ToolPlan, ToolPlanner
from service.tools.runner import LoopState, ServerToolRunner, call_key

__all__ = ["ToolPlan", "ToolService"]
logger = logging.getLogger("ragserve.tools")


class ToolService:
    """Chat requests that involve tools: plan, then the bounded loop, then the answer."""

    def __init__(
        self,
        *,
        model: ChatModel,
        guard: GuardPipeline,
        relay: Relay,
        knowledge: KnowledgeService,
        settings: Settings,
        metrics: Metrics,
        registry: ToolRegistry | None = None,
    ) -> None:
        self.model = model
        self.guard = guard
        self.relay = relay
        self.knowledge = knowledge
        self.settings = settings
        self.cfg = settings.tools
        self.metrics = metrics
        self.registry = registry or default_registry()
        self.answers = ToolAnswers(relay=relay, settings=settings, metrics=metrics)
        self.runner = ServerToolRunner(registry=self.registry, settings=self.cfg, metrics=metrics)
        self.planner = ToolPlanner(
            guard=guard, knowledge=knowledge, settings=settings, registry=self.registry
        )
        self.decoder = CallDecoder(model=model, cfg=self.cfg, metrics=metrics)

    async def plan(
        self, req: ChatCompletionRequest, raw: dict[str, Any], route: ChatRoute
    ) -> ToolPlan | None:
        """Validate the request's tools; None when the request does not involve tools at all."""
        return await self.planner.plan(req, raw, route)

    # -- serving --------------------------------------------------------------------------

    async def chat(
        self, plan: ToolPlan, req: ChatCompletionRequest, prepared: PreparedRequest
    ) -> dict[str, Any] | AsyncIterator[bytes]:
        tr = plan.tools
        stream = bool(req.stream)
        if plan.strategy == "native" and not tr.server_tools:
            prepared.body.pop("server_tools", None)
            return await self.relay.answer(prepared, stream=stream)
        messages = list(prepared.body["messages"])  # OpenAI shapes; rendered per step (guided)
        ctx = (
            await self.planner.context(plan.route)
            if tr.server_tools
            else ToolContext(self.knowledge, self.cfg, [], "")
        )
        if prepared.grounded is not None:
            ctx.citations.extend(prepared.grounded.citations)
        state = LoopState(
            messages=messages,
            ctx=ctx,
            deadline=time.monotonic() + self.cfg.deadline_s,
            question=_last_question(req),
        )
        if tr.choice.mode != "none":
            self.metrics.requests_in_flight.labels("chat").inc()
            try:
                client_calls = await self._loop(plan, req, prepared, state)
            finally:
                self.metrics.requests_in_flight.labels("chat").dec()
            if client_calls:
                return self.answers.tool_call_response(client_calls, prepared, state, plan, stream=stream)
        return await self.answers.answer(prepared, state, plan, stream=stream)

    async def _loop(
        self, plan: ToolPlan, req: ChatCompletionRequest, prepared: PreparedRequest, state: LoopState
    ) -> list[dict[str, Any]]:
        """Decode calls, run server tools, repeat; return the client calls (empty: answer now)."""
        tr = plan.tools
        choice = tr.choice
        for iteration in range(self.cfg.max_iterations):
            # The deadline bounds the rounds of server tools; the first decision always happens,
            # so `required` and named choices are honoured.
            # (asyncio may wake a timeout up to its clock resolution early: allow for it)
            if iteration > 0 and time.monotonic() >= state.deadline - 0.01:
                logger.info("tool loop: deadline reached after %d rounds; answering", iteration)
                return []
            calls = await self.decoder.step(plan, req, prepared, state, choice)
            if not calls:
                return []
            with_ids = [(c, constrained.new_call_id()) for c in calls]
            client = [constrained.openai_tool_call(c, i) for c, i in with_ids if not tr.is_server(c.name)]
            # A server call repeated verbatim would get the same result: the model is going round
            # in circles (small models do), so it answers with what it has.
            server = [(c, i) for c, i in with_ids if tr.is_server(c.name) and call_key(c) not in state.done]
            if not server and not client:
                logger.info("tool loop: only repeated calls; answering")
                return []
            if client:
                self.metrics.tool_calls.labels("client", "returned").inc(len(client))
            if server:
                await self.runner.run_calls(server, state, iteration)
            if client:
                return client
            # After a round of server tools the model decides again whether it needs more.
            choice = ToolChoice("auto")
        logger.info("tool loop: %d rounds done; answering", self.cfg.max_iterations)
        return []


def _last_question(req: ChatCompletionRequest) -> str:
    if req.rag is not None and req.rag.query:
        return req.rag.query
    for m in reversed(req.messages):
        if m.role == "user":
            return m.text().strip()
    return ""
