"""Small helpers around PEFT LoRA adapters: read an adapter's config, make a random one for tests.

`peft` is imported lazily: the gateway only reads `adapter_config.json` (plain JSON) and never needs it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DEFAULT_TARGETS = ("q_proj", "v_proj")


def read_adapter_config(path: str | Path) -> dict[str, Any]:
    """The adapter's `adapter_config.json` as a dict; ValueError with a readable reason otherwise."""
    p = Path(path)
    cfg_file = p / "adapter_config.json"
    if not p.is_dir():
        raise ValueError(f"{p} is not a directory")
    if not cfg_file.is_file():
        raise ValueError(f"{p} has no adapter_config.json (not a PEFT LoRA adapter directory)")
    try:
        data = json.loads(cfg_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{cfg_file} is not readable JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{cfg_file} must hold a JSON object")
    return data


def make_random_adapter(
    base_model: str | Path,
    out_dir: str | Path,
    *,
    rank: int = 8,
    alpha: int = 16,
    targets: tuple[str, ...] = DEFAULT_TARGETS,
    seed: int = 0,
    std: float = 0.05,
) -> Path:
    """A deterministic LoRA whose A and B are both random (PEFT starts B at zero: a no-op adapter).

    Used by tests that need an adapter which visibly changes the base model's output without
    training one; `std` sets how far it moves the weights.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(str(base_model), dtype=torch.float32)
    cfg = LoraConfig(r=rank, lora_alpha=alpha, target_modules=list(targets), lora_dropout=0.0, bias="none")
    peft_model = get_peft_model(model, cfg)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_A" in name or "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=gen) * std)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    peft_model.save_pretrained(str(out))
    return out
