"""One root-cause analysis: retrieve runbooks, gather evidence, generate under a JSON schema, verify.

The model never writes evidence text. Every item it may cite (retrieved runbook passages, the
caller's log lines, metrics, traces and changes, Prometheus query results) gets an id such as
`runbook:1` or `log:3`; the decoding schema admits only those ids, and the server checks each
reference again and copies the excerpt from its own record of the item. Runbook citations come
from retrieval, never from the model, and only passages that pass the relevance threshold count.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from service.errors import APIError, InvalidModelOutput, max_tokens_too_small
from service.knowledge import KnowledgeService
from service.llm import ChatModel, StructuredAttempt, Usage
from service.llm.model import StructuredSpec
from service.observability.metrics import Metrics
from service.rag.prompt import Citation
from service.rca.evidence import (
    Catalog,
    EvidenceItem,
    alert_summary,
    budget_supplied,
    render_supplied,
)
from service.rca.models import (
    RcaRequest,
    RcaResponse,
    RcaStreamEvent,
    RcaUsage,
    RunbookCitation,
    ToolCallRecord,
)
from service.rca.prompt import Prepared, fit_prompt
from service.rca.queries import PrometheusEvidence
from service.rca.runbooks import RunbookFinder, relevance_score
from service.rca.schema import (
    InvalidAnalysis,
    OutputBounds,
    decoding_constraint,
    output_schema,
    parse_output,
)
from service.rca.verify import assemble_response
from service.safety.pipeline import GuardPipeline
from service.settings import Settings
from service.tools.constrained import max_tokens_of

logger = logging.getLogger("ragserve.rca")

Emit = Callable[[RcaStreamEvent], Awaitable[None]]


class RcaAnalyzer:
    """Analyses of alerts: prepare (runbooks, evidence, prompt), generate, verify."""

    def __init__(
        self,
        *,
        model: ChatModel,
        knowledge: KnowledgeService,
        settings: Settings,
        metrics: Metrics,
        guard: GuardPipeline,
    ) -> None:
        self.model = model
        self.knowledge = knowledge
        self.settings = settings
        self.cfg = settings.rca
        self.metrics = metrics
        self.safety = guard
        self.runbooks = RunbookFinder(knowledge=knowledge, settings=settings, guard=guard)
        self.queries = PrometheusEvidence(knowledge=knowledge, settings=settings, metrics=metrics)
        self._grammar_ok = True  # False once the engine refused a grammar (then: JSON schema)

    async def analyze(self, req: RcaRequest, *, analysis_id: str, emit: Emit | None = None) -> RcaResponse:
        t0 = time.perf_counter()
        prepared = await self.prepare(req, emit=emit)
        data, usage = await self._generate(prepared, emit=emit)
        return assemble_response(
            prepared,
            data,
            usage,
            analysis_id=analysis_id,
            seconds=time.perf_counter() - t0,
            guard=self.safety,
            metrics=self.metrics,
            excerpt_max_chars=self.cfg.excerpt_max_chars,
        )

    # -- before generation ------------------------------------------------------------------

    async def prepare(self, req: RcaRequest, *, emit: Emit | None = None) -> Prepared:
        cfg = self.cfg
        collection = req.collection or self.settings.default_collection
        await self.knowledge.require(collection)
        alert = req.alert
        summary = alert_summary(alert)
        opts = req.options
        mode = opts.mode or cfg.default_mode
        hits, relevant = await self.runbooks.find(
            collection, alert, mode=mode, top_k=opts.top_k, min_score=opts.min_score
        )
        citations: list[RunbookCitation] = []
        catalog = Catalog()
        for n, hit in enumerate(relevant, start=1):
            c = Citation.from_hit(n, hit)
            citations.append(RunbookCitation(ref=f"runbook:{n}", **c.to_dict()))
            catalog.runbooks.append(EvidenceItem(f"runbook:{n}", "runbook", hit.text))
        if not relevant:
            self.metrics.rca_no_runbook.inc()
            best = max((relevance_score(h, mode) for h in hits), default=None)
            detail = f" (best match scored {best:.2f}, below the threshold)" if best is not None else ""
            catalog.notes.append(
                f"no runbook in collection '{collection}' matches alert {alert.alertname}{detail}; "
                "the analysis is not grounded in a runbook"
            )
        if emit is not None:
            await emit(RcaStreamEvent(type="retrieval", runbooks=citations))

        supplied = render_supplied(req)
        tool_calls: list[ToolCallRecord] = []
        if opts.prometheus:
            results, query_notes = await self.queries.run(req, len(req.evidence.metrics), tool_calls, emit)
            catalog.notes.extend(query_notes)
            supplied = results + supplied  # fresh query results first: they are the server's own data
        if not (req.evidence.logs or req.evidence.metrics or req.evidence.traces or req.evidence.changes):
            catalog.notes.append("no logs, metrics, traces or changes were supplied with the alert")
        kept, notes = budget_supplied(supplied, cfg)
        catalog.supplied = kept
        catalog.notes.extend(notes)

        model = opts.model or self.settings.engine.served_model_name
        max_tokens = opts.max_tokens or cfg.max_tokens
        bounds = OutputBounds.from_settings(cfg, opts.max_hypotheses)
        if opts.max_tokens is not None and opts.max_tokens < cfg.max_tokens:
            # The caller's smaller budget: the strings shrink with it, so the analysis still fits.
            bounds = bounds.scaled(opts.max_tokens / cfg.max_tokens)
        prepared = Prepared(
            request=req,
            collection=collection,
            model=model,
            alert=summary,
            citations=citations,
            catalog=catalog,
            tool_calls=tool_calls,
            max_tokens=max_tokens,
            bounds=bounds,
        )
        await fit_prompt(prepared, model=self.model, context_length=await self.context_length(), cfg=self.cfg)
        return prepared

    async def context_length(self) -> int:
        return await self.model.context_length(self.settings.engine.served_model_name)

    # -- generation -------------------------------------------------------------------------

    async def _generate(self, prepared: Prepared, *, emit: Emit | None) -> tuple[dict[str, Any], RcaUsage]:
        refs = [i.ref for i in prepared.catalog.items]
        bounds = prepared.bounds
        usage = Usage()
        body: dict[str, Any] = {
            "model": prepared.model,
            "messages": prepared.messages,
            "max_tokens": prepared.max_tokens,
            "temperature": 0,
        }
        if self.cfg.frequency_penalty:
            body["frequency_penalty"] = self.cfg.frequency_penalty

        sent_grammar = False

        def attempt(last: StructuredAttempt | None) -> dict[str, Any]:
            nonlocal bounds, sent_grammar
            if last is not None:
                bounds = bounds.compact()  # tighter bounds after output that was cut off or invalid
            whitespace = self.cfg.json_whitespace if self._grammar_ok else "any"
            constraint = decoding_constraint(output_schema(refs, bounds), whitespace)
            sent_grammar = "grammar" in constraint
            return {"structured_outputs": constraint}

        def parse(text: str) -> dict[str, Any]:
            return parse_output(text, refs, bounds)  # against the bounds of the attempt just made

        async def delta(piece: str) -> None:
            assert emit is not None
            await emit(RcaStreamEvent(type="analysis_delta", delta=piece))

        async def done() -> None:
            assert emit is not None
            await emit(RcaStreamEvent(type="analysis_done"))

        spec = StructuredSpec(
            what="analysis",
            code="invalid_analysis",
            length_hint=" (cut off by max_tokens: raise options.max_tokens)",
            retries=self.cfg.retries,
            invalid=(InvalidAnalysis,),
        )
        streaming = {"on_delta": delta, "after_attempt": done} if emit is not None else {}
        while True:
            try:
                data = await self.model.structured(
                    body,
                    constraint=attempt,
                    parse=parse,
                    spec=spec,
                    usage=usage,
                    **streaming,  # type: ignore[arg-type]
                )
                break
            except InvalidModelOutput as exc:
                if exc.finish_reason == "length" and prepared.request.options.max_tokens is not None:
                    raise max_tokens_too_small(
                        param="options.max_tokens",
                        max_tokens=prepared.max_tokens,
                        need=max_tokens_of(output_schema(refs, prepared.bounds.compact())),
                        what="a valid analysis",
                    ) from exc
                raise
            except APIError as exc:
                if exc.status_code != 400 or not sent_grammar:
                    raise
                # An engine whose backend does not take the grammar: the JSON schema from now on.
                logger.warning("rca: the engine refused the EBNF grammar (%s); using the JSON schema", exc)
                self._grammar_ok = False
                bounds = prepared.bounds
        total = RcaUsage(
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            total_tokens=usage.total_tokens,
        )
        return data, total
