"""`RcaService`: analyses on request and in the background, stored and listed.

`POST /v1/rca` runs one analysis in the request (stored too, source `api`). The Alertmanager
webhook stores each firing alert as a queued analysis, unless one for the same fingerprint is
already queued, running or completed while the alert still fires, and a bounded pool of asyncio
workers works through the queue. A resolved notification marks the stored analyses resolved.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
from pydantic import ValidationError

from service.auth.context import RequestAccess, bind, current_principal, unbind
from service.auth.gate import AccessControl
from service.auth.principal import ANONYMOUS, Principal
from service.errors import APIError, BadRequest
from service.knowledge import KnowledgeService
from service.llm import ChatModel
from service.observability.metrics import Metrics
from service.rca.analyzer import RcaAnalyzer
from service.rca.evidence import alert_summary, with_fingerprint
from service.rca.models import (
    AlertmanagerWebhook,
    AnalysisSource,
    RcaRequest,
    RcaResponse,
    RcaStreamError,
    RcaStreamEvent,
    WebhookAlertResult,
    WebhookResponse,
)
from service.rca.store import AnalysisStore
from service.safety import GuardPipeline
from service.settings import Settings
from service.sse import DONE, frame

logger = logging.getLogger("ragserve.rca")


class RcaService:
    def __init__(
        self,
        *,
        analyzer: RcaAnalyzer,
        store: AnalysisStore,
        settings: Settings,
        metrics: Metrics,
        access: AccessControl | None = None,
    ) -> None:
        self.access = access
        self.analyzer = analyzer
        self.store = store
        self.settings = settings
        self.cfg = settings.rca
        self.metrics = metrics
        self._queue: asyncio.Queue[str] = asyncio.Queue(maxsize=self.cfg.queue_max)
        self._workers: list[asyncio.Task[None]] = []
        self.busy = 0  # analyses being worked on by the background workers

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        for aid in self.store.requeue_interrupted():
            if not self._offer(aid):
                self.store.fail(aid, "the analysis queue was full at start-up (rca.queue_max)")
        self._workers = [
            asyncio.create_task(self._work(), name=f"rca-worker-{i}") for i in range(self.cfg.workers)
        ]

    async def stop(self) -> None:
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers = []
        self.store.close()

    async def idle(self, timeout_s: float = 30.0) -> bool:
        """Wait until the queue is empty and no worker is busy (tests, draining)."""
        deadline = time.monotonic() + timeout_s
        while self._queue.qsize() or self.busy:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    # -- on request -------------------------------------------------------------------------

    def _normalise(self, req: RcaRequest) -> RcaRequest:
        return req.model_copy(update={"alert": with_fingerprint(req.alert)})

    async def analyze(self, req: RcaRequest) -> dict[str, Any]:
        """`POST /v1/rca` without streaming: the verified analysis, stored as source `api`."""
        req = self._normalise(req)
        aid = self._create_running(req)
        result = await self._run(aid, req, "api")
        return result.model_dump(mode="json")

    def stream(self, req: RcaRequest) -> AsyncIterator[bytes]:
        """`POST /v1/rca` with `stream: true`: progress events, the result, then `[DONE]`."""
        req = self._normalise(req)
        aid = self._create_running(req)
        return self._events(aid, req)

    async def _events(self, aid: str, req: RcaRequest) -> AsyncIterator[bytes]:
        events: asyncio.Queue[RcaStreamEvent | None] = asyncio.Queue()

        async def emit(event: RcaStreamEvent) -> None:
            await events.put(event)

        async def work() -> None:
            try:
                result = await self._run(aid, req, "api", emit=emit)
                await events.put(RcaStreamEvent(type="result", result=result))
            except APIError as exc:
                err = RcaStreamError(message=exc.message, type=exc.error_type, param=exc.param, code=exc.code)
                await events.put(RcaStreamEvent(type="error", error=err))
            except Exception as exc:
                logger.exception("rca: streamed analysis %s failed", aid)
                err = RcaStreamError(message=f"internal error ({type(exc).__name__})", type="server_error")
                await events.put(RcaStreamEvent(type="error", error=err))
            finally:
                await events.put(None)

        task = asyncio.create_task(work())
        try:
            while (event := await events.get()) is not None:
                yield frame(event.model_dump(mode="json", exclude_none=True))
            yield DONE
        finally:
            if not task.done():  # the client went away: stop the engine request too
                task.cancel()
                # Wait for it in a shielded scope: this (cancelled) scope re-delivers its cancellation
                # on every await, and awaiting the task passes each one on to it, which aborted its
                # clean-up, so the engine stream stayed open and generated to max_tokens for nobody.
                with anyio.CancelScope(shield=True), contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
                self.store.fail(aid, "the client closed the stream before the analysis finished")

    def _create_running(self, req: RcaRequest) -> str:
        collection = req.collection or self.settings.default_collection
        principal = current_principal() or ANONYMOUS
        created = self.store.create(
            alert=alert_summary(req.alert),
            collection=collection,
            source="api",
            request=req.model_dump(mode="json", exclude={"stream"}),
            status="running",
            owner=principal.name,
        )
        return created.analysis_id

    async def _run(self, aid: str, req: RcaRequest, source: AnalysisSource, **kw: Any) -> RcaResponse:
        t0 = time.perf_counter()
        try:
            result = await self.analyzer.analyze(req, analysis_id=aid, **kw)
        except BaseException as exc:
            message = exc.message if isinstance(exc, APIError) else f"{type(exc).__name__}: {exc}"
            if isinstance(exc, asyncio.CancelledError):
                message = "cancelled before the analysis finished"
            self.store.fail(aid, message)
            self.metrics.rca_analyses.labels(source, "failed").inc()
            self.metrics.rca_duration.labels(source).observe(time.perf_counter() - t0)
            raise
        self.store.complete(aid, result)
        self.metrics.rca_analyses.labels(source, "completed").inc()
        self.metrics.rca_duration.labels(source).observe(time.perf_counter() - t0)
        logger.info(
            "rca %s: %s (%s) %d hypotheses, %d runbooks in %.1f s",
            aid, req.alert.alertname, source, len(result.hypotheses), len(result.runbooks),
            time.perf_counter() - t0,
        )  # fmt: skip
        return result

    # -- the webhook ------------------------------------------------------------------------

    async def webhook(self, payload: AlertmanagerWebhook, *, collection: str) -> WebhookResponse:
        """Store and queue the firing alerts, resolve the resolved ones, in the sender's scope.

        The sending key owns what it creates: dedup and resolve see only its analyses in this
        collection, and each new analysis takes its estimated tokens from the key's bucket now
        (429 when empty; Alertmanager retries) and is reconciled with the real usage when it ends.
        """
        limit = self.cfg.max_alerts_per_webhook
        if len(payload.alerts) > limit:
            raise BadRequest(
                f"the notification carries {len(payload.alerts)} alerts, more than {limit} "
                "(rca.max_alerts_per_webhook); lower max_alerts in the Alertmanager receiver",
                param="alerts",
                code="too_many_alerts",
            )
        principal = current_principal() or ANONYMOUS
        owner = principal.name
        results: list[WebhookAlertResult] = []
        for raw_alert in payload.alerts:
            alert = with_fingerprint(raw_alert)
            summary = alert_summary(alert)
            fp = summary.fingerprint
            aid: str | None
            if alert.status == "resolved":
                touched = self.store.resolve(fp, alert.endsAt, collection=collection, owner=owner)
                action = "resolved" if touched else "ignored"
                aid = touched[-1] if touched else None
            else:
                req = RcaRequest(alert=alert, collection=collection)
                charged = 0
                if self.store.find_live(fp, collection, owner) is None and self.access is not None:
                    charged = await self.access.charge_tokens(
                        principal, describe_request(req, self.cfg.max_tokens)
                    )
                created = self.store.create(
                    alert=summary,
                    collection=collection,
                    source="webhook",
                    request=req.model_dump(mode="json", exclude={"stream"}),
                    dedupe=True,
                    owner=owner,
                    owner_json=principal_to_json(principal),
                    charged=charged,
                )
                if not created.created and charged and self.access is not None:
                    await self.access.refund_tokens(principal, charged)  # raced with an equal alert
                aid = created.analysis_id
                action = "queued" if created.created else "duplicate"
                if created.created and not self._offer(aid):
                    self.store.fail(aid, f"the analysis queue is full ({self.cfg.queue_max}, rca.queue_max)")
                    self.metrics.rca_analyses.labels("webhook", "failed").inc()
                    action = "queued"  # stored as failed: the next notification of this alert retries it
            self.metrics.rca_webhook_alerts.labels(action).inc()
            results.append(
                WebhookAlertResult(
                    alertname=summary.alertname,
                    fingerprint=fp,
                    status=alert.status,
                    action=action,
                    analysis_id=aid,
                )
            )
        return WebhookResponse(groupKey=payload.groupKey, alerts=results)

    def _offer(self, aid: str) -> bool:
        try:
            self._queue.put_nowait(aid)
        except asyncio.QueueFull:
            return False
        self.metrics.rca_queue_depth.set(self._queue.qsize())
        return True

    async def _work(self) -> None:
        while True:
            aid = await self._queue.get()
            self.metrics.rca_queue_depth.set(self._queue.qsize())
            self.busy += 1
            try:
                await self._work_one(aid)
            except asyncio.CancelledError:
                raise
            except Exception:  # one broken analysis must not stop the worker
                logger.exception("rca: background analysis %s failed", aid)
            finally:
                self.busy -= 1
                self._queue.task_done()

    async def _work_one(self, aid: str) -> None:
        found = self.store.request_of(aid)
        if found is None or not self.store.mark_running(aid):
            return  # pruned by retention, or already handled
        raw, source = found
        try:
            req = RcaRequest.model_validate(raw)
        except ValidationError as exc:
            self.store.fail(aid, f"stored request is invalid: {exc.errors()[0].get('msg')}")
            return
        # Run as the key that sent the alert: its collections bound the search, its usage is counted.
        owner, charged = self.store.owner_of(aid)
        principal = principal_from_json(owner) if owner is not None else None
        ra = RequestAccess(principal) if principal is not None else None
        token = bind(ra)
        try:
            async with asyncio.timeout(self.cfg.analysis_timeout_s):
                await self._run(aid, req, "webhook" if source == "webhook" else "api")
        except TimeoutError:
            self.store.fail(aid, f"the analysis took longer than {self.cfg.analysis_timeout_s:g} s")
        except APIError:
            pass  # stored as failed by _run, with the error's message
        finally:
            unbind(token)
            if ra is not None and principal is not None and self.access is not None and charged:
                used = ra.tokens_used if ra.usage_reported else charged
                await self.access.refund_tokens(principal, charged - used)


def principal_to_json(p: Principal) -> dict[str, Any]:
    """What a background analysis needs of the key that sent it (never the key itself)."""
    return {
        "name": p.name,
        "role": p.role,
        "collections": sorted(p.collections) if p.collections is not None else None,
        "requests_per_minute": p.requests_per_minute,
        "tokens_per_minute": p.tokens_per_minute,
        "permissions": sorted(p.permissions),
    }


def principal_from_json(d: dict[str, Any]) -> Principal:
    cols = d.get("collections")
    return Principal(
        name=str(d["name"]),
        role=d.get("role", "user"),
        collections=frozenset(cols) if cols is not None else None,
        requests_per_minute=d.get("requests_per_minute"),
        tokens_per_minute=d.get("tokens_per_minute"),
        permissions=frozenset(d.get("permissions") or ()),
    )


def describe_request(req: RcaRequest, default_max_tokens: int | None = None) -> dict[str, Any]:
    """What the token-rate limiter estimates a request's cost from (prompt characters + max_tokens)."""
    text = json.dumps(req.alert.model_dump(mode="json"))[:8000]
    return {"prompt": text, "max_tokens": req.options.max_tokens or default_max_tokens}


def build_rca_service(
    *,
    model: ChatModel,
    guard: GuardPipeline,
    knowledge: KnowledgeService,
    settings: Settings,
    metrics: Metrics,
    access: AccessControl | None = None,
) -> RcaService:
    """The RCA service over the app's model interface, guards, knowledge base and settings."""
    analyzer = RcaAnalyzer(model=model, knowledge=knowledge, settings=settings, metrics=metrics, guard=guard)
    cfg = settings.rca
    store = AnalysisStore(
        settings.data_dir / "rca" / "analyses.db",
        max_rows=cfg.retention_max_rows,
        max_age_s=cfg.retention_max_age_days * 86400,
    )
    return RcaService(analyzer=analyzer, store=store, settings=settings, metrics=metrics, access=access)
