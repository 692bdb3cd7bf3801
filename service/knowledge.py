"""The gateway's view of the knowledge base: async wrappers, metrics and ingestion jobs."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool

from ingest import errors as ingest_errors
from ingest.knowledge_base import KnowledgeBase
from ingest.types import DocumentInfo, IngestSummary, SearchHit
from service.auth.context import can_read
from service.errors import (
    APIError,
    BadRequest,
    Conflict,
    InsufficientStorage,
    NotFound,
    ServiceUnavailable,
)
from service.jobs import Job, JobManager
from service.observability import tracing
from service.observability.index_stats import publish_index_stats, read_index_stats
from service.observability.metrics import Metrics

logger = logging.getLogger("ragserve.knowledge")


# The ingestion library's errors as HTTP errors: (error, HTTP error, param, code).
_INGEST_HTTP: tuple[tuple[type[ingest_errors.IngestError], type[APIError], str | None, str], ...] = (
    (ingest_errors.CollectionNotFound, NotFound, "collection", "collection_not_found"),
    (ingest_errors.DocumentNotFound, NotFound, "document_id", "document_not_found"),
    (ingest_errors.CollectionExists, Conflict, "name", "collection_exists"),
    (ingest_errors.InvalidFilter, BadRequest, "filters", "invalid_filters"),
    (ingest_errors.QueryTimeout, ServiceUnavailable, None, "query_timeout"),
    (ingest_errors.StorageError, InsufficientStorage, None, "storage_error"),
    (ingest_errors.InvalidName, BadRequest, "name", "invalid_name"),
    (ingest_errors.StoreBusy, Conflict, None, "collection_busy"),
    (ingest_errors.EmbeddingMismatch, Conflict, None, "embedding_mismatch"),
)
_RETRY_LATER = (ingest_errors.QueryTimeout, ingest_errors.StoreBusy)


def map_ingest_error(exc: ingest_errors.IngestError) -> APIError:
    """Translate the ingestion library's errors into HTTP errors with the same message."""
    for cls, http_error, param, code in _INGEST_HTTP:
        if isinstance(exc, cls):
            headers = {"Retry-After": "5"} if isinstance(exc, _RETRY_LATER) else None
            return http_error(str(exc), param=param, code=code, headers=headers)
    return BadRequest(str(exc))


def collection_not_found(name: str) -> NotFound:
    return NotFound(
        f"collection '{name}' does not exist; create it with POST /v1/collections or "
        "`ragserve ingest PATH --collection NAME`",
        param="collection",
        code="collection_not_found",
    )


class KnowledgeService:
    """Retrieval and knowledge-base management; blocking library calls run in the thread pool."""

    def __init__(
        self,
        kb: KnowledgeBase,
        metrics: Metrics,
        jobs_dir: Path,
        *,
        staging_root: Path | None = None,
        max_pending_jobs: int = 16,
        max_staged_bytes: int = 1024**3,
        max_job_records: int = 1000,
    ) -> None:
        self.kb = kb
        self.metrics = metrics
        self.jobs = JobManager(
            jobs_dir,
            self._ingest_job,
            on_finished=self._job_finished,
            staging_root=staging_root,
            max_pending=max_pending_jobs,
            max_staged_bytes=max_staged_bytes,
            max_records=max_job_records,
        )

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return await run_in_threadpool(fn, *args, **kwargs)
        except ingest_errors.IngestError as exc:
            raise map_ingest_error(exc) from exc

    async def search(
        self, collection: str, query: str, *, top_k: int, mode: str, filters: dict[str, Any] | None
    ) -> list[SearchHit]:
        self._check_visible(collection)  # tenancy: before the similarity search, never by filtering hits
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        with tracing.span("retrieval", collection=collection, mode=mode, top_k=top_k) as span:
            hits: list[SearchHit] = await self._call(
                self.kb.search, collection, query, top_k=top_k, mode=mode, filters=filters, timings=timings
            )
            tracing.set_attributes(span, hits=len(hits), **{f"seconds.{k}": v for k, v in timings.items()})
        self.metrics.retrieval_request_duration.labels(collection, mode).observe(time.perf_counter() - t0)
        self.metrics.observe_retrieval_stages(timings)
        self.metrics.retrieval_hits.labels(collection).observe(len(hits))
        if not hits:
            self.metrics.retrieval_empty.labels(collection).inc()
        elif mode == "hybrid":
            weight = hits[0].metadata.get("scores", {}).get("dense_weight")
            if isinstance(weight, float):
                self.metrics.retrieval_dense_weight.labels(collection).observe(weight)
        return hits

    async def sentence_similarity(
        self, collection: str, questions: list[str], passages: list[str]
    ) -> tuple[str, float | None]:
        """The collection's embedder, and the question's similarity to the closest passage sentence.

        Embedding work (~2-3 ms a sentence with the default embedder): in the thread pool.
        """
        from service.rag.relevance import best_sentence_similarity

        def measure() -> tuple[str, float | None]:
            emb = self.kb.embedder_for(collection, self.kb.backend.record(collection))
            return emb.model_id, best_sentence_similarity(emb, questions, passages)

        result: tuple[str, float | None] = await self._call(measure)
        return result

    async def refresh_index_metrics(self) -> None:
        """Index size, version and age per collection (for /metrics; reads the store's records only)."""
        stats = await run_in_threadpool(read_index_stats, self.kb)
        publish_index_stats(self.metrics, stats)

    async def exists(self, name: str) -> bool:
        return bool(await self._call(self.kb.exists, name))

    async def require(self, name: str) -> None:
        if not can_read(name) or not await self.exists(name):
            raise collection_not_found(name)

    def _check_visible(self, name: str) -> None:
        """A collection the request's API key may not see fails exactly like a missing one would here."""
        if not can_read(name):
            raise map_ingest_error(ingest_errors.CollectionNotFound(f"collection {name!r} does not exist"))

    async def list_collections(self) -> list[dict[str, Any]]:
        infos = await self._call(self.kb.list_collections)
        out = []
        for info in infos:
            self.metrics.index_chunks.labels(info.name).set(info.chunks)
            self.metrics.index_documents.labels(info.name).set(info.documents)
            if can_read(info.name):  # an API key lists only its own collections
                out.append(info.to_dict())
        return out

    async def create_collection(self, name: str) -> dict[str, Any]:
        info = await self._call(self.kb.create_collection, name)
        d: dict[str, Any] = info.to_dict()
        return d

    async def delete_collection(self, name: str) -> None:
        await self._call(self.kb.delete_collection, name)
        for gauge in (self.metrics.index_chunks, self.metrics.index_documents):
            with contextlib.suppress(KeyError):
                gauge.remove(name)

    async def list_documents(self, name: str) -> list[DocumentInfo]:
        self._check_visible(name)
        docs: list[DocumentInfo] = await self._call(self.kb.list_documents, name)
        return docs

    async def delete_document(self, name: str, document_id: str) -> None:
        await self._call(self.kb.delete_document, name, document_id)

    def submit_upload(
        self, collection: str, files: list[tuple[str, Path]], staging_dir: Path, staged_bytes: int
    ) -> Job:
        return self.jobs.submit(collection, files, staging_dir, staged_bytes=staged_bytes)

    def _ingest_job(
        self, collection: str, files: list[tuple[str, Path]], progress: Callable[[str, int, int], None]
    ) -> IngestSummary:
        summary = self.kb.ingest_files(collection, files, progress=progress)
        for outcome in ("added", "updated", "unchanged", "failed"):
            n = getattr(summary, outcome)
            if n:
                self.metrics.ingest_documents.labels(outcome).inc(n)
        self.metrics.ingest_chunks.inc(summary.chunks)
        for failure in summary.failures:
            self.metrics.observe_ingest_failure(failure.reason)
        return summary

    def _job_finished(self, job: Job, seconds: float) -> None:
        self.metrics.ingest_jobs.labels(job.status).inc()
        self.metrics.ingest_job_duration.observe(seconds)
        if job.status == "failed" and job.summary is None:  # the job itself raised, not a file
            self.metrics.ingest_failures.labels("job_error").inc()

    def close(self) -> None:
        self.jobs.shutdown(wait=True)
