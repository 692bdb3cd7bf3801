"""`ragserve serve`: prepare what the embedded default needs, then run the gateway."""

from __future__ import annotations

import argparse
import logging
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from service.auth.bind import is_loopback, refuse_insecure_bind
from service.settings import Settings

logger = logging.getLogger("ragserve.serve")


def sample_corpus_dir() -> Path:
    """The project's own sample corpus, shipped inside the `deploy` package."""
    return Path(str(resources.files("deploy").joinpath("sample_corpus")))


def seed_default_collection(settings: Settings, embedder: Any) -> None:
    """Ingest the sample corpus into the default collection when it is missing or empty."""
    from ingest.knowledge_base import KnowledgeBase
    from ingest.store.factory import backend_from_settings

    backend = backend_from_settings(settings)
    kb = KnowledgeBase(settings.collections_dir, embedder, backend=backend)
    try:
        _seed(kb, settings.default_collection)
    finally:
        backend.close()


def _seed(kb: Any, name: str) -> None:
    if kb.exists(name) and kb.chunk_count(name) > 0:
        return
    corpus = sample_corpus_dir()
    print(f"ragserve: ingesting the sample corpus into collection '{name}' ...", file=sys.stderr)
    summary = kb.ingest_paths(name, [corpus])
    print(
        f"ragserve: collection '{name}': {summary.added} documents, {summary.chunks} chunks "
        f"in {summary.seconds:.1f} s",
        file=sys.stderr,
    )
    if summary.failed:
        for f in summary.failures:
            print(f"ragserve: failed: {f.source}: {f.reason}", file=sys.stderr)


def set_torch_threads(settings: Settings) -> None:
    """Keep the gateway's own CPU work (query embeddings) off the engine's compute core."""
    threads = settings.embedding.torch_threads
    if threads is None and settings.engine.mode == "embedded":
        from service.engine.cpu import has_cuda_gpu

        threads = None if has_cuda_gpu() else 1
    if threads:
        import torch

        torch.set_num_threads(threads)


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ingest.embedding import Embedder
    from service.app import create_app
    from service.observability.logging import configure_logging, logging_config

    settings: Settings = args.settings
    configure_logging(settings.server.log_format, settings.server.log_level)
    updates: dict[str, Any] = {}
    if args.host:
        updates["host"] = args.host
    if args.port:
        updates["port"] = args.port
    if updates:
        settings = settings.model_copy(update=updates)
    refusal = refuse_insecure_bind(
        settings.host,
        keys_configured=settings.auth_keys_file is not None,
        insecure=args.insecure or settings.auth.allow_insecure,
    )
    if refusal:
        print(refusal, file=sys.stderr)
        return 2
    if (
        settings.auth_keys_file is None
        and not is_loopback(settings.host)
        and "*" not in settings.server.allowed_hosts
    ):
        print(
            f"ragserve: without API keys only requests whose Host is one of {settings.server.allowed_hosts} "
            "are answered (DNS rebinding defence); list the names clients use in "
            'RAGSERVE_SERVER__ALLOWED_HOSTS (JSON list, or ["*"])',
            file=sys.stderr,
        )
    if args.engine_url:
        settings.engine.mode = "remote"
        settings.engine.url = args.engine_url
    if settings.engine.mode == "embedded":
        from service.engine.model_prep import resolve_model

        resolved = resolve_model(settings.engine.model, settings.models_dir, variant=settings.engine.variant)
        print(f"ragserve: model {settings.engine.served_model_name}: {resolved}", file=sys.stderr)
    set_torch_threads(settings)
    embedder = Embedder.load(
        settings.embedding.model, settings.embedding.device, settings.embedding.batch_size
    )
    if not args.no_sample_corpus:
        seed_default_collection(settings, embedder)
    app = create_app(settings, embedder=embedder)
    print(f"ragserve: serving on http://{settings.host}:{settings.port} (engine starting)", file=sys.stderr)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.server.log_level,
        log_config=logging_config(settings.server.log_format, settings.server.log_level),
        timeout_graceful_shutdown=int(settings.server.shutdown_grace_s),
        access_log=False,
        http=settings.server.http_parser,
    )
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("serve", help="run the gateway (and the embedded vLLM engine)")
    p.add_argument("--host", help="bind address (default: RAGSERVE_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: RAGSERVE_PORT or 8000)")
    p.add_argument("--engine-url", help="use a remote vLLM server at this root instead of the embedded one")
    p.add_argument(
        "--no-sample-corpus",
        action="store_true",
        help="do not ingest the sample corpus into an empty default collection",
    )
    p.add_argument(
        "--insecure",
        action="store_true",
        help="allow a non-loopback address without API keys (RAGSERVE_AUTH_KEYS_FILE); docs/security.md",
    )
    p.set_defaults(func=run_serve)
