"""Prometheus metrics for the gateway, on a registry owned by each app instance.

Conventions: every name starts with `ragserve_`, values are in base units (seconds, bytes, ratios
in 0..1), counters end in `_total`. Label values are bounded: routes are templates, models and
collections are only recorded after the engine or the index accepted them, reasons are classes.

One process, one registry: the gateway runs one uvicorn worker (it is async and I/O-bound; the
heavy lifting happens in vLLM) and scales out with replicas, each scraped on its own. See
docs/observability.md for the reasoning and why prometheus-client's multiprocess mode is not used.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)

from service.observability.classify import failure_reason, is_dont_know
from service.observability.engine_stats import EngineStats

# LLM calls last from milliseconds to minutes.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 60, 120, 300, 600)
_TOKEN_LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2, 5)
_RETRIEVAL_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
_JOB_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 3600)
_QUEUE_WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# Refusals pre-created at zero so rates and alerts work before the first one happens.
REJECTIONS = (
    ("401", "missing_api_key"),
    ("401", "invalid_api_key"),
    ("403", "permission"),
    ("429", "requests"),
    ("429", "tokens"),
    ("503", "queue_full"),
    ("503", "queue_timeout"),
    ("504", "timeout"),
)

INGEST_FAILURE_REASONS = (
    "unsupported_type",
    "too_large",
    "unreadable",
    "invalid_format",
    "parse_error",
    "no_text",
    "duplicate_id",
    "invalid_id",
    "job_error",
    "other",
)
INGEST_OUTCOMES = ("added", "updated", "unchanged", "failed")
RETRIEVAL_STAGES = ("embed", "dense", "bm25", "fuse")
SAFETY_DIRECTIONS = ("input", "output")


class Metrics:
    def __init__(self) -> None:
        # `_created` samples double the series count and no dashboard or rule here reads them.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        ProcessCollector(registry=r)
        GCCollector(registry=r)
        PlatformCollector(registry=r)
        self.build_info = Info("ragserve_build", "Version, model and embedder of this gateway", registry=r)

        # -- HTTP ---------------------------------------------------------------------------
        self.http_requests = Counter(
            "ragserve_http_requests_total", "HTTP requests by route template, method and status",
            ["route", "method", "status"], registry=r,
        )  # fmt: skip
        self.http_duration = Histogram(
            "ragserve_http_request_duration_seconds", "HTTP request duration (streams: until the last byte)",
            ["route", "method"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.http_in_flight = Gauge(
            "ragserve_http_requests_in_flight", "HTTP requests being served (all routes)", registry=r
        )

        # -- generation ---------------------------------------------------------------------
        self.requests_in_flight = Gauge(
            "ragserve_requests_in_flight", "Generation requests being served", ["endpoint"], registry=r
        )
        # Queued in the gateway: ragserve_admission_queue_depth; in vLLM: ragserve_engine_requests_waiting.
        self.requests_awaiting_first_token = Gauge(
            "ragserve_requests_awaiting_first_token",
            "Generation requests sent to the engine that have no first token yet (engine queue + prefill)",
            ["endpoint"], registry=r,
        )  # fmt: skip
        for endpoint in ("chat", "completion"):
            self.requests_in_flight.labels(endpoint)
            self.requests_awaiting_first_token.labels(endpoint)
        self.ttft = Histogram(
            "ragserve_time_to_first_token_seconds",
            "Time from request to the first generated token (non-streaming: to the whole answer)",
            ["model"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.itl = Histogram(
            "ragserve_inter_token_latency_seconds", "Mean time between tokens of a stream",
            ["model"], buckets=_TOKEN_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.prompt_tokens = Counter(
            "ragserve_prompt_tokens_total", "Prompt tokens processed", ["model"], registry=r
        )
        self.generation_tokens = Counter(
            "ragserve_generation_tokens_total", "Tokens generated", ["model"], registry=r
        )
        self.finish_reasons = Counter(
            "ragserve_finish_reason_total", "Finished generations by reason", ["model", "reason"], registry=r
        )

        # -- engine -------------------------------------------------------------------------
        self.engine_up = Gauge("ragserve_engine_up", "1 when the engine answers, 0 otherwise", registry=r)
        self.engine_restarts = Counter(
            "ragserve_engine_restarts_total", "Times the supervised engine was restarted", registry=r
        )
        # vLLM's own statistics, scraped from the engine's /metrics when ours is scraped.
        self.engine_stats = EngineStats(registry=r)
        # LoRA adapters loaded/unloaded through the admin API (outcome: ok, rejected (4xx), failed).
        # Generation metrics carry the adapter's name in their `model` label.
        self.lora_operations = Counter(
            "ragserve_lora_adapter_operations_total", "LoRA adapter loads and unloads, by outcome",
            ["operation", "outcome"], registry=r,
        )  # fmt: skip
        for op in ("load", "unload"):
            for outcome in ("ok", "rejected", "failed"):
                self.lora_operations.labels(op, outcome)

        # -- retrieval ----------------------------------------------------------------------
        self.retrieval_duration = Histogram(
            "ragserve_retrieval_duration_seconds", "Time spent in one retrieval stage",
            ["stage"], buckets=_RETRIEVAL_BUCKETS, registry=r,
        )  # fmt: skip
        for stage in RETRIEVAL_STAGES:
            self.retrieval_duration.labels(stage)
        self.retrieval_request_duration = Histogram(
            "ragserve_retrieval_request_duration_seconds",
            "Whole retrieval (all stages, docstore reads and the thread hop)",
            ["collection", "mode"], buckets=_RETRIEVAL_BUCKETS, registry=r,
        )  # fmt: skip
        self.retrieval_hits = Histogram(
            "ragserve_retrieval_hits", "Passages returned per retrieval", ["collection"],
            buckets=(0, 1, 2, 4, 8, 16, 32, 64), registry=r,
        )  # fmt: skip
        self.retrieval_empty = Counter(
            "ragserve_retrieval_empty_results_total", "Retrievals that returned no passage", ["collection"],
            registry=r,
        )  # fmt: skip
        # Hybrid fusion's per-query evidence (ingest.search): ~0.1 when queries copy passages' wording,
        # ~0.5 for paraphrases, ~0 for Chinese queries with an English-only embedder, 1 if BM25 found nothing.
        self.retrieval_dense_weight = Histogram(
            "ragserve_retrieval_dense_weight", "Weight of dense similarity in a hybrid query's fused score",
            ["collection"], buckets=(0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0), registry=r,
        )  # fmt: skip
        self.index_chunks = Gauge(
            "ragserve_index_chunks", "Chunks in each collection's published index", ["collection"], registry=r
        )
        self.index_documents = Gauge(
            "ragserve_index_documents", "Documents in each collection", ["collection"], registry=r
        )
        self.index_version = Gauge(
            "ragserve_index_version", "Published index version of each collection", ["collection"],
            registry=r,
        )  # fmt: skip
        self.index_updated = Gauge(
            "ragserve_index_last_update_timestamp_seconds",
            "Unix time the collection's current index version was published", ["collection"], registry=r,
        )  # fmt: skip
        self.index_age = Gauge(
            "ragserve_index_age_seconds", "Age of the collection's current index version", ["collection"],
            registry=r,
        )  # fmt: skip

        # -- RAG answer quality -------------------------------------------------------------
        self.rag_citations = Histogram(
            "ragserve_rag_citations", "Passages the answer cited as [n]", ["collection"],
            buckets=(0, 1, 2, 3, 4, 6, 8, 16), registry=r,
        )  # fmt: skip
        self.unsupported_answers = Counter(
            "ragserve_rag_unsupported_answers_total",
            "Grounded answers stating numbers or code no passage holds, by action (abstained, flagged)",
            ["collection", "action"],
            registry=r,
        )
        self.rag_condense_duration = Histogram(
            "ragserve_rag_condense_seconds",
            "Time the chat model took to rewrite a follow-up question for retrieval (rag.condense: model)",
            buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32),
            registry=r,
        )
        self.rag_irrelevant_questions = Counter(
            "ragserve_rag_irrelevant_questions_total",
            "Grounded questions answered with the abstention sentence because no passage sentence was "
            "similar enough to the question (rag.relevance_gate)",
            ["collection"],
            registry=r,
        )
        self.rag_sentence_similarity = Histogram(
            "ragserve_rag_sentence_similarity",
            "Similarity of a grounded question to the closest sentence of its passages (the relevance "
            "gate's input; calibrate rag.min_sentence_similarity with it)",
            ["collection"],
            buckets=(0.1, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9),
            registry=r,
        )
        self.rag_uncited_answers = Counter(
            "ragserve_rag_uncited_answers_total", "Grounded answers that cite no passage", ["collection"],
            registry=r,
        )  # fmt: skip
        self.rag_dont_know_answers = Counter(
            "ragserve_rag_dont_know_answers_total",
            "Grounded answers saying the documents do not contain the answer", ["collection"], registry=r,
        )  # fmt: skip

        # -- safety -------------------------------------------------------------------------
        self.safety_blocks = Counter(
            "ragserve_safety_blocks_total", "Requests or answers blocked by a safety guard", ["direction"],
            registry=r,
        )  # fmt: skip
        for direction in SAFETY_DIRECTIONS:
            self.safety_blocks.labels(direction)
        # stage: input|context|output|ingest; detector: injection|pii|secrets|toxicity;
        # action: flag|redact|block
        self.safety_checks = Counter(
            "ragserve_safety_checks_total", "Texts checked by a safety guard", ["stage"], registry=r
        )
        self.safety_actions = Counter(
            "ragserve_safety_actions_total", "Safety findings acted on (flag, redact, block)",
            ["stage", "detector", "action"], registry=r,
        )  # fmt: skip
        self.safety_guard_duration = Histogram(
            "ragserve_safety_guard_seconds", "Time spent in one safety guard scan", ["stage"],
            buckets=_RETRIEVAL_BUCKETS, registry=r,
        )  # fmt: skip

        # -- function calling ---------------------------------------------------------------
        # tool: a server tool's name, "client" for calls returned to the client, "any" for rejected
        # decodes; outcome: ok|error|timeout|refused (server tools), returned|invalid (decoding).
        self.tool_calls = Counter(
            "ragserve_tool_calls_total", "Tool calls by tool and outcome", ["tool", "outcome"], registry=r
        )
        self.tool_duration = Histogram(
            "ragserve_tool_duration_seconds", "Server-side tool execution time", ["tool"],
            buckets=(*_RETRIEVAL_BUCKETS, 10, 30, 60), registry=r,
        )  # fmt: skip

        # -- ingestion ----------------------------------------------------------------------
        self.ingest_jobs = Counter(
            "ragserve_ingest_jobs_total", "Ingestion jobs by final status", ["status"], registry=r
        )
        for status in ("succeeded", "failed"):
            self.ingest_jobs.labels(status)
        self.ingest_documents = Counter(
            "ragserve_ingest_documents_total", "Documents processed by ingestion jobs", ["outcome"],
            registry=r,
        )  # fmt: skip
        for outcome in INGEST_OUTCOMES:
            self.ingest_documents.labels(outcome)
        self.ingest_chunks = Counter(
            "ragserve_ingest_chunks_total", "Chunks embedded and written by ingestion jobs", registry=r
        )
        self.ingest_failures = Counter(
            "ragserve_ingest_failures_total", "Files or records that failed to ingest, by reason class",
            ["reason"], registry=r,
        )  # fmt: skip
        for reason in INGEST_FAILURE_REASONS:
            self.ingest_failures.labels(reason)
        self.ingest_job_duration = Histogram(
            "ragserve_ingest_job_duration_seconds", "Ingestion job duration", buckets=_JOB_BUCKETS,
            registry=r,
        )  # fmt: skip

        # -- access control and admission (service/auth) ------------------------------------
        # key: an API key's configured name (bounded by the keys file), "anonymous" without keys.
        self.key_requests = Counter(
            "ragserve_key_requests_total", "Authenticated requests by API key name", ["key"], registry=r
        )
        self.rejected_requests = Counter(
            "ragserve_rejected_requests_total",
            "Requests refused by access control, rate limits or admission, by status and reason",
            ["status", "reason"], registry=r,
        )  # fmt: skip
        for status, reason in REJECTIONS:
            self.rejected_requests.labels(status, reason)
        self.rate_limited = Counter(
            "ragserve_rate_limited_requests_total", "Requests refused with 429, by key name and limit",
            ["key", "limit"], registry=r,
        )  # fmt: skip
        self.admission_queue_depth = Gauge(
            "ragserve_admission_queue_depth", "Generation requests waiting for an engine slot", registry=r
        )
        self.admission_active = Gauge(
            "ragserve_admission_active_requests", "Generation requests holding an engine slot", registry=r
        )
        self.admission_wait = Histogram(
            "ragserve_admission_wait_seconds", "Time a generation request waited for an engine slot",
            buckets=_QUEUE_WAIT_BUCKETS, registry=r,
        )  # fmt: skip
        self.auth_keys = Gauge("ragserve_auth_keys", "API keys loaded from the keys file", registry=r)
        self.auth_key_reloads = Counter(
            "ragserve_auth_key_reloads_total", "Keys file loads by outcome (loaded, reloaded, error)",
            ["outcome"], registry=r,
        )  # fmt: skip

        # -- root-cause analysis (service/rca) ----------------------------------------------
        # source: api|webhook; status: completed|failed; action: queued|duplicate|resolved|ignored|rejected.
        self.rca_analyses = Counter(
            "ragserve_rca_analyses_total", "Root-cause analyses finished, by source and status",
            ["source", "status"], registry=r,
        )  # fmt: skip
        for source in ("api", "webhook"):
            for status in ("completed", "failed"):
                self.rca_analyses.labels(source, status)
        self.rca_duration = Histogram(
            "ragserve_rca_analysis_duration_seconds", "Wall time of one root-cause analysis", ["source"],
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.rca_webhook_alerts = Counter(
            "ragserve_rca_webhook_alerts_total", "Alerts received by the Alertmanager webhook, by action",
            ["action"], registry=r,
        )  # fmt: skip
        self.rca_queue_depth = Gauge(
            "ragserve_rca_queue_depth", "Webhook analyses waiting for a worker", registry=r
        )
        self.rca_evidence_refs = Counter(
            "ragserve_rca_evidence_refs_total",
            "Evidence references written by the model, by outcome (verified, dropped)", ["outcome"],
            registry=r,
        )  # fmt: skip
        self.rca_no_runbook = Counter(
            "ragserve_rca_no_runbook_total", "Analyses for which no relevant runbook was found", registry=r
        )

    # -- helpers for the places that record -----------------------------------------------

    def observe_retrieval_stages(self, timings: dict[str, float]) -> None:
        for stage, seconds in timings.items():
            if stage in RETRIEVAL_STAGES:
                self.retrieval_duration.labels(stage).observe(seconds)

    def observe_rag_answer(self, collection: str, answer: str, *, cited: int) -> None:
        """Quality signals of one grounded answer: citations, uncited, "don't know"."""
        self.rag_citations.labels(collection).observe(cited)
        if cited == 0:
            self.rag_uncited_answers.labels(collection).inc()
        if is_dont_know(answer):
            self.rag_dont_know_answers.labels(collection).inc()

    def observe_ingest_failure(self, message: str) -> None:
        self.ingest_failures.labels(failure_reason(message)).inc()
