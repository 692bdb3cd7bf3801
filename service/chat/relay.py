"""The engine's answer back to the client: whole or streamed, through the output guard, with citations.

OpenAI shapes stay exact where the gateway rewrites an answer: the same id on every chunk,
`finish_reason` null until the last chunk, citations (and other extension fields such as
`tool_trace`) on the final chunk before `[DONE]`, usage only when the client asked for it.
Errors after the first byte travel inside the stream (service/sse.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

import anyio

from service.chat import abstain
from service.chat.route import PreparedRequest
from service.llm import ChatModel, ChatStream
from service.observability.metrics import Metrics
from service.rag.attribution import Attributor, StreamAttributor
from service.rag.prompt import ABSTENTIONS, citations_payload, cited_indices
from service.rag.support import only_citations, unsupported
from service.safety import GuardPipeline, StreamGuard
from service.settings import RagSettings
from service.sse import DONE, error_frames, frame

logger = logging.getLogger("ragserve.generation")

Kind = Literal["chat", "completion"]
PATHS: dict[Kind, str] = {"chat": "/v1/chat/completions", "completion": "/v1/completions"}


class Relay:
    """Sends a prepared request to the model and shapes the answer; measures each request."""

    def __init__(
        self, *, model: ChatModel, guard: GuardPipeline, metrics: Metrics, rag: RagSettings | None = None
    ) -> None:
        self.model = model
        self.guard = guard
        self.metrics = metrics
        self.rag = rag or RagSettings()

    def _attributor(self, prepared: PreparedRequest) -> Attributor | None:
        """Marks the sentences of a grounded answer that cite nothing (service/rag/attribution.py)."""
        if prepared.grounded is None or not self.rag.attribute_citations or prepared.body.get("tools"):
            return None
        return Attributor([c.text for c in prepared.grounded.citations], abstentions=ABSTENTIONS)

    async def answer(
        self, prepared: PreparedRequest, *, stream: bool, kind: Kind = "chat"
    ) -> dict[str, Any] | AsyncIterator[bytes]:
        if kind == "chat" and prepared.grounded is not None and prepared.grounded.irrelevant is not None:
            # The relevance gate: no passage can answer; the model is not asked (service/chat/abstain.py).
            self.metrics.finish_reasons.labels(prepared.public_model, "stop").inc()
            return abstain.stream(prepared) if stream else abstain.whole(prepared)
        if stream:
            upstream = await self.model.stream(prepared.body, path=PATHS[kind], label=prepared.public_model)
            return self._relay_stream(upstream, prepared, kind=kind)
        return await self._whole(prepared, kind=kind)

    async def _whole(self, prepared: PreparedRequest, *, kind: Kind) -> dict[str, Any]:
        model = prepared.public_model
        t0 = time.perf_counter()
        self.metrics.requests_in_flight.labels(kind).inc()
        self.metrics.requests_awaiting_first_token.labels(kind).inc()
        try:
            answer = await self.model.complete(prepared.body, path=PATHS[kind], label=model)
        finally:
            self.metrics.requests_in_flight.labels(kind).dec()
            self.metrics.requests_awaiting_first_token.labels(kind).dec()
        data = answer.data
        if kind == "chat":
            data["model"] = model
        text = ""
        raw_text = ""  # before the output guard: a redacted invented number is still an invented number
        attributor = self._attributor(prepared)
        for choice in data.get("choices", []):
            holder, key = _text_slot(choice)
            raw_text += str(holder.get(key) or "")
            await anyio.to_thread.run_sync(self._guard_output, choice, prepared)  # CPU-bound
            if attributor is not None and choice.get("finish_reason") != "content_filter":
                _attribute_whole(choice, attributor)
            text += str((choice.get("message") or {}).get("content") or choice.get("text") or "")
            self.metrics.finish_reasons.labels(model, str(choice.get("finish_reason"))).inc()
        self.metrics.ttft.labels(model).observe(time.perf_counter() - t0)
        if prepared.grounded is not None:
            if (report := self._check_support(prepared, raw_text, stream=False, shown=text)) is not None:
                data["grounding"] = report
                if report["action"] == "abstained":
                    text = _abstain(data, prepared)
            data["citations"] = citations_payload(prepared.grounded.citations, text)
            self._observe_citations(prepared, text)
        data.update(prepared.final_fields)
        return data

    def _check_support(
        self, prepared: PreparedRequest, answer: str, *, stream: bool, shown: str | None = None
    ) -> dict[str, Any] | None:
        """`grounding` report of an answer stating specifics no passage holds (None when all are held).

        `answer` is the model's text before the output guard, `shown` what the client got: the report
        lists only specifics the client saw (a redacted one is counted, never repeated).
        """
        mode = self.rag.unsupported
        if mode == "off" or prepared.grounded is None or prepared.body.get("tools"):
            return None
        grounded = prepared.grounded
        action = "abstained" if mode == "abstain" and not stream else "flagged"
        if answer.strip() and only_citations(answer):  # "[1] [2] [3]": small models, Chinese questions
            self.metrics.unsupported_answers.labels(prepared.collection or "", action).inc()
            return {"unsupported": [], "action": action, "reason": "the answer holds only citation markers"}
        missing = unsupported(answer, [c.text for c in grounded.citations], grounded.question)
        if not missing:
            return None
        self.metrics.unsupported_answers.labels(prepared.collection or "", action).inc()
        visible = [m for m in missing if shown is None or m in shown]
        report: dict[str, Any] = {
            "unsupported": visible[:20], "action": action,
            "reason": "numbers or code that no passage holds",
        }  # fmt: skip
        if len(visible) < len(missing):
            report["redacted"] = len(missing) - len(visible)
        return report

    async def _relay_stream(
        self, upstream: ChatStream, prepared: PreparedRequest, *, kind: Kind
    ) -> AsyncIterator[bytes]:
        """Relay the engine's SSE events, holding one back so citations ride on the final chunk."""
        model = prepared.public_model
        t0 = time.perf_counter()
        first_token_at: float | None = None
        last_token_at: float | None = None
        answer_parts: list[str] = []
        raw_parts: list[str] = []  # the model's text before the output guard (support check)
        held: dict[str, Any] | None = None
        guards: dict[int, StreamGuard] = {}  # output guard per choice index
        attributor = self._attributor(prepared)
        marks: dict[int, StreamAttributor] = {}  # citation markers per choice index
        self.metrics.requests_in_flight.labels(kind).inc()
        self.metrics.requests_awaiting_first_token.labels(kind).inc()  # until the first token
        try:
            async for event in upstream.events():
                if "error" in event and "choices" not in event:
                    if held is not None:
                        yield frame(held)
                        held = None
                    yield frame(event)
                    break
                if "model" in event:
                    event["model"] = model
                choices = event.get("choices") or []
                cut: dict[str, Any] | None = None
                for choice in choices:
                    piece = _delta_text(choice, kind)
                    if piece or (choice.get("delta") or {}).get("tool_calls"):
                        now = time.perf_counter()
                        if first_token_at is None:
                            first_token_at = now
                            self.metrics.requests_awaiting_first_token.labels(kind).dec()
                        last_token_at = now
                    index = int(choice.get("index") or 0)
                    guard = guards.get(index) or self.guard.stream_guard(
                        collection=prepared.guard_scope, protected=system_texts(prepared)
                    )
                    guards[index] = guard
                    if piece or choice.get("finish_reason"):
                        raw_parts.append(piece)
                        piece = guard.feed(piece, final=bool(choice.get("finish_reason")))
                        if attributor is not None and not guard.blocked:
                            mark = marks.setdefault(index, StreamAttributor(attributor))
                            piece = mark.feed(piece)
                            if choice.get("finish_reason"):
                                piece += mark.finish()
                        _set_delta_text(choice, kind, piece)
                        answer_parts.append(piece)
                    if guard.blocked:
                        cut = _content_filter_chunk(event, choice, kind)
                        break
                    if choice.get("finish_reason"):
                        self.metrics.finish_reasons.labels(model, str(choice["finish_reason"])).inc()
                if cut is not None:  # output guard: end the answer here, with finish_reason content_filter
                    self.metrics.finish_reasons.labels(model, "content_filter").inc()
                    if held is not None:
                        yield frame(held)
                    held = cut
                    break
                if event.get("usage"):
                    if not choices and not prepared.client_wants_usage:
                        continue  # we asked for usage for our metrics; the client did not
                    if choices and not prepared.client_wants_usage:
                        event.pop("usage", None)
                if held is not None:
                    yield frame(held)
                held = event
            if held is not None:
                if prepared.grounded is not None:
                    answer = "".join(answer_parts)
                    raw = "".join(raw_parts)
                    if (report := self._check_support(prepared, raw, stream=True, shown=answer)) is not None:
                        held["grounding"] = report
                    held["citations"] = citations_payload(prepared.grounded.citations, answer)
                held.update(prepared.final_fields)
                yield frame(held)
            yield DONE
        except Exception as exc:  # the stream has started: errors travel inside it
            logger.exception("stream relay failed")
            yield error_frames(exc)
        finally:
            self.metrics.requests_in_flight.labels(kind).dec()
            if first_token_at is None:
                self.metrics.requests_awaiting_first_token.labels(kind).dec()
            await upstream.aclose()  # counts the usage
            if first_token_at is not None:
                self.metrics.ttft.labels(model).observe(first_token_at - t0)
                n_out = int((upstream.usage or {}).get("completion_tokens") or 0)
                if last_token_at is not None and n_out > 1:
                    self.metrics.itl.labels(model).observe((last_token_at - first_token_at) / (n_out - 1))
            if prepared.grounded is not None:
                self._observe_citations(prepared, "".join(answer_parts))

    def _guard_output(self, choice: dict[str, Any], prepared: PreparedRequest) -> None:
        """Output guard on a whole answer: redact in place, or empty it with finish_reason content_filter."""
        holder, key = _text_slot(choice)
        content = holder.get(key)
        if not isinstance(content, str) or not content:
            return
        verdict = self.guard.check_output(
            content, collection=prepared.guard_scope, protected=system_texts(prepared)
        )
        if verdict.blocked:
            holder[key] = ""
            choice["finish_reason"] = "content_filter"
        elif verdict.text != content:
            holder[key] = verdict.text

    def _observe_citations(self, prepared: PreparedRequest, answer: str) -> None:
        assert prepared.grounded is not None and prepared.collection is not None
        n = len(cited_indices(answer, len(prepared.grounded.citations)))
        self.metrics.observe_rag_answer(prepared.collection, answer, cited=n)


def _text_slot(choice: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Where a whole choice keeps its text: `text` (completions) or `message.content` (chat)."""
    return (choice, "text") if "text" in choice else (choice.get("message") or {}, "content")


def _abstain(data: dict[str, Any], prepared: PreparedRequest) -> str:
    """Replace every choice's text with the abstention sentence of the answer's language."""
    assert prepared.grounded is not None
    sentence = abstain.abstention_sentence(prepared.grounded.language)
    for choice in data.get("choices", []):
        holder, key = _text_slot(choice)
        if isinstance(holder.get(key), str):
            holder[key] = sentence
    return sentence


def _attribute_whole(choice: dict[str, Any], attributor: Attributor) -> None:
    holder, key = _text_slot(choice)
    content = holder.get(key)
    if isinstance(content, str) and content:
        holder[key] = attributor.attribute(content)


def _delta_text(choice: dict[str, Any], kind: Kind) -> str:
    if kind == "completion":
        return str(choice.get("text") or "")
    return str((choice.get("delta") or {}).get("content") or "")


def _set_delta_text(choice: dict[str, Any], kind: Kind, text: str) -> None:
    if kind == "completion":
        choice["text"] = text
    elif isinstance(choice.get("delta"), dict) and ("content" in choice["delta"] or text):
        choice["delta"]["content"] = text


def _content_filter_chunk(event: dict[str, Any], choice: dict[str, Any], kind: Kind) -> dict[str, Any]:
    """The final chunk of a stream cut by the output guard (same id and model as the others)."""
    body: dict[str, Any] = {"index": choice.get("index", 0), "logprobs": None}
    body["finish_reason"] = "content_filter"
    if kind == "completion":
        body["text"] = ""
    else:
        body["delta"] = {}
    return {k: v for k, v in event.items() if k not in ("choices", "usage")} | {"choices": [body]}


def system_texts(prepared: PreparedRequest) -> list[str]:
    """Our system prompt (with its canary) sent upstream, which the output guard keeps from leaking.

    Only grounded requests: there the system prompt is the gateway's; a client's own system prompt
    in a plain request is the client's to reveal.
    """
    if prepared.grounded is None:
        return []
    return [
        m["content"]
        for m in prepared.body.get("messages") or []
        if m.get("role") in ("system", "developer") and isinstance(m.get("content"), str)
    ]
