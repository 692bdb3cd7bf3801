"""`ragserve bench ...` and `ragserve eval ...` subcommands (eval: eval/retrieval.py, qa.py, convert.py).

`service.cli` calls `register(subparsers)`; handlers get the parsed namespace (with
`settings` and `data_dir` filled in), return an exit code and raise exceptions whose first
line is meant for the user.
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
from typing import Any

from eval import bench


def _cmd_bench_serve(args: argparse.Namespace) -> int:
    return bench.cmd_bench_serve(args)


def _cmd_bench_baseline(args: argparse.Namespace) -> int:
    # A separate interpreter: vLLM spawns its engine process and needs a clean `__main__`,
    # and transformers/vLLM should not share this process's thread settings.
    cmd = [
        sys.executable,
        "-m",
        "eval.baselines",
        args.backend,
        "--model",
        args.model,
        "--batch",
        str(args.batch),
        "--max-tokens",
        str(args.max_tokens),
        "--out",
        args.out,
    ]
    if args.prompts:
        cmd += ["--prompts", args.prompts]
    return subprocess.call(cmd)


def register(subparsers: Any) -> None:
    """Add `bench` (serve, baseline) and `eval` to the `ragserve` command line."""
    p_bench = subparsers.add_parser("bench", help="load benchmarks (serving throughput and latency)")
    bench_sub = p_bench.add_subparsers(dest="bench_command", metavar="BENCH_COMMAND")
    bench_sub.required = True

    p_serve = bench_sub.add_parser(
        "serve",
        help="streaming load test of an OpenAI-compatible server at several concurrencies",
        description=(
            "Streams chat completions at each concurrency level and writes metrics.json "
            "(one row per level), report.md and a throughput/latency plot to --out."
        ),
    )
    bench.add_serve_arguments(p_serve)
    p_serve.set_defaults(func=_cmd_bench_serve)

    p_base = bench_sub.add_parser(
        "baseline",
        help="offline reference throughput on the same prompts (transformers generate, vLLM LLM.chat)",
    )
    p_base.add_argument("backend", choices=["transformers", "vllm-offline"])
    p_base.add_argument("--model", required=True, help="Hugging Face model directory")
    p_base.add_argument("--batch", type=int, default=32)
    p_base.add_argument("--max-tokens", type=int, default=64)
    p_base.add_argument("--prompts", metavar="FILE", help="JSONL prompts (default: built-in)")
    p_base.add_argument("--out", required=True, help="result JSON file")
    p_base.set_defaults(func=_cmd_bench_baseline)

    p_eval = subparsers.add_parser("eval", help="retrieval and answer-quality evaluation")
    eval_sub = p_eval.add_subparsers(dest="eval_command", metavar="EVAL_COMMAND")
    eval_sub.required = True
    for name, help_text in (
        ("retrieval", "retrieval metrics (hit@k, MRR, nDCG) on a corpus and queries"),
        ("qa", "end-to-end answer quality through the gateway"),
        ("convert", "convert SQuAD/CMRC or BEIR data into the project's format"),
        ("safety", "safety detectors: precision, recall, false-positive rates, guard latency"),
        ("lora", "a LoRA adapter vs its base model on held-out examples (format, sources, F1)"),
        ("perplexity", "perplexity of served models on the project's own text (quantization quality)"),
        ("rca", "root-cause analyses of labeled alerts: runbook hit@k, schema and ref validity, latency"),
    ):
        p = eval_sub.add_parser(name, help=help_text, description=help_text)
        module = importlib.import_module(f"eval.{name}")
        module.add_arguments(p)
        p.set_defaults(func=module.cmd)
