"""One model interface for every feature that talks to the language model.

Generation, tools and RCA all ask the model through `ChatModel`: `complete` (one whole answer),
`stream` (an open SSE answer, events as dicts) and `structured` (an answer under a decoding
constraint, parsed, retried with the caller's tighter constraint when it is cut off or invalid).
Usage is counted here and only here: the API key's token budget (`report_usage`), the
`ragserve_prompt_tokens_total` / `ragserve_generation_tokens_total` counters and, when the caller
passes one, the request's own `Usage` (a tool loop or an analysis adds up its steps).

`EngineModel` speaks vLLM's OpenAI HTTP API through `EngineClient`; `ScriptedModel`
(service/llm/scripted.py) answers from a queue of scripted replies, for unit tests where the
engine is beside the point. Both are subclasses: what differs is the transport (`_post`, `_open`)
and token counting.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from service.auth.context import report_usage
from service.engine.client import EngineClient
from service.errors import APIError, InvalidModelOutput, error_type_for_status
from service.observability.metrics import Metrics

logger = logging.getLogger("ragserve.llm")

CHAT_PATH = "/v1/chat/completions"
T = TypeVar("T")


@dataclass
class Usage:
    """Tokens of one or more engine calls (a tool loop's steps, an analysis and its retries)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, usage: dict[str, Any] | None) -> None:
        self.prompt_tokens += int((usage or {}).get("prompt_tokens") or 0)
        self.completion_tokens += int((usage or {}).get("completion_tokens") or 0)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def payload(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass
class Completion:
    """One whole answer: the engine's response as sent (`data`) and its first choice, read."""

    data: dict[str, Any]

    @property
    def choice(self) -> dict[str, Any]:
        choices = self.data.get("choices") or [{}]
        first: dict[str, Any] = choices[0]
        return first

    @property
    def message(self) -> dict[str, Any]:
        message: dict[str, Any] = self.choice.get("message") or {}
        return message

    @property
    def text(self) -> str:
        """The answer's text (chat: the message content; text completions: the choice's text)."""
        if "text" in self.choice:
            return str(self.choice.get("text") or "")
        return str(self.message.get("content") or "")

    @property
    def finish_reason(self) -> str | None:
        reason = self.choice.get("finish_reason")
        return str(reason) if reason is not None else None

    @property
    def usage(self) -> dict[str, Any]:
        usage: dict[str, Any] = self.data.get("usage") or {}
        return usage


class EventSource(Protocol):
    """An open SSE response: each `data:` payload as a string, then closed."""

    def events(self) -> AsyncIterator[str]: ...

    async def aclose(self) -> None: ...


class ChatStream:
    """An open streamed answer. Iterate `events()` for each event as a dict (until `[DONE]`);
    usage is counted when the stream is closed, however it ends."""

    def __init__(self, source: EventSource, *, on_close: Callable[[dict[str, Any] | None], None]) -> None:
        self._source = source
        self._on_close = on_close
        self._closed = False
        self.usage: dict[str, Any] | None = None  # the engine's usage chunk, once seen
        self.finish_reason: str | None = None

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        async for payload in self._source.events():
            if payload == "[DONE]":
                return
            try:
                event = json.loads(payload)
            except ValueError:
                logger.warning("engine sent a non-JSON SSE event: %.200s", payload)
                continue
            if not isinstance(event, dict):
                logger.warning("engine sent a non-object SSE event: %.200s", payload)
                continue
            if event.get("usage"):
                self.usage = event["usage"]
            for choice in event.get("choices") or []:
                self.finish_reason = choice.get("finish_reason") or self.finish_reason
            yield event

    async def collect(self, on_delta: Callable[[str], Awaitable[None]] | None = None) -> Completion:
        """Read the whole stream into one answer (first choice), passing each text piece on;
        an error event from the engine raises it."""
        parts: list[str] = []
        try:
            async for event in self.events():
                if "error" in event and not event.get("choices"):
                    raise stream_error(event["error"])
                for choice in event.get("choices") or []:
                    piece = (choice.get("delta") or {}).get("content") or choice.get("text") or ""
                    if piece:
                        parts.append(piece)
                        if on_delta is not None:
                            await on_delta(piece)
        finally:
            await self.aclose()
        return Completion(
            {
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "".join(parts)},
                        "finish_reason": self.finish_reason,
                    }
                ],
                "usage": self.usage or {},
            }
        )

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self._source.aclose()
        finally:
            self._on_close(self.usage)


def stream_error(err: Any) -> APIError:
    """An error event inside an engine stream, as our APIError."""
    if not isinstance(err, dict):
        return APIError(f"engine error: {err}", status_code=502, code="engine_error")
    code = err.get("code")
    status = code if isinstance(code, int) else 502
    message = str(err.get("message") or "engine error")
    if status >= 500:
        return APIError(f"engine error: {message}", status_code=502, code="engine_error")
    return APIError(message, status_code=status, error_type=error_type_for_status(status))


@dataclass
class StructuredAttempt:
    """A failed structured attempt, handed to the caller to choose the next constraint."""

    number: int  # 0 for the first attempt
    text: str
    finish_reason: str | None
    error: Exception

    @property
    def cut_off(self) -> bool:
        return self.finish_reason == "length"


@dataclass
class StructuredSpec:
    """How a structured answer is asked for, checked and reported (see `ChatModel.structured`)."""

    what: str  # "tool call", "analysis": for the error message
    code: str  # the error code when nothing valid came back
    length_hint: str = ""  # appended to the message when the last attempt was cut off
    retries: int = 1
    invalid: tuple[type[Exception], ...] = (ValueError,)  # what `parse` raises for invalid output


class ChatModel:
    """The model interface; subclasses supply the transport (`_post`, `_open`) and token counts."""

    def __init__(self, *, metrics: Metrics | None = None, context_length_fallback: int = 2048) -> None:
        self.metrics = metrics
        self._context_length_fallback = context_length_fallback
        self._context_length: int | None = None

    # -- transport (subclasses) ---------------------------------------------------------------

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    async def _open(self, path: str, body: dict[str, Any]) -> EventSource:
        raise NotImplementedError

    async def _max_model_len(self, model: str) -> int | None:
        raise NotImplementedError

    async def count_tokens(self, text: str, model: str) -> int:
        raise NotImplementedError

    async def count_chat_tokens(self, messages: list[dict[str, Any]], model: str) -> int:
        raise NotImplementedError

    # -- the interface --------------------------------------------------------------------------

    async def context_length(self, model: str) -> int:
        """The served model's context length (asked once, then cached; the setting if not told)."""
        if self._context_length is None:
            found = await self._max_model_len(model)
            self._context_length = found or self._context_length_fallback
        return self._context_length

    def observe_usage(self, model: str, usage: dict[str, Any] | None, into: Usage | None = None) -> None:
        """Count one engine answer's usage: the key's token budget, the token counters, `into`."""
        if not usage:
            return
        if into is not None:
            into.add(usage)
        report_usage(usage)  # reconciles the API key's tokens-per-minute bucket with real usage
        if self.metrics is not None:
            self.metrics.prompt_tokens.labels(model).inc(int(usage.get("prompt_tokens") or 0))
            self.metrics.generation_tokens.labels(model).inc(int(usage.get("completion_tokens") or 0))

    async def complete(
        self,
        body: dict[str, Any],
        *,
        path: str = CHAT_PATH,
        usage: Usage | None = None,
        label: str | None = None,
    ) -> Completion:
        """One whole answer; `label`: the model name the token counters use (default: body's)."""
        data = await self._post(path, {**body, "stream": False} if "stream" in body else body)
        self.observe_usage(label or str(body.get("model")), data.get("usage"), usage)
        return Completion(data)

    async def stream(
        self,
        body: dict[str, Any],
        *,
        path: str = CHAT_PATH,
        usage: Usage | None = None,
        label: str | None = None,
    ) -> ChatStream:
        """Start a streamed answer (usage is always requested from the engine, for counting);
        errors before the first byte raise with their real status."""
        body = {**body, "stream": True}
        body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        source = await self._open(path, body)
        model = label or str(body.get("model"))
        return ChatStream(source, on_close=lambda u: self.observe_usage(model, u, usage))

    async def structured(
        self,
        body: dict[str, Any],
        *,
        constraint: Callable[[StructuredAttempt | None], dict[str, Any]],
        parse: Callable[[str], T],
        spec: StructuredSpec,
        usage: Usage | None = None,
        on_delta: Callable[[str], Awaitable[None]] | None = None,
        after_attempt: Callable[[], Awaitable[None]] | None = None,
    ) -> T:
        """An answer under `structured_outputs`, parsed by `parse`.

        `constraint(last)` gives the fields of each attempt's request, `structured_outputs` at least
        (`last`: the failed attempt before it, None for the first), so a caller can tighten its
        bounds or change its instruction after a cut-off. With
        `on_delta` the answer streams and each text piece is passed on. After `spec.retries`
        failed retries: `InvalidModelOutput` (502) naming `spec.what`, with the last finish_reason.
        """
        last: StructuredAttempt | None = None
        for number in range(1 + spec.retries):
            attempt_body = {**body, **constraint(last)}
            if on_delta is not None:
                answer = await (await self.stream(attempt_body, usage=usage)).collect(on_delta)
            else:
                answer = await self.complete(attempt_body, usage=usage)
            if after_attempt is not None:
                await after_attempt()
            try:
                return parse(answer.text)
            except spec.invalid as exc:
                last = StructuredAttempt(number, answer.text, answer.finish_reason, exc)
                logger.warning(
                    "invalid %s (attempt %d, finish_reason %s): %s",
                    spec.what,
                    number + 1,
                    last.finish_reason,
                    exc,
                )
        assert last is not None
        hint = spec.length_hint if last.cut_off else ""
        raise InvalidModelOutput(
            f"the model did not produce a valid {spec.what}: {last.error}{hint}",
            code=spec.code,
            finish_reason=last.finish_reason,
        )


class EngineModel(ChatModel):
    """The model behind vLLM's OpenAI HTTP API (the embedded child or a remote deployment)."""

    def __init__(
        self, engine: EngineClient, *, metrics: Metrics | None = None, context_length_fallback: int = 2048
    ) -> None:
        super().__init__(metrics=metrics, context_length_fallback=context_length_fallback)
        self.engine = engine

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.engine.post_json(path, body)

    async def _open(self, path: str, body: dict[str, Any]) -> EventSource:
        return await self.engine.open_stream(path, body)

    async def _max_model_len(self, model: str) -> int | None:
        return await self.engine.max_model_len(model)

    async def count_tokens(self, text: str, model: str) -> int:
        return await self.engine.count_tokens(text, model)

    async def count_chat_tokens(self, messages: list[dict[str, Any]], model: str) -> int:
        return await self.engine.count_chat_tokens(messages, model)
