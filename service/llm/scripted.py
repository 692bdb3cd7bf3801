"""`ScriptedModel`: the model interface answering from a queue of scripted replies, in-process.

A real `ChatModel` subclass (the idea of simonw/llm's `MockModel`), not a mock: usage, metrics,
streaming, structured retries and errors all run through the same code as with the engine; only
the transport is replaced. It answers in vLLM's shapes (one id per stream, a role chunk first,
`finish_reason` on the last choice chunk, a usage chunk with empty `choices`), counts tokens as
whitespace-separated words and records every request body, so tests can read what was asked.
A reply longer than the request's `max_tokens` words is cut there with `finish_reason: "length"`,
as the engine would cut it.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from service.errors import APIError
from service.llm.model import ChatModel, EventSource
from service.observability.metrics import Metrics


@dataclass
class ScriptedReply:
    """A reply with more than text: tool calls, or an engine error to raise instead of answering."""

    content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    error: APIError | None = None


class _ScriptedEvents:
    def __init__(self, payloads: list[str]) -> None:
        self._payloads = payloads
        self.closed = False

    async def events(self) -> AsyncIterator[str]:
        for p in self._payloads:
            if self.closed:
                return
            yield p

    async def aclose(self) -> None:
        self.closed = True


class ScriptedModel(ChatModel):
    """Answers each request with the next scripted reply ("Scripted answer [1]." when none is left)."""

    def __init__(
        self, *, model: str = "scripted-model", max_model_len: int = 2048, metrics: Metrics | None = None
    ) -> None:
        super().__init__(metrics=metrics, context_length_fallback=max_model_len)
        self.model = model
        self.max_model_len = max_model_len
        self.replies: deque[str | ScriptedReply] = deque()
        self.requests: list[dict[str, Any]] = []

    def script(self, *replies: str | ScriptedReply) -> None:
        self.replies.extend(replies)

    @staticmethod
    def count(text: str) -> int:
        return len(text.split())

    def _answer(self, body: dict[str, Any]) -> tuple[ScriptedReply, str, dict[str, int]]:
        self.requests.append(body)
        reply = self.replies.popleft() if self.replies else "Scripted answer [1]."
        if isinstance(reply, str):
            reply = ScriptedReply(content=reply)
        if reply.error is not None:
            raise reply.error
        words = (reply.content or "").split(" ") if reply.content else []
        finish = "tool_calls" if reply.tool_calls else "stop"
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if limit is not None and len(words) > int(limit):
            words, finish = words[: int(limit)], "length"
        content = " ".join(words) if reply.content is not None else None
        if "messages" in body:
            prompt = sum(self.count(str(m.get("content") or "")) for m in body["messages"])
        else:
            prompt = self.count(str(body.get("prompt")))
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": len(words),
            "total_tokens": prompt + len(words),
        }
        return ScriptedReply(content=content, tool_calls=reply.tool_calls), finish, usage

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        reply, finish, usage = self._answer(body)
        choice: dict[str, Any] = {"index": 0, "finish_reason": finish, "logprobs": None}
        if "messages" in body:
            message: dict[str, Any] = {"role": "assistant", "content": reply.content}
            if reply.tool_calls:
                message["tool_calls"] = reply.tool_calls
            choice["message"] = message
            kind = "chat.completion"
        else:
            choice["text"] = reply.content or ""
            kind = "text_completion"
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": kind,
            "created": int(time.time()),
            "model": body.get("model"),
            "choices": [choice],
            "usage": usage,
        }

    async def _open(self, path: str, body: dict[str, Any]) -> EventSource:
        reply, finish, usage = self._answer(body)
        base = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body.get("model"),
        }

        def chunk(delta: dict[str, Any], reason: str | None = None) -> str:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}
            return json.dumps({**base, "choices": [choice]})

        payloads = [chunk({"role": "assistant", "content": ""})]
        words = (reply.content or "").split(" ") if reply.content else []
        payloads += [chunk({"content": w if i == 0 else " " + w}) for i, w in enumerate(words)]
        payloads.append(chunk({}, finish))
        if (body.get("stream_options") or {}).get("include_usage"):
            payloads.append(json.dumps({**base, "choices": [], "usage": usage}))
        payloads.append("[DONE]")
        return _ScriptedEvents(payloads)

    async def _max_model_len(self, model: str) -> int | None:
        return self.max_model_len

    async def count_tokens(self, text: str, model: str) -> int:
        return self.count(text)

    async def count_chat_tokens(self, messages: list[dict[str, Any]], model: str) -> int:
        return self.count(json.dumps(messages))
