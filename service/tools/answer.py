"""What a tool-using request answers: the calls for the client (whole or streamed), or the final answer.

The final answer is generated normally (and streams for real) with the tools stripped, through
the same relay as any chat answer; server-tool results become its passages and citations.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from service.chat.relay import Relay
from service.chat.route import PreparedRequest
from service.observability.metrics import Metrics
from service.rag.prompt import GroundedPrompt, PromptTemplates, citations_payload, detect_language
from service.settings import Settings
from service.tools import prompting, streaming
from service.tools.runner import LoopState

if TYPE_CHECKING:
    from service.tools.planning import ToolPlan

# Request fields the gateway consumes; the engine never sees them on the guided path.
TOOL_FIELDS = ("tools", "tool_choice", "parallel_tool_calls", "server_tools")


class ToolAnswers:
    def __init__(self, *, relay: Relay, settings: Settings, metrics: Metrics) -> None:
        self.relay = relay
        self.settings = settings
        self.metrics = metrics

    def final_fields(self, state: LoopState, plan: ToolPlan, answer: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if state.ctx.citations:
            out["citations"] = citations_payload(state.ctx.citations, answer)
        if plan.wants_trace:
            out["tool_trace"] = state.trace
        return out

    def tool_call_response(
        self,
        calls: list[dict[str, Any]],
        prepared: PreparedRequest,
        state: LoopState,
        plan: ToolPlan,
        *,
        stream: bool,
    ) -> dict[str, Any] | AsyncIterator[bytes]:
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        model = prepared.public_model
        self.metrics.finish_reasons.labels(model, "tool_calls").inc()
        extra = self.final_fields(state, plan, None)
        if stream:
            chunks = streaming.tool_call_chunks(
                completion_id=completion_id,
                created=created,
                model=model,
                tool_calls=calls,
                usage=state.usage.payload() if prepared.client_wants_usage else None,
                final_fields=extra,
            )
            return streaming.replay(chunks)
        return {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": None, "tool_calls": calls},
                    "logprobs": None,
                    "finish_reason": "tool_calls",
                }
            ],
            "usage": state.usage.payload(),
            **extra,
        }

    async def answer(
        self, prepared: PreparedRequest, state: LoopState, plan: ToolPlan, *, stream: bool
    ) -> dict[str, Any] | AsyncIterator[bytes]:
        """The final answer, generated normally (streamed for real) with the tools stripped."""
        if plan.strategy == "native":
            messages = list(state.messages)
        elif state.results and prepared.grounded is None and state.question:
            messages = self._results_prompt(prepared, state)
        else:
            messages = prompting.flatten_history(state.messages, for_answer=True)
            ends_with_result = state.messages[-1].get("role") in ("tool", "function")
            if ends_with_result and state.question and messages[-1]["role"] == "user":
                hint = f"Use these results to answer: {state.question}"
                messages[-1] = {**messages[-1], "content": f"{messages[-1]['content']}\n\n{hint}"}
        body = {k: v for k, v in prepared.body.items() if k not in TOOL_FIELDS}
        body["messages"] = messages
        grounded = prepared.grounded
        collection = prepared.collection
        if state.ctx.citations:  # the grounding passages, then every search's, numbered in order
            grounded = GroundedPrompt(
                messages=messages,
                citations=list(state.ctx.citations),
                language=grounded.language if grounded is not None else "en",
                dropped_for_budget=grounded.dropped_for_budget if grounded is not None else 0,
            )
            collection = collection or state.ctx.default_collection or self.settings.default_collection
        final = PreparedRequest(
            body=body,
            public_model=prepared.public_model,
            engine_model=prepared.engine_model,
            grounded=grounded,
            collection=collection,
            client_wants_usage=prepared.client_wants_usage,
            final_fields={"tool_trace": state.trace} if plan.wants_trace else {},
            searched=tuple(state.ctx.searched),
        )
        return await self.relay.answer(final, stream=stream)

    def _results_prompt(self, prepared: PreparedRequest, state: LoopState) -> list[dict[str, Any]]:
        """The grounding prompt (the one tuned for small models), with the tool results as passages."""
        language = detect_language(state.question)
        rag = self.settings.rag
        tpl = PromptTemplates.load(
            language, rag.system_prompt_zh if language == "zh" else rag.system_prompt_en
        )
        history = prompting.flatten_history(prepared.body["messages"], for_answer=True)
        user = tpl.user.format(passages="\n\n".join(state.results), question=state.question)
        if history and history[-1]["role"] == "user" and history[-1]["content"].strip() == state.question:
            history[-1] = {"role": "user", "content": user}  # the question itself: ask it with the results
        else:
            history.append({"role": "user", "content": user})
        return prompting.with_system(history, tpl.system)
