"""`ChatPipeline`: the stages of `/v1/chat/completions` in order, and `/v1/completions`.

route (model + `rag`, parsed once) -> input guard -> ground -> tools or generate -> relay (output
guard, citations). vLLM's own server does the generation work (chat templates, structured
outputs, tool parsing, LoRA, batching); the gateway adds retrieval, safety, tools and citations.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio

from service.chat.grounding import Grounder
from service.chat.input_guard import guard_chat_input
from service.chat.relay import Relay
from service.chat.route import RAG_PREFIX, PreparedRequest, route
from service.errors import BadRequest
from service.protocol.openai import ChatCompletionRequest, CompletionRequest
from service.safety import GuardPipeline
from service.settings import Settings
from service.tools.service import ToolService


class ChatPipeline:
    def __init__(
        self,
        *,
        settings: Settings,
        guard: GuardPipeline,
        grounder: Grounder,
        tools: ToolService,
        relay: Relay,
    ) -> None:
        self.settings = settings
        self.guard = guard
        self.grounder = grounder
        self.tools = tools
        self.relay = relay

    async def chat(
        self, req: ChatCompletionRequest, raw: dict[str, Any]
    ) -> dict[str, Any] | AsyncIterator[bytes]:
        where = route(req, self.settings)
        # The input guard is CPU-bound (~1.6 s per MB of text): in a worker thread, so one large
        # request does not stall every other request and stream.
        await anyio.to_thread.run_sync(guard_chat_input, self.guard, req, raw, where.collection)
        where = route(req, self.settings)  # rag.query may have been redacted
        tool_plan = await self.tools.plan(req, raw, where)
        prepared = await self.grounder.prepare(req, raw, where)
        if tool_plan is not None:
            return await self.tools.chat(tool_plan, req, prepared)
        return await self.relay.answer(prepared, stream=bool(req.stream))

    async def completion(
        self, req: CompletionRequest, raw: dict[str, Any]
    ) -> dict[str, Any] | AsyncIterator[bytes]:
        if req.model.startswith(RAG_PREFIX) or req.rag is not None:
            raise BadRequest(
                "grounded answers (rag/<collection> models or the rag field) are served by "
                "/v1/chat/completions; /v1/completions takes a plain model",
                param="model",
            )
        body = dict(raw)
        # Input guard on text prompts (token-id prompts carry no text to check).
        if isinstance(req.prompt, str):
            body["prompt"] = await anyio.to_thread.run_sync(self._checked_prompt, req.prompt)
        elif req.prompt and all(isinstance(p, str) for p in req.prompt):
            prompts = [str(p) for p in req.prompt]
            body["prompt"] = await anyio.to_thread.run_sync(self._checked_prompts, prompts)
        if req.stream:
            body["stream_options"] = {**(raw.get("stream_options") or {}), "include_usage": True}
        prepared = PreparedRequest(
            body=body,
            public_model=req.model,
            engine_model=req.model,
            grounded=None,
            collection=None,
            client_wants_usage=bool(req.stream_options and req.stream_options.include_usage),
        )
        return await self.relay.answer(prepared, stream=bool(req.stream), kind="completion")

    def _checked_prompts(self, texts: list[str]) -> list[str]:
        return [self._checked_prompt(t) for t in texts]

    def _checked_prompt(self, text: str) -> str:
        """A completion prompt through the input guard: raises ContentBlocked, or returns it (redacted)."""
        verdict = self.guard.check_input(text)
        return verdict.text if verdict.action == "redact" else text
