"""Prometheus metrics for the gateway, on a registry owned by each app instance."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

# LLM calls last from milliseconds to minutes.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 60, 120, 300, 600)
_TOKEN_LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2, 5)
_RETRIEVAL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.build_info = Info("ragserve_build", "Version, model and embedder of this gateway", registry=r)
        self.http_requests = Counter(
            "ragserve_http_requests_total", "HTTP requests by route, method and status",
            ["route", "method", "status"], registry=r,
        )  # fmt: skip
        self.http_duration = Histogram(
            "ragserve_http_request_duration_seconds", "HTTP request duration (streams: until the last byte)",
            ["route", "method"], buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.requests_in_flight = Gauge(
            "ragserve_requests_in_flight", "Generation requests being served", ["endpoint"], registry=r
        )
        self.ttft = Histogram(
            "ragserve_time_to_first_token_seconds", "Time from request to the first generated token",
            ["model"], buckets=_LATENCY_BUCKETS, registry=r,
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
        self.engine_up = Gauge("ragserve_engine_up", "1 when the engine answers, 0 otherwise", registry=r)
        self.engine_restarts = Counter(
            "ragserve_engine_restarts_total", "Times the supervised engine was restarted", registry=r
        )
        self.retrieval_duration = Histogram(
            "ragserve_retrieval_duration_seconds", "Retrieval time (embed + search + fuse)",
            ["collection", "mode"], buckets=_RETRIEVAL_BUCKETS, registry=r,
        )  # fmt: skip
        self.retrieval_hits = Histogram(
            "ragserve_retrieval_hits", "Passages returned per retrieval", ["collection"],
            buckets=(0, 1, 2, 4, 8, 16, 32, 64), registry=r,
        )  # fmt: skip
        self.rag_citations = Histogram(
            "ragserve_rag_citations", "Passages the answer cited as [n]", ["collection"],
            buckets=(0, 1, 2, 3, 4, 6, 8, 16), registry=r,
        )  # fmt: skip
        self.rag_uncited_answers = Counter(
            "ragserve_rag_uncited_answers_total", "Grounded answers that cite no passage", ["collection"],
            registry=r,
        )  # fmt: skip
        self.index_chunks = Gauge(
            "ragserve_index_chunks", "Chunks in each collection's published index", ["collection"], registry=r
        )
        self.index_documents = Gauge(
            "ragserve_index_documents", "Documents in each collection", ["collection"], registry=r
        )
        self.ingest_jobs = Counter(
            "ragserve_ingest_jobs_total", "Ingestion jobs by final status", ["status"], registry=r
        )
        self.ingest_documents = Counter(
            "ragserve_ingest_documents_total",
            "Documents processed by ingestion jobs",
            ["outcome"],
            registry=r,
        )
        self.ingest_job_duration = Histogram(
            "ragserve_ingest_job_duration_seconds", "Ingestion job duration", buckets=_LATENCY_BUCKETS,
            registry=r,
        )  # fmt: skip
