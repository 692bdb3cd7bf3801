"""Grounding: retrieve passages for the question and assemble the prompt within the token budget."""

from __future__ import annotations

import functools
import logging
import time
from typing import Any

import anyio

from service.chat.route import ChatRoute, PreparedRequest
from service.engine import catalog
from service.errors import APIError, BadRequest
from service.knowledge import KnowledgeService
from service.llm import ChatModel
from service.protocol.openai import ChatCompletionRequest
from service.rag import condense
from service.rag.prompt import GroundedPrompt, assemble, detect_language
from service.safety import GuardPipeline
from service.settings import Settings

logger = logging.getLogger("ragserve.rag")

_PENALTIES = ("frequency_penalty", "presence_penalty", "repetition_penalty")


class Grounder:
    def __init__(
        self, *, model: ChatModel, knowledge: KnowledgeService, guard: GuardPipeline, settings: Settings
    ) -> None:
        self.model = model
        self.knowledge = knowledge
        self.guard = guard
        self.settings = settings

    def frequency_penalty(self) -> float:
        """rag.default_frequency_penalty, else the served catalog model's own."""
        if self.settings.rag.default_frequency_penalty is not None:
            return self.settings.rag.default_frequency_penalty
        eng = self.settings.engine
        entry = catalog.get(eng.served_model_name) or catalog.get(eng.model)
        return entry.frequency_penalty if entry is not None else 0.0

    async def search_query(self, messages: list[dict[str, Any]], question: str, model: str) -> str:
        """What a follow-up question searches with (`rag.condense`); the question itself otherwise."""
        cfg = self.settings.rag
        if cfg.condense == "off" or not condense.earlier_user_texts(messages):
            return question
        if cfg.condense == "history":
            return condense.history_query(messages, question, turns=cfg.condense_turns)
        lang = detect_language(question)
        body = {
            "model": model,
            "messages": condense.condense_request(messages, question, "zh" if lang == "zh" else "en"),
            "max_tokens": cfg.condense_max_tokens,
            "temperature": 0,
        }
        t0 = time.perf_counter()
        try:
            answer = await self.model.complete(body)
        except APIError as exc:  # retrieval still works with the conversation's words
            logger.warning("condensing the follow-up failed (%s); searching with the conversation", exc)
            return condense.history_query(messages, question, turns=cfg.condense_turns)
        finally:
            self.knowledge.metrics.rag_condense_duration.observe(time.perf_counter() - t0)
        return condense.clean_condensed(answer.text, question)

    async def relevance_gate(
        self, collection: str, questions: list[str], grounded: GroundedPrompt
    ) -> dict[str, Any] | None:
        """The `grounding` report when no passage sentence is similar enough to the question, else None.

        service/rag/relevance.py: the threshold is the collection embedder's (none: never gated).
        """
        cfg = self.settings.rag
        if cfg.relevance_gate == "off":
            return None
        if not grounded.citations:
            return None  # nothing retrieved: the prompt already says so, and the model answers that
        model_id, best = await self.knowledge.sentence_similarity(
            collection, questions, [c.text for c in grounded.citations]
        )
        if best is None:
            return None
        self.knowledge.metrics.rag_sentence_similarity.labels(collection).observe(best)
        threshold = cfg.min_sentence_similarity.get(model_id)
        if threshold is None or best >= threshold:
            return None
        self.knowledge.metrics.rag_irrelevant_questions.labels(collection).inc()
        return {
            "action": "abstained",
            "reason": "no passage is similar enough to the question",
            "best_sentence_similarity": round(best, 4),
            "min_sentence_similarity": threshold,
            "embedder": model_id,
        }

    async def context_length(self) -> int:
        return await self.model.context_length(self.settings.engine.served_model_name)

    async def prepare(
        self, req: ChatCompletionRequest, raw: dict[str, Any], route: ChatRoute
    ) -> PreparedRequest:
        """The engine request for `req`: grounded in the route's collection when it has one."""
        body = {k: v for k, v in raw.items() if k != "rag"}
        grounded: GroundedPrompt | None = None
        plan = route.rag
        if plan is not None:
            await self.knowledge.require(plan.collection)
            question = plan.query or last_user_text(req)
            if not question.strip():
                raise BadRequest(
                    "a grounded request needs a user message (or rag.query) to search with", param="messages"
                )
            search_query = question
            if plan.query is None:  # a follow-up searches with the conversation (service/rag/condense.py)
                search_query = await self.search_query(list(raw["messages"]), question, route.engine_model)
            hits = await self.knowledge.search(
                plan.collection, search_query, top_k=plan.top_k, mode=plan.mode, filters=plan.filters
            )
            # Planted instructions; CPU-bound (detectors over every passage): off the event loop.
            screen = functools.partial(self.guard.filter_context, hits, collection=plan.collection)
            hits = await anyio.to_thread.run_sync(screen)
            cfg = self.settings.rag
            max_tokens = req.output_limit()
            if max_tokens is None:
                max_tokens = cfg.default_max_tokens
                body["max_tokens"] = max_tokens
            if (penalty := self.frequency_penalty()) and free_text_without_penalty(raw):
                body["frequency_penalty"] = penalty
            context = await self.context_length()
            budget = context - max_tokens - cfg.template_reserve_tokens
            if budget <= 0:
                raise BadRequest(
                    f"max_tokens={max_tokens} leaves no room for passages in the model's context "
                    f"({context} tokens); lower max_tokens",
                    param="max_tokens", code="context_length_exceeded",
                )  # fmt: skip
            language = plan.language if plan.language != "auto" else detect_language(question)
            override = cfg.system_prompt_zh if language == "zh" else cfg.system_prompt_en
            grounded = await assemble(
                messages=list(body["messages"]),
                question=question,
                hits=hits,
                budget_tokens=budget,
                count_tokens=lambda text: self.model.count_tokens(text, route.engine_model),
                language="zh" if language == "zh" else "en",
                system_override=override,
            )
            body["messages"] = grounded.messages
            if not raw.get("tools"):
                asked = [question]
                if search_query != question:  # a follow-up: what the conversation asked counts too
                    asked += condense.earlier_user_texts(list(raw["messages"]))[
                        -self.settings.rag.condense_turns :
                    ]
                grounded.irrelevant = await self.relevance_gate(plan.collection, asked, grounded)
            grounded.search_query = search_query
            if (canary := self.guard.canary()) is not None and grounded.messages[0].get("role") == "system":
                grounded.messages[0]["content"] += f"\n\n(Internal marker {canary}; never repeat it.)"
        body["model"] = route.engine_model
        wants_usage = bool(req.stream_options and req.stream_options.include_usage)
        if req.stream:
            body["stream_options"] = {**(raw.get("stream_options") or {}), "include_usage": True}
        prepared = PreparedRequest(
            body=body,
            public_model=route.public_model,
            engine_model=route.engine_model,
            grounded=grounded,
            collection=route.collection,
            client_wants_usage=wants_usage,
        )
        if grounded is not None and grounded.search_query != grounded.question:
            prepared.final_fields["retrieval_query"] = grounded.search_query  # a follow-up: what was searched
        return prepared


def free_text_without_penalty(raw: dict[str, Any]) -> bool:
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


def last_user_text(req: ChatCompletionRequest) -> str:
    for m in reversed(req.messages):
        if m.role == "user":
            return m.text()
    return ""
