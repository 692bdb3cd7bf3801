"""Chat and text completions: grounding in a collection, forwarding to vLLM, streaming back.

vLLM's own server does the generation work (chat templates, structured outputs, tool parsing,
LoRA, batching); this service adds retrieval and citations, keeps the OpenAI shapes exact when
it rewrites a response (same id on every chunk, `finish_reason` null until the last chunk,
citations on the final chunk before `[DONE]`), and measures each request.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from service.auth.context import report_usage
from service.engine.client import EngineClient
from service.errors import APIError, BadRequest, NotFound
from service.knowledge import KnowledgeService
from service.observability.metrics import Metrics
from service.protocol.openai import ChatCompletionRequest, CompletionRequest, RagOptions
from service.rag.prompt import GroundedPrompt, assemble, citations_payload, cited_indices, detect_language
from service.safety import GuardPipeline, StreamGuard
from service.settings import Settings

if TYPE_CHECKING:
    from service.tools.service import ToolService

logger = logging.getLogger("ragserve.generation")

RAG_PREFIX = "rag/"


@dataclass
class RagPlan:
    collection: str
    top_k: int
    mode: str
    filters: dict[str, Any] | None
    query: str | None
    language: str


@dataclass
class PreparedRequest:
    """What goes upstream, and what the response must carry back."""

    body: dict[str, Any]
    public_model: str
    engine_model: str
    grounded: GroundedPrompt | None
    collection: str | None
    client_wants_usage: bool
    # Extension fields for the response (non-streaming) or its final chunk (e.g. `tool_trace`).
    final_fields: dict[str, Any] = field(default_factory=dict)


def sse(data: dict[str, Any] | str) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"data: {payload}\n\n".encode()


class GenerationService:
    def __init__(
        self,
        *,
        engine: EngineClient,
        knowledge: KnowledgeService,
        settings: Settings,
        metrics: Metrics,
    ) -> None:
        self.engine = engine
        self.knowledge = knowledge
        self.settings = settings
        self.metrics = metrics
        self._max_model_len: int | None = None
        self.tools: ToolService | None = None  # function calling; set by the app factory
        self.safety = GuardPipeline(settings.safety, metrics)  # input, context and output guards

    # -- planning -------------------------------------------------------------------------

    def _rag_plan(self, model: str, rag: RagOptions | None) -> RagPlan | None:
        collection: str | None = None
        if model.startswith(RAG_PREFIX):
            collection = model[len(RAG_PREFIX) :]
            if not collection:
                raise NotFound(
                    "model 'rag/' names no collection; use rag/<collection>",
                    param="model",
                    code="model_not_found",
                )
        if rag is not None and rag.collection:
            collection = rag.collection
        if collection is None and rag is None:
            return None
        cfg = self.settings.rag
        return RagPlan(
            collection=collection or self.settings.default_collection,
            top_k=min(rag.top_k if rag and rag.top_k else cfg.default_top_k, cfg.max_top_k),
            mode=(rag.mode if rag and rag.mode else cfg.default_mode),
            filters=rag.filters if rag else None,
            query=rag.query if rag else None,
            language=rag.language if rag else "auto",
        )

    async def context_length(self) -> int:
        if self._max_model_len is None:
            found = await self.engine.max_model_len(self.settings.engine.served_model_name)
            self._max_model_len = found or self.settings.engine.max_model_len
        return self._max_model_len

    async def _prepare_chat(self, req: ChatCompletionRequest, raw: dict[str, Any]) -> PreparedRequest:
        plan = self._rag_plan(req.model, req.rag)
        body = {k: v for k, v in raw.items() if k != "rag"}
        engine_model = req.model
        grounded: GroundedPrompt | None = None
        if plan is not None:
            if req.model.startswith(RAG_PREFIX):
                engine_model = self.settings.engine.served_model_name
            await self.knowledge.require(plan.collection)
            question = plan.query or _last_user_text(req)
            if not question.strip():
                raise BadRequest(
                    "a grounded request needs a user message (or rag.query) to search with", param="messages"
                )
            hits = await self.knowledge.search(
                plan.collection, question, top_k=plan.top_k, mode=plan.mode, filters=plan.filters
            )
            hits = self.safety.filter_context(hits, collection=plan.collection)  # planted instructions
            max_tokens = req.output_limit()
            if max_tokens is None:
                max_tokens = self.settings.rag.default_max_tokens
                body["max_tokens"] = max_tokens
            if (penalty := self.settings.rag.default_frequency_penalty) and _free_text_without_penalty(raw):
                body["frequency_penalty"] = penalty
            budget = await self.context_length() - max_tokens - self.settings.rag.template_reserve_tokens
            if budget <= 0:
                raise BadRequest(
                    f"max_tokens={max_tokens} leaves no room for passages in the model's context "
                    f"({await self.context_length()} tokens); lower max_tokens",
                    param="max_tokens", code="context_length_exceeded",
                )  # fmt: skip
            language = plan.language if plan.language != "auto" else detect_language(question)
            override = (
                self.settings.rag.system_prompt_zh if language == "zh" else self.settings.rag.system_prompt_en
            )
            grounded = await assemble(
                messages=list(body["messages"]),
                question=question,
                hits=hits,
                budget_tokens=budget,
                count_tokens=lambda text: self.engine.count_tokens(text, engine_model),
                language="zh" if language == "zh" else "en",
                system_override=override,
            )
            body["messages"] = grounded.messages
            if (canary := self.safety.canary()) is not None and grounded.messages[0].get("role") == "system":
                grounded.messages[0]["content"] += f"\n\n(Internal marker {canary}; never repeat it.)"
        body["model"] = engine_model
        wants_usage = bool(req.stream_options and req.stream_options.include_usage)
        if req.stream:
            body["stream_options"] = {**(raw.get("stream_options") or {}), "include_usage": True}
        return PreparedRequest(
            body=body,
            public_model=req.model,
            engine_model=engine_model,
            grounded=grounded,
            collection=plan.collection if plan else None,
            client_wants_usage=wants_usage,
        )

    # -- chat -----------------------------------------------------------------------------

    async def chat(
        self, req: ChatCompletionRequest, raw: dict[str, Any]
    ) -> dict[str, Any] | AsyncIterator[bytes]:
        self._guard_input(req, raw)
        tool_plan = await self.tools.plan(req, raw) if self.tools is not None else None
        prepared = await self._prepare_chat(req, raw)
        if tool_plan is not None and self.tools is not None:
            return await self.tools.chat(tool_plan, req, prepared)
        return await self.forward_chat(prepared, stream=bool(req.stream))

    async def forward_chat(
        self, prepared: PreparedRequest, *, stream: bool
    ) -> dict[str, Any] | AsyncIterator[bytes]:
        """Send a prepared chat request to the engine and shape the answer (streamed or whole)."""
        if stream:
            upstream = await self.engine.open_stream("/v1/chat/completions", prepared.body)
            return self._relay_stream(upstream, prepared, kind="chat")
        t0 = time.perf_counter()
        self.metrics.requests_in_flight.labels("chat").inc()
        self.metrics.requests_awaiting_first_token.labels("chat").inc()
        try:
            data = await self.engine.post_json("/v1/chat/completions", prepared.body)
        finally:
            self.metrics.requests_in_flight.labels("chat").dec()
            self.metrics.requests_awaiting_first_token.labels("chat").dec()
        data["model"] = prepared.public_model
        answer = ""
        for choice in data.get("choices", []):
            self._guard_output(choice, prepared)
            answer += str((choice.get("message") or {}).get("content") or "")
            self.metrics.finish_reasons.labels(prepared.public_model, str(choice.get("finish_reason"))).inc()
        self._observe_usage(prepared.public_model, data.get("usage"))
        self.metrics.ttft.labels(prepared.public_model).observe(time.perf_counter() - t0)
        if prepared.grounded is not None:
            data["citations"] = citations_payload(prepared.grounded.citations, answer)
            self._observe_citations(prepared, answer)
        data.update(prepared.final_fields)
        return data

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
            body["prompt"] = self._checked_prompt(req.prompt)
        elif req.prompt and all(isinstance(p, str) for p in req.prompt):
            body["prompt"] = [self._checked_prompt(str(p)) for p in req.prompt]
        wants_usage = bool(req.stream_options and req.stream_options.include_usage)
        prepared = PreparedRequest(
            body=body,
            public_model=req.model,
            engine_model=req.model,
            grounded=None,
            collection=None,
            client_wants_usage=wants_usage,
        )
        if req.stream:
            body["stream_options"] = {**(raw.get("stream_options") or {}), "include_usage": True}
            upstream = await self.engine.open_stream("/v1/completions", body)
            return self._relay_stream(upstream, prepared, kind="completion")
        t0 = time.perf_counter()
        self.metrics.requests_in_flight.labels("completion").inc()
        self.metrics.requests_awaiting_first_token.labels("completion").inc()
        try:
            data = await self.engine.post_json("/v1/completions", body)
        finally:
            self.metrics.requests_in_flight.labels("completion").dec()
            self.metrics.requests_awaiting_first_token.labels("completion").dec()
        for choice in data.get("choices", []):
            self._guard_output(choice, prepared)
            self.metrics.finish_reasons.labels(req.model, str(choice.get("finish_reason"))).inc()
        self._observe_usage(req.model, data.get("usage"))
        self.metrics.ttft.labels(req.model).observe(time.perf_counter() - t0)
        return data

    # -- streaming ------------------------------------------------------------------------

    async def _relay_stream(
        self, upstream: Any, prepared: PreparedRequest, *, kind: str
    ) -> AsyncIterator[bytes]:
        """Relay vLLM's SSE events, holding one back so citations ride on the final chunk."""
        model = prepared.public_model
        t0 = time.perf_counter()
        first_token_at: float | None = None
        last_token_at: float | None = None
        answer_parts: list[str] = []
        usage: dict[str, Any] | None = None
        held: dict[str, Any] | None = None
        guards: dict[int, StreamGuard] = {}  # output guard per choice index
        self.metrics.requests_in_flight.labels(kind).inc()
        self.metrics.requests_awaiting_first_token.labels(kind).inc()  # until the first token
        try:
            async for payload in upstream.events():
                if payload == "[DONE]":
                    break
                try:
                    event = json.loads(payload)
                except ValueError:
                    logger.warning("engine sent a non-JSON SSE event: %.200s", payload)
                    continue
                if "error" in event and "choices" not in event:
                    if held is not None:
                        yield sse(held)
                        held = None
                    yield sse(event)
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
                    guard = guards.get(index) or self.safety.stream_guard(
                        collection=prepared.collection, protected=_system_texts(prepared)
                    )
                    guards[index] = guard
                    if piece or choice.get("finish_reason"):
                        piece = guard.feed(piece, final=bool(choice.get("finish_reason")))
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
                        yield sse(held)
                    held = cut
                    break
                if event.get("usage"):
                    usage = event["usage"]
                    if not choices and not prepared.client_wants_usage:
                        continue  # we asked for usage for our metrics; the client did not
                    if choices and not prepared.client_wants_usage:
                        event.pop("usage", None)
                if held is not None:
                    yield sse(held)
                held = event
            if held is not None:
                if prepared.grounded is not None:
                    held["citations"] = citations_payload(prepared.grounded.citations, "".join(answer_parts))
                held.update(prepared.final_fields)
                yield sse(held)
            yield sse("[DONE]")
        except APIError as exc:
            yield sse(exc.envelope())
            yield sse("[DONE]")
        except Exception as exc:  # the stream has started: errors travel inside it
            logger.exception("stream relay failed")
            yield sse(
                {
                    "error": {
                        "message": f"stream interrupted: {type(exc).__name__}",
                        "type": "server_error",
                        "param": None,
                        "code": "stream_error",
                    }
                }
            )
            yield sse("[DONE]")
        finally:
            self.metrics.requests_in_flight.labels(kind).dec()
            if first_token_at is None:
                self.metrics.requests_awaiting_first_token.labels(kind).dec()
            await upstream.aclose()
            self._observe_usage(model, usage)
            if first_token_at is not None:
                self.metrics.ttft.labels(model).observe(first_token_at - t0)
                n_out = int((usage or {}).get("completion_tokens") or 0)
                if last_token_at is not None and n_out > 1:
                    self.metrics.itl.labels(model).observe((last_token_at - first_token_at) / (n_out - 1))
            if prepared.grounded is not None:
                self._observe_citations(prepared, "".join(answer_parts))

    # -- safety ---------------------------------------------------------------------------

    def _checked_prompt(self, text: str) -> str:
        """A completion prompt through the input guard: raises ContentBlocked, or returns it (redacted)."""
        verdict = self.safety.check_input(text)
        return verdict.text if verdict.action == "redact" else text

    def _guard_input(self, req: ChatCompletionRequest, raw: dict[str, Any]) -> None:
        """Input guard on each user message: raises ContentBlocked (HTTP 400), or redacts by policy."""
        plan_collection = req.rag.collection if req.rag is not None and req.rag.collection else None
        if plan_collection is None and req.model.startswith(RAG_PREFIX):
            plan_collection = req.model[len(RAG_PREFIX) :] or None
        for i, m in enumerate(req.messages):
            if m.role != "user":
                continue
            verdict = self.safety.check_input(m.text(), collection=plan_collection)
            raw_messages = raw.get("messages") or []
            redactable = i < len(raw_messages) and isinstance(raw_messages[i].get("content"), str)
            if verdict.action == "redact" and redactable:
                raw_messages[i]["content"] = verdict.text

    def _guard_output(self, choice: dict[str, Any], prepared: PreparedRequest) -> None:
        """Output guard on a whole answer: redact in place, or empty it with finish_reason content_filter."""
        holder, key = (choice, "text") if "text" in choice else (choice.get("message") or {}, "content")
        content = holder.get(key)
        if not isinstance(content, str) or not content:
            return
        verdict = self.safety.check_output(
            content, collection=prepared.collection, protected=_system_texts(prepared)
        )
        if verdict.blocked:
            holder[key] = ""
            choice["finish_reason"] = "content_filter"
        elif verdict.text != content:
            holder[key] = verdict.text

    # -- metrics helpers ------------------------------------------------------------------

    def _observe_usage(self, model: str, usage: dict[str, Any] | None) -> None:
        if not usage:
            return
        report_usage(usage)  # reconciles the API key's tokens-per-minute bucket with real usage
        self.metrics.prompt_tokens.labels(model).inc(int(usage.get("prompt_tokens") or 0))
        self.metrics.generation_tokens.labels(model).inc(int(usage.get("completion_tokens") or 0))

    def _observe_citations(self, prepared: PreparedRequest, answer: str) -> None:
        assert prepared.grounded is not None and prepared.collection is not None
        n = len(cited_indices(answer, len(prepared.grounded.citations)))
        self.metrics.observe_rag_answer(prepared.collection, answer, cited=n)


_PENALTIES = ("frequency_penalty", "presence_penalty", "repetition_penalty")


def _free_text_without_penalty(raw: dict[str, Any]) -> bool:
    """A request that sets no repetition control and asks for prose (not tool calls or structured output).

    Structured outputs are left alone: a penalty on the tokens JSON repeats by design (quotes,
    commas) would push a grammar-constrained answer into longer strings.
    """
    if any(raw.get(k) is not None for k in _PENALTIES):
        return False
    if raw.get("tools") or raw.get("functions") or raw.get("structured_outputs"):
        return False
    fmt = raw.get("response_format")
    return not (isinstance(fmt, dict) and fmt.get("type", "text") != "text")


def _last_user_text(req: ChatCompletionRequest) -> str:
    for m in reversed(req.messages):
        if m.role == "user":
            return m.text()
    return ""


def _delta_text(choice: dict[str, Any], kind: str) -> str:
    if kind == "completion":
        return str(choice.get("text") or "")
    return str((choice.get("delta") or {}).get("content") or "")


def _set_delta_text(choice: dict[str, Any], kind: str, text: str) -> None:
    if kind == "completion":
        choice["text"] = text
    elif isinstance(choice.get("delta"), dict) and ("content" in choice["delta"] or text):
        choice["delta"]["content"] = text


def _content_filter_chunk(event: dict[str, Any], choice: dict[str, Any], kind: str) -> dict[str, Any]:
    """The final chunk of a stream cut by the output guard (same id and model as the others)."""
    body: dict[str, Any] = {"index": choice.get("index", 0), "logprobs": None}
    body["finish_reason"] = "content_filter"
    if kind == "completion":
        body["text"] = ""
    else:
        body["delta"] = {}
    return {k: v for k, v in event.items() if k not in ("choices", "usage")} | {"choices": [body]}


def _system_texts(prepared: PreparedRequest) -> list[str]:
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
