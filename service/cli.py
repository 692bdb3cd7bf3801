"""`ragserve` command line: one entry point, one subcommand per job.

Each subcommand module exposes `register(subparsers)`; handlers receive the parsed
namespace with `settings` (a loaded `Settings`), `data_dir` and `embedding_model` filled in.
Failures print one line to stderr and exit non-zero.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from service.settings import Settings, load_settings


class CLIError(Exception):
    """An error whose message is meant for the user, printed as one line."""


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ragserve",
        description="Self-hosted RAG knowledge-QA service with its own vLLM model serving.",
    )
    parser.add_argument("--data-dir", help="data directory (default: RAGSERVE_DATA_DIR or ./var)")
    parser.add_argument("--config", help="YAML settings file (default: RAGSERVE_CONFIG)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    from service import serve_cmd
    from service.engine import model_cli

    serve_cmd.register(sub)
    model_cli.register(sub)

    from deploy.lora import cli as lora_cli

    lora_cli.register(sub)

    from ingest import cli as ingest_cli

    ingest_cli.register(sub)

    from eval import cli as eval_cli

    eval_cli.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = _build_parser()
    args = parser.parse_args(argv)
    from service.observability.logging import SafeTextFormatter

    handler = logging.StreamHandler(sys.stderr)  # file names and record ids may hold control characters
    handler.setFormatter(SafeTextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, handlers=[handler])
    try:
        if args.config:
            os.environ["RAGSERVE_CONFIG"] = args.config
        overrides = {"data_dir": args.data_dir} if args.data_dir else {}
        settings: Settings = load_settings(**overrides)
        args.settings = settings
        args.data_dir = settings.data_dir
        args.embedding_model = settings.embedding.model
        rc = args.func(args)
        return int(rc or 0)
    except KeyboardInterrupt:
        print("ragserve: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one line for the user; traceback only with -v
        if args.verbose:
            logging.exception("command failed")
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"ragserve {args.command}: error: {msg}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
