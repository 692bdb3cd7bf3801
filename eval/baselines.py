"""Offline reference throughputs on the same prompts as `bench serve`.

    python -m eval.baselines transformers --model DIR --batch 32 --max-tokens 64 --out tf.json
    python -m eval.baselines vllm-offline --model DIR --batch 32 --max-tokens 64 --out vllm.json

Both take the first `--batch` built-in prompts (or a JSONL file), render them with the
model's own chat template, decode greedily in float32 and force exactly `--max-tokens` new
tokens per prompt (transformers: `min_new_tokens = max_new_tokens`; vLLM: `ignore_eos`), so
the figures compare like with like with `bench serve --ignore-eos`:

- transformers: one static batch through `generate` (left padding, `--threads` torch threads);
- vllm-offline: `LLM.chat` on the same batch, `enforce_eager`, float32.

Each run does a short untimed warm-up first, then times `--repeats` runs and reports the best
(`output_throughput_tok_s`) and all of them. vLLM starts its engine in a spawned process, hence
the `__main__` guard.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eval.prompts import Conversation, load_conversations

# vLLM's CPU backend on a small machine: KV cache size in GiB, and OpenMP binding. "auto"
# binds the compute threads to all cores but the reserved one(s) (one per rank for the
# scheduler / API front end): on 2 cores, compute on core 0, core 1 left for the rest.
VLLM_CPU_DEFAULTS = {"VLLM_CPU_KVCACHE_SPACE": "2", "VLLM_CPU_OMP_THREADS_BIND": "auto"}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _pick_prompts(prompts: str | None, batch: int) -> list[Conversation]:
    convs = load_conversations(prompts)
    if batch < 1:
        raise ValueError("--batch must be positive")
    # cycle when the batch is larger than the prompt set, as bench serve does
    return [convs[i % len(convs)] for i in range(batch)]


def run_transformers(
    model_dir: str,
    convs: list[Conversation],
    *,
    max_tokens: int,
    threads: int,
    repeats: int,
    dtype: str = "float32",
) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(threads)
    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model: Any = AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, dtype))
    model.eval()
    texts = [tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in convs]
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    prompt_tokens = int(enc["attention_mask"].sum())
    gen_kwargs: dict[str, Any] = {
        "do_sample": False,
        "temperature": None,
        "top_p": None,
        "top_k": None,
        "pad_token_id": tok.pad_token_id,
    }

    with torch.inference_mode():
        warm = tok(texts[:2], return_tensors="pt", padding=True, add_special_tokens=False)
        model.generate(**warm, max_new_tokens=4, min_new_tokens=4, **gen_kwargs)
        runs = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = model.generate(**enc, max_new_tokens=max_tokens, min_new_tokens=max_tokens, **gen_kwargs)
            elapsed = time.perf_counter() - t0
            new = out[:, enc["input_ids"].shape[1] :]
            eos = tok.eos_token_id
            count = 0
            for row in new.tolist():
                n = len(row)
                if eos is not None and eos in row:  # never before max_tokens with min_new_tokens
                    n = row.index(eos) + 1
                count += n
            runs.append({"elapsed_s": elapsed, "output_tokens": count})
    sample = tok.decode(new[0], skip_special_tokens=True)
    return {
        "runs": runs,
        "prompt_tokens": prompt_tokens,
        "sample_output": sample,
        "torch_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
    }


def run_vllm_offline(
    model_dir: str,
    convs: list[Conversation],
    *,
    max_tokens: int,
    repeats: int,
    max_model_len: int,
    dtype: str = "float32",
) -> dict[str, Any]:
    for key, value in VLLM_CPU_DEFAULTS.items():
        os.environ.setdefault(key, value)
    import vllm
    from vllm import LLM, SamplingParams

    vllm_dtype: Any = dtype  # a Literal in vLLM's signature, validated in run_baseline
    llm: Any = LLM(
        model=model_dir,
        dtype=vllm_dtype,
        enforce_eager=True,
        max_model_len=max_model_len,
        max_num_seqs=max(len(convs), 1),
        seed=0,
    )
    params = SamplingParams(max_tokens=max_tokens, ignore_eos=True, temperature=0)
    llm.chat(convs[:2], SamplingParams(max_tokens=4, ignore_eos=True, temperature=0), use_tqdm=False)
    runs = []
    outputs: list[Any] = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        outputs = llm.chat(convs, params, use_tqdm=False)
        elapsed = time.perf_counter() - t0
        count = sum(len(o.outputs[0].token_ids) for o in outputs)
        runs.append({"elapsed_s": elapsed, "output_tokens": count})
    prompt_tokens = sum(len(o.prompt_token_ids or []) for o in outputs)
    return {
        "runs": runs,
        "prompt_tokens": prompt_tokens,
        "sample_output": outputs[0].outputs[0].text if outputs else "",
        "vllm_version": getattr(vllm, "__version__", "?"),
        "env": {k: os.environ.get(k) for k in VLLM_CPU_DEFAULTS},
    }


def run_baseline(
    backend: str,
    *,
    model_dir: str,
    batch: int,
    max_tokens: int,
    prompts: str | None = None,
    threads: int = 2,
    repeats: int = 1,
    max_model_len: int = 2048,
    dtype: str = "float32",
) -> dict[str, Any]:
    if dtype not in ("float32", "bfloat16", "float16"):
        raise ValueError(f"unsupported dtype {dtype!r}")
    if not Path(model_dir).is_dir():
        raise FileNotFoundError(f"model directory not found: {model_dir}")
    convs = _pick_prompts(prompts, batch)
    load_before = os.getloadavg()
    if backend == "transformers":
        res = run_transformers(
            model_dir, convs, max_tokens=max_tokens, threads=threads, repeats=repeats, dtype=dtype
        )
    elif backend == "vllm-offline":
        res = run_vllm_offline(
            model_dir, convs, max_tokens=max_tokens, repeats=repeats, max_model_len=max_model_len, dtype=dtype
        )
    else:
        raise ValueError(f"unknown backend {backend!r}")
    for r in res["runs"]:
        r["output_throughput_tok_s"] = round(r["output_tokens"] / r["elapsed_s"], 3)
    best = max(res["runs"], key=lambda r: r["output_throughput_tok_s"])
    return {
        "backend": backend,
        "model": str(model_dir),
        "batch": batch,
        "max_tokens": max_tokens,
        "prompts": prompts or "built-in",
        "dtype": dtype,
        "output_tokens": best["output_tokens"],
        "elapsed_s": round(best["elapsed_s"], 3),
        "output_throughput_tok_s": best["output_throughput_tok_s"],
        **res,
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        # other processes competing for the cores distort the figure: keep the evidence
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.baselines", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("backend", choices=["transformers", "vllm-offline"])
    parser.add_argument("--model", required=True, help="Hugging Face model directory")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--prompts", help="JSONL prompts (default: built-in)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for transformers (default 2)")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs; the best is reported")
    parser.add_argument("--max-model-len", type=int, default=2048)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--out", required=True, help="result JSON file")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        result = run_baseline(
            args.backend,
            model_dir=args.model,
            batch=args.batch,
            max_tokens=args.max_tokens,
            prompts=args.prompts,
            threads=args.threads,
            repeats=max(args.repeats, 1),
            max_model_len=args.max_model_len,
            dtype=args.dtype,
        )
    except (OSError, ValueError) as exc:
        print(f"baselines: error: {exc}", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(
        f"{args.backend}: {result['output_tokens']} tokens in {result['elapsed_s']:.2f} s = "
        f"{result['output_throughput_tok_s']:.1f} tok/s (batch {args.batch}, {args.max_tokens} new tokens)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
