"""One decoding step of the tool loop: the calls the model makes, valid against the allowed tools.

`guided` (the default): for `auto`, a constrained choice between the tool names and "answer"
first; then the call (or calls) generated under a JSON schema that admits only the allowed tools
with schema-valid arguments, bounded so that a call fits the tokens available. `native`: vLLM's
own tool parser, its calls checked the same way.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from service.chat.route import PreparedRequest
from service.errors import InvalidModelOutput, max_tokens_too_small
from service.llm import ChatModel, StructuredAttempt
from service.llm.model import StructuredSpec
from service.observability.metrics import Metrics
from service.protocol.openai import ChatCompletionRequest
from service.settings import ToolSettings
from service.tools import constrained, prompting
from service.tools.answer import TOOL_FIELDS
from service.tools.constrained import Bounds, DecodedCall, InvalidCall
from service.tools.definitions import ToolChoice
from service.tools.planning import ToolPlan
from service.tools.runner import LoopState

logger = logging.getLogger("ragserve.tools")

# Fields that make no sense for a constrained step (the constraint replaces them).
_STEP_DROP = (
    *TOOL_FIELDS, "stream", "stream_options", "response_format", "structured_outputs", "stop",
    "logprobs", "top_logprobs", "max_tokens", "max_completion_tokens", "ignore_eos", "min_tokens",
)  # fmt: skip
DECISION_MAX_TOKENS = 32


class CallDecoder:
    """Decodes the model's tool calls for one round; usage counts for the request (`state.usage`)."""

    def __init__(self, *, model: ChatModel, cfg: ToolSettings, metrics: Metrics) -> None:
        self.model = model
        self.cfg = cfg
        self.metrics = metrics

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

    def call_budget(self, plan: ToolPlan, req: ChatCompletionRequest) -> tuple[int, bool]:
        """(max_tokens of a call's decode, whether it is the client's own max_tokens).

        With server tools, the rounds are the gateway's own work: their calls never reach the
        client, and the client's max_tokens is the final answer's, not theirs.
        """
        limit = req.output_limit()
        if plan.tools.server_tools or limit is None:
            return self.cfg.call_max_tokens, False
        return limit, True

    async def step(
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
        max_tokens, clients = self.call_budget(plan, req)
        max_calls = self.cfg.max_parallel_calls
        # Bounds that let the longest admissible call fit in the tokens available.
        bounds = Bounds(self.cfg.max_string_length, self.cfg.max_array_items)
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
                raise max_tokens_too_small(
                    param="max_tokens",
                    max_tokens=max_tokens,
                    need=constrained.min_call_tokens(allowed),
                    what=f"a valid call of {', '.join(t.name for t in allowed)}",
                ) from exc
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
        body = self._step_body(prepared, state.messages, self.call_budget(plan, req)[0])
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
