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
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio

from service.chat.relay import Relay
from service.chat.route import ChatRoute, PreparedRequest
from service.errors import APIError, BadRequest, InvalidModelOutput
from service.knowledge import KnowledgeService
from service.llm import ChatModel, StructuredAttempt
from service.llm.model import StructuredSpec
from service.observability.metrics import Metrics
from service.protocol.openai import ChatCompletionRequest
from service.safety import GuardPipeline
from service.settings import Settings
from service.tools import constrained, prompting
from service.tools.answer import TOOL_FIELDS, ToolAnswers
from service.tools.builtins import ToolContext, ToolRegistry, default_registry
from service.tools.constrained import Bounds, DecodedCall, InvalidCall
from service.tools.definitions import (
    SchemaBudget,
    ToolChoice,
    ToolDef,
    ToolRequest,
    parse_tool_choice,
    parse_tools,
)
from service.tools.runner import LoopState, ServerToolRunner, call_key

logger = logging.getLogger("ragserve.tools")

# Fields that make no sense for a constrained step (the constraint replaces them).
_STEP_DROP = (
    *TOOL_FIELDS, "stream", "stream_options", "response_format", "structured_outputs", "stop",
    "logprobs", "top_logprobs", "max_tokens", "max_completion_tokens", "ignore_eos", "min_tokens",
)  # fmt: skip
DECISION_MAX_TOKENS = 32


@dataclass
class ToolPlan:
    """A chat request's tools, validated, and how calls will be decoded."""

    tools: ToolRequest
    strategy: str
    wants_trace: bool  # server tools were requested: the answer carries `tool_trace`
    route: ChatRoute


class ToolService:
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

    @property
    def bounds(self) -> Bounds:
        return Bounds(self.cfg.max_string_length, self.cfg.max_array_items)

    # -- planning -------------------------------------------------------------------------

    def strategy_for(self, engine_model: str) -> str:
        return self.cfg.model_strategies.get(engine_model, self.cfg.strategy)

    async def plan(
        self, req: ChatCompletionRequest, raw: dict[str, Any], route: ChatRoute
    ) -> ToolPlan | None:
        """Validate the request's tools; None when the request does not involve tools at all."""
        strategy = self.strategy_for(route.engine_model)
        server_names = raw.get("server_tools")
        involved = (
            raw.get("tools") is not None
            or raw.get("tool_choice") is not None
            or bool(server_names)
            or (strategy == "guided" and prompting.has_tool_history(raw.get("messages") or []))
        )
        if not involved:
            return None
        client_tools: list[ToolDef] = []
        if raw.get("tools") is not None:
            # Schema checks and `$ref` inlining are CPU work (bounded by the budget): off the event loop.
            budget = SchemaBudget(self.cfg.max_schema_nodes, self.cfg.max_schema_depth)
            client_tools = await anyio.to_thread.run_sync(
                functools.partial(parse_tools, raw["tools"], budget=budget)
            )
        server_tools = await self._server_tools(server_names, client_tools, route)
        all_tools = client_tools + server_tools
        choice = parse_tool_choice(raw.get("tool_choice"), all_tools, has_tools=bool(all_tools))
        parallel = raw.get("parallel_tool_calls")
        if parallel is not None and not isinstance(parallel, bool):
            raise BadRequest("parallel_tool_calls must be true or false", param="parallel_tool_calls")
        return ToolPlan(
            tools=ToolRequest(client_tools, server_tools, choice, parallel is not False),
            strategy=strategy,
            wants_trace=bool(server_tools),
            route=route,
        )

    async def _context(self, route: ChatRoute) -> ToolContext:
        collections = [c["name"] for c in await self.knowledge.list_collections()]
        default = route.collection or self.settings.default_collection
        guard = self.guard

        def screen_text(text: str) -> str | None:
            verdict = guard.scan("context", text, collection=default)
            return None if verdict.blocked else verdict.text

        return ToolContext(
            self.knowledge, self.cfg, collections, default,
            screen=lambda hits, collection: guard.filter_context(hits, collection=collection),
            screen_text=screen_text,
        )  # fmt: skip

    async def _server_tools(self, names: Any, client_tools: list[ToolDef], route: ChatRoute) -> list[ToolDef]:
        if names is None or names == []:
            return []
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise BadRequest("server_tools must be an array of tool names", param="server_tools")
        client_names = {t.name for t in client_tools}
        ctx = await self._context(route)
        out: list[ToolDef] = []
        for i, name in enumerate(dict.fromkeys(names)):
            tool = self.registry.get(name)
            where = f"server_tools[{i}]"
            if tool is None:
                raise BadRequest(
                    f"{where}: unknown server tool {name!r}; available: {', '.join(self.registry.names())}",
                    param=where, code="unknown_tool",
                )  # fmt: skip
            if tool.mutating and name not in self.cfg.allow_mutating:
                raise APIError(
                    f"{where}: {name!r} changes things and is not allowed on this server "
                    "(an operator can allow it with tools.allow_mutating)",
                    status_code=403, error_type="permission_error", param=where, code="tool_not_allowed",
                )  # fmt: skip
            if name in client_names:
                raise BadRequest(
                    f"{where}: {name!r} is also defined in tools; a name can be a client or a server tool",
                    param=where,
                )
            if name == "prometheus_query" and not self.cfg.prometheus_url:
                raise BadRequest(
                    f"{where}: prometheus_query needs a Prometheus; set tools.prometheus_url "
                    "(RAGSERVE_TOOLS__PROMETHEUS_URL)",
                    param=where, code="tool_unavailable",
                )  # fmt: skip
            out.append(tool.definition(ctx))
        return out

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
            await self._context(plan.route)
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
            calls = await self._step(plan, req, prepared, state, choice)
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

    def _step_body(
        self, prepared: PreparedRequest, messages: list[dict[str, Any]], max_tokens: int
    ) -> dict[str, Any]:
        body = {k: v for k, v in prepared.body.items() if k not in _STEP_DROP}
        body.update(messages=messages, max_tokens=max_tokens, stream=False)
        return body

    async def _generate(self, body: dict[str, Any], state: LoopState) -> tuple[dict[str, Any], str | None]:
        """One non-streamed step: (the message, finish_reason); its usage counts for the request."""
        answer = await self.model.complete(body, usage=state.usage)
        return answer.message, answer.finish_reason

    def _call_budget(self, plan: ToolPlan, req: ChatCompletionRequest) -> tuple[int, bool]:
        """(max_tokens of a call's decode, whether it is the client's own max_tokens).

        With server tools, the rounds are the gateway's own work: their calls never reach the
        client, and the client's max_tokens is the final answer's, not theirs.
        """
        limit = req.output_limit()
        if plan.tools.server_tools or limit is None:
            return self.cfg.call_max_tokens, False
        return limit, True

    async def _step(
        self,
        plan: ToolPlan,
        req: ChatCompletionRequest,
        prepared: PreparedRequest,
        state: LoopState,
        choice: ToolChoice,
    ) -> list[DecodedCall]:
        if plan.strategy == "native":
            return await self._native_step(plan, req, prepared, state, choice)
        tools = plan.tools.all_tools
        parallel = plan.tools.parallel and self.cfg.max_parallel_calls > 1
        if choice.mode == "auto":
            options, answer = constrained.decision_choices(tools)
            body = self._step_body(
                prepared,
                prompting.with_system(
                    prompting.flatten_history(state.messages),
                    prompting.describe_tools(tools, with_parameters=False),
                ),
                DECISION_MAX_TOKENS,
            )
            body["structured_outputs"] = {"choice": options}
            message, _ = await self._generate(body, state)
            picked = str(message.get("content") or "").strip()
            if picked == answer or picked not in options:
                return []
            allowed = tools if parallel else [t for t in tools if t.name == picked]
        else:
            allowed = choice.allowed(tools)
            parallel = parallel and choice.mode == "required"
        history = prompting.flatten_history(state.messages)
        max_tokens, clients = self._call_budget(plan, req)
        max_calls = self.cfg.max_parallel_calls
        # Bounds that let the longest admissible call fit in the tokens available.
        bounds = self.bounds
        if clients:  # the client's max_tokens: bounds from it, so a valid call (or calls) fits
            bounds = constrained.fit_bounds(bounds, allowed, max_tokens)
            if parallel:
                per_call = max(constrained.call_tokens(t, bounds) for t in allowed)
                max_calls = max(1, min(max_calls, (max_tokens - 2) // per_call))
                parallel = max_calls > 1

        def attempt(last: StructuredAttempt | None) -> dict[str, Any]:
            nonlocal bounds, parallel
            if last is not None:
                self.metrics.tool_calls.labels("any", "invalid").inc()
                if last.cut_off:
                    # Cut off by max_tokens (a small model filling strings and arrays to their
                    # bounds): retry within the same budget with one call and short strings.
                    bounds, parallel = bounds.compact(), False
                    if clients:
                        bounds = constrained.fit_bounds(bounds, allowed, max_tokens)
            schema = constrained.decoding_schema(
                allowed, parallel=parallel, max_calls=max_calls, bounds=bounds
            )
            instruction = prompting.PARALLEL_INSTRUCTION if parallel else prompting.CALL_INSTRUCTION
            messages = prompting.with_system(
                history, prompting.describe_tools(allowed, with_parameters=True) + "\n" + instruction
            )
            return {"messages": messages, "structured_outputs": {"json": schema}}

        spec = StructuredSpec(
            what="tool call",
            code="invalid_tool_call",
            length_hint="; the call did not fit in max_tokens: raise max_tokens",
            retries=self.cfg.guided_retries,
            invalid=(InvalidCall,),
        )
        try:
            return await self.model.structured(
                self._step_body(prepared, [], max_tokens),
                constraint=attempt,
                parse=lambda text: constrained.decode_calls(text, allowed),
                spec=spec,
                usage=state.usage,
            )
        except InvalidModelOutput as exc:
            self.metrics.tool_calls.labels("any", "invalid").inc()
            if clients and exc.finish_reason == "length":
                # The client's max_tokens cannot hold a valid call: say so, and what would.
                need = constrained.min_call_tokens(allowed)
                least = f"at least {need}" if need > max_tokens else f"more than {max_tokens}"
                raise BadRequest(
                    f"max_tokens={max_tokens} is too small for a valid call of "
                    f"{', '.join(t.name for t in allowed)} (it was cut off); use max_tokens {least}",
                    param="max_tokens", code="max_tokens_too_small",
                ) from exc  # fmt: skip
            raise

    async def _native_step(
        self,
        plan: ToolPlan,
        req: ChatCompletionRequest,
        prepared: PreparedRequest,
        state: LoopState,
        choice: ToolChoice,
    ) -> list[DecodedCall]:
        """vLLM's own tool parser (for models where it works); calls are checked like guided ones."""
        tools = plan.tools.all_tools
        body = self._step_body(prepared, state.messages, self._call_budget(plan, req)[0])
        body["tools"] = [t.openai() for t in tools]
        body["parallel_tool_calls"] = plan.tools.parallel
        body["tool_choice"] = (
            {"type": "function", "function": {"name": choice.name}} if choice.mode == "named" else choice.mode
        )
        message, _ = await self._generate(body, state)
        raw_calls = message.get("tool_calls") or []
        calls: list[DecodedCall] = []
        for c in raw_calls:
            fn = c.get("function") or {}
            name = json.dumps(str(fn.get("name") or ""))
            text = f'{{"name": {name}, "arguments": {fn.get("arguments") or "{}"}}}'
            try:
                calls.extend(constrained.decode_calls(text, tools))
            except InvalidCall as exc:
                logger.warning("native tool call rejected: %s", exc)
                self.metrics.tool_calls.labels("any", "invalid").inc()
        return calls


def _last_question(req: ChatCompletionRequest) -> str:
    if req.rag is not None and req.rag.query:
        return req.rag.query
    for m in reversed(req.messages):
        if m.role == "user":
            return m.text().strip()
    return ""
