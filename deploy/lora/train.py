"""Train a LoRA adapter for the default model on the project's ops-format instruction set (CPU, minutes).

    python -m deploy.lora.train --data var/lora/data --out var/lora/ops-format
    make lora                                  # dataset + training + the held-out evaluation

A rank-8 LoRA on the attention projections (q, v and o) of SmolLM2-135M-Instruct, trained with
the loss on the answer tokens only (the prompt is the gateway's grounded prompt, which the model
must read, not learn to write). To fit in minutes on two CPU cores: the adapter covers the top
`--layers` decoder layers (the backward pass stops there), the batch is left-padded so logits are
computed for the answer positions only (the 49k-word output layer is a fifth of the work), and
matmuls run under bfloat16 autocast where the CPU has native bf16 (fp32 master weights).
Plain PyTorch loop with PEFT: no Trainer, no datasets package,
nothing downloaded. The output directory is a PEFT adapter that vLLM loads with --lora-modules or
POST /v1/load_lora_adapter, plus `ragserve-training.json` with the settings and the loss curve.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger("ragserve.lora.train")

TARGETS = ("q_proj", "v_proj", "o_proj")


def load_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def encode(tokenizer: Any, row: dict[str, Any], max_len: int) -> tuple[list[int], list[int]]:
    """Token ids of prompt + answer, and labels that ignore the prompt (-100)."""
    prompt = tokenizer.apply_chat_template(row["messages"], tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(
        [*row["messages"], {"role": "assistant", "content": row["target"]}], tokenize=False
    )
    if not full.startswith(prompt):  # the template renders the prompt identically with an answer after it
        raise ValueError("chat template does not extend the prompt with the answer")
    p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    a_ids = tokenizer(full[len(prompt) :], add_special_tokens=False)["input_ids"]
    ids = (p_ids + a_ids)[:max_len]
    labels = ([-100] * len(p_ids) + a_ids)[:max_len]
    return ids, labels


def train(
    *,
    base_model: Path,
    data_dir: Path,
    out_dir: Path,
    rank: int = 8,
    alpha: int = 16,
    targets: tuple[str, ...] = TARGETS,
    epochs: float = 1.0,
    batch_size: int = 4,
    lr: float = 1e-3,
    max_len: int = 512,
    seed: int = 0,
    threads: int | None = None,
    layers: int = 8,
    max_steps: int | None = None,
) -> dict[str, Any]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = random.Random(seed)
    tokenizer = AutoTokenizer.from_pretrained(str(base_model))
    model = AutoModelForCausalLM.from_pretrained(str(base_model), dtype=torch.float32)
    n_layers = int(model.config.num_hidden_layers)
    top = list(range(max(0, n_layers - layers), n_layers))
    cfg = LoraConfig(
        r=rank, lora_alpha=alpha, lora_dropout=0.05, target_modules=list(targets), bias="none",
        task_type="CAUSAL_LM", layers_to_transform=top,
    )  # fmt: skip
    from service.engine.cpu import cpu_supports_bf16

    bf16 = cpu_supports_bf16()
    model = get_peft_model(model, cfg)  # type: ignore[assignment]
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    rows = load_rows(data_dir / "train.jsonl")
    encoded = [encode(tokenizer, r, max_len) for r in rows]
    steps = max(1, int(len(encoded) * epochs) // batch_size)
    if max_steps is not None:
        steps = min(steps, max_steps)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(1, steps // 10)) * max(0.0, 1 - s / steps)
    )
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    order: list[int] = []
    losses: list[float] = []
    model.train()
    t0 = time.monotonic()
    for step in range(steps):
        if len(order) < batch_size:
            more = list(range(len(encoded)))
            rng.shuffle(more)
            order += more
        batch = [encoded[order.pop()] for _ in range(batch_size)]
        width = max(len(ids) for ids, _ in batch)
        # Left padding: every answer ends at the right edge, so the last `keep` positions hold them all.
        input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids, _ in batch])
        labels = torch.tensor([[-100] * (width - len(lab)) + lab for _, lab in batch])
        attention = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids, _ in batch])
        positions = (attention.cumsum(1) - 1).clamp(min=0)
        answer_len = max(sum(1 for t in lab if t != -100) for _, lab in batch)
        keep = answer_len + 1
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(
                input_ids=input_ids, attention_mask=attention, position_ids=positions, logits_to_keep=keep
            ).logits
        # logits[:, i] predicts the token after position width-keep+i: the last `answer_len` labels.
        loss = torch.nn.functional.cross_entropy(
            logits[:, :-1].float().reshape(-1, logits.shape[-1]),
            labels[:, width - answer_len :].reshape(-1),
            ignore_index=-100,
        )
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        losses.append(round(float(loss.detach()), 4))
        if step % 5 == 0 or step == steps - 1:
            logger.info("step %d/%d loss %.4f (%.0f s)", step + 1, steps, losses[-1], time.monotonic() - t0)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    model.save_pretrained(str(tmp))
    info = {
        "base_model": str(base_model), "data": str(data_dir), "examples": len(encoded), "steps": steps,
        "batch_size": batch_size, "epochs": epochs, "lr": lr, "rank": rank, "alpha": alpha,
        "targets": list(targets), "layers": top, "bf16_autocast": bf16,
        "trainable_params": trainable, "seconds": round(time.monotonic() - t0, 1),
        "loss_first": losses[0], "loss_last_10_mean": round(sum(losses[-10:]) / len(losses[-10:]), 4),
        "losses": losses,
    }  # fmt: skip
    (tmp / "ragserve-training.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    if out_dir.exists():
        import shutil

        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    return info


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Train the ops-format LoRA adapter (CPU).")
    p.add_argument("--model", default=None, help="base HF directory (default: the prepared default model)")
    p.add_argument("--data", default="var/lora/data", help="directory with train.jsonl (make_dataset.py)")
    p.add_argument("--out", default="var/lora/ops-format")
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--alpha", type=int, default=16)
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--layers", type=int, default=8, help="adapt the top N decoder layers")
    p.add_argument("--max-steps", type=int, default=40, help="cap (40 steps x 4 examples)")
    p.add_argument("--data-dir", default="var", help="ragserve data directory (for the prepared model)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from service.engine.model_prep import resolve_model
    from service.settings import PLUMBING_MODEL

    base = Path(resolve_model(a.model or PLUMBING_MODEL, Path(a.data_dir) / "models", variant="base"))
    info = train(
        base_model=base, data_dir=Path(a.data), out_dir=Path(a.out), rank=a.rank, alpha=a.alpha,
        epochs=a.epochs, batch_size=a.batch_size, lr=a.lr, threads=a.threads, layers=a.layers,
        max_steps=a.max_steps,
    )  # fmt: skip
    print(json.dumps({k: v for k, v in info.items() if k != "losses"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
