"""`ragserve lora dataset|train`: the project's instruction set and adapter training (docs/lora.md)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _cmd_dataset(args: argparse.Namespace) -> int:
    from deploy.lora.make_dataset import make

    out = Path(args.out) if args.out else Path(args.data_dir) / "lora" / "data"
    print(json.dumps(make(out, train_size=args.train_size, test_size=args.test_size), indent=2))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from deploy.lora.make_dataset import make
    from deploy.lora.train import train
    from service.engine.model_prep import resolve_model

    settings = args.settings
    data = Path(args.data) if args.data else Path(settings.data_dir) / "lora" / "data"
    if not (data / "train.jsonl").is_file():
        make(data)
    out = Path(args.out) if args.out else Path(settings.data_dir) / "lora" / args.name
    base = Path(resolve_model(args.model or settings.engine.model, settings.models_dir, variant="base"))
    info = train(
        base_model=base, data_dir=data, out_dir=out, rank=args.rank, epochs=args.epochs, lr=args.lr,
        layers=args.layers, max_steps=args.max_steps, threads=args.threads,
    )  # fmt: skip
    print(json.dumps({k: v for k, v in info.items() if k != "losses"} | {"out": str(out)}, indent=2))
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("lora", help="LoRA adapters: the instruction set and training (docs/lora.md)")
    sub = p.add_subparsers(dest="lora_command", metavar="ACTION")
    sub.required = True
    d = sub.add_parser("dataset", help="write the ops-format instruction set (train/test JSONL)")
    d.add_argument("--out", help="directory (default: DATA_DIR/lora/data)")
    d.add_argument("--train-size", type=int, default=240)
    d.add_argument("--test-size", type=int, default=60)
    d.set_defaults(func=_cmd_dataset)
    t = sub.add_parser("train", help="train an adapter on the instruction set (CPU, 10-25 minutes)")
    t.add_argument("--name", default="ops-format", help="adapter name (output DATA_DIR/lora/NAME)")
    t.add_argument("--data", help="dataset directory (default: DATA_DIR/lora/data, made if missing)")
    t.add_argument("--out", help="output directory")
    t.add_argument("--model", help="base model (default: settings engine.model)")
    t.add_argument("--rank", type=int, default=8)
    t.add_argument("--epochs", type=float, default=1.0)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--layers", type=int, default=8, help="adapt the top N decoder layers")
    t.add_argument("--max-steps", type=int, default=40)
    t.add_argument("--threads", type=int, default=None)
    t.set_defaults(func=_cmd_train)
