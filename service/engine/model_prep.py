"""Offline preparation of catalog models into cached Hugging Face directories that vLLM serves.

`prepare_model(name, models_dir)` fetches the model's pinned GGUF (service/engine/weights.py),
converts it once (service/engine/convert.py) into `<models_dir>/<name>/`, and, where the catalog
model has one and the CPU has int8 dot-product instructions, makes its W8A8 int8 copy
(service/engine/quantize.py) in `<models_dir>/<name>-w8a8/`. Each directory carries a marker file
`ragserve-prepared.json` (source checksum, per-file sizes and sha256, library versions).

Safety properties:
- every directory is written into a temporary directory beside the target and renamed into place
  only after it was checked, so a killed run or a full disk never leaves a directory that looks
  prepared (the marker is written last, inside the temporary directory);
- a file lock (`fcntl.flock`) per model serialises concurrent preparations (processes and threads);
- an already prepared directory is recognised quickly (sizes + config parse), and re-checked in
  full (sha256 of every file) on request.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from service.engine import catalog
from service.engine.catalog import CatalogModel
from service.engine.convert import REQUIRED_FILES, ConversionError, convert, pkg_version
from service.engine.cpu import cpu_has_int8_gemm, has_cuda_gpu
from service.engine.weights import WeightsError, fetch_gguf, sha256_file

__all__ = [
    "MARKER_NAME",
    "REQUIRED_FILES",
    "ModelPrepError",
    "Variant",
    "choose_variant",
    "model_info",
    "prepare_model",
    "read_marker",
    "resolve_model",
    "verify_prepared",
]

MARKER_NAME = "ragserve-prepared.json"
FORMAT_VERSION = 2
Variant = Literal["auto", "base", "w8a8"]
Log = Callable[[str], None]


class ModelPrepError(RuntimeError):
    """A preparation or verification failure; the message is one line meant for the user."""


def stderr_log(msg: str) -> None:
    print(f"[model] {msg}", file=sys.stderr, flush=True)


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
    are listed, config.json parses as a causal LM, the tokenizer config has a chat template. With
    `full` (the default) also the sha256 of every file (about 1 s per GB).
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
    if not any(name.endswith(".safetensors") for name in files):
        raise ModelPrepError(f"{path}: marker lists no safetensors weights")
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
    quant = config.get("quantization_config")
    if marker.get("variant", "base") == "base" and quant is not None:
        raise ModelPrepError(f"{path}: config.json still carries a quantization_config")
    if marker.get("variant") == "w8a8" and not isinstance(quant, dict):
        raise ModelPrepError(f"{path}: a w8a8 directory without a quantization_config")
    if not isinstance(tok_config, dict) or not tok_config.get("chat_template"):
        raise ModelPrepError(f"{path}: tokenizer_config.json has no chat_template")
    if full:
        for name, meta in files.items():
            if sha256_file(path / name) != meta.get("sha256"):
                raise ModelPrepError(f"{path}: sha256 mismatch for {name} (corrupted; run with --force)")


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_marker(directory: Path, marker: dict[str, Any]) -> None:
    files: dict[str, dict[str, Any]] = {}
    for fp in sorted(directory.iterdir()):
        if fp.is_file() and fp.name != MARKER_NAME:
            fp.chmod(0o644)  # save_pretrained writes 0600: non-root images must read them
            files[fp.name] = {"size": fp.stat().st_size, "sha256": sha256_file(fp)}
            _fsync_path(fp)
    marker = {**marker, "format": FORMAT_VERSION, "files": files}
    marker_path = directory / MARKER_NAME
    marker_path.write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    marker_path.chmod(0o644)
    _fsync_path(marker_path)
    verify_prepared(directory, full=False)
    directory.chmod(0o755)
    _fsync_path(directory)


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


def _check_existing(target: Path, expect: dict[str, Any], *, full: bool) -> str | None:
    """None when `target` is a valid, current preparation; otherwise the reason it is not."""
    if not target.exists():
        return "not prepared yet"
    try:
        verify_prepared(target, full=full)
        marker = read_marker(target)
    except ModelPrepError as exc:
        return str(exc)
    for key, value in expect.items():
        if marker.get(key) != value:
            return f"{key} changed ({marker.get(key)!r} -> {value!r})"
    return None


def _build(target: Path, expect: dict[str, Any], *, force: bool, verify: bool, log: Log,
           make: Callable[[Path], dict[str, Any]]) -> Path:  # fmt: skip
    """Build `target` with `make(tmp_dir)` unless a current one exists; whole or nothing."""
    if not force and _check_existing(target, expect, full=verify) is None:
        return target
    models_dir = target.parent
    try:
        models_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelPrepError(f"cannot create the models directory {models_dir}: {exc}") from exc
    with _file_lock(models_dir / f".{target.name}.lock", log):
        reason = _check_existing(target, expect, full=verify)
        if reason is None and not force:  # someone else finished while we waited
            return target
        if target.exists():
            log(f"rebuilding {target}: {'--force' if force else reason}")
        # Leftovers of killed runs (we hold the lock, so nobody else is writing them).
        for stale in (*models_dir.glob(f".{target.name}.tmp-*"), *models_dir.glob(f".{target.name}.old-*")):
            shutil.rmtree(stale, ignore_errors=True)
        started = time.monotonic()
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=models_dir))
        try:
            facts = make(tmp)
            log("computing checksums")
            _write_marker(
                tmp,
                {
                    **facts,
                    **expect,
                    "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                    "conversion_seconds": round(time.monotonic() - started, 1),
                },
            )
            old: Path | None = None
            if target.exists() or target.is_symlink():
                old = models_dir / f".{target.name}.old-{os.getpid()}"
                os.rename(target, old)
            os.rename(tmp, target)
            _fsync_path(models_dir)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except (ConversionError, WeightsError) as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise ModelPrepError(str(exc)) from exc
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise ModelPrepError(f"writing {target} failed: {exc} (disk full? nothing was kept)") from exc
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    log(f"prepared {target} in {time.monotonic() - started:.0f} s")
    return target


def _spec(name: str) -> CatalogModel:
    spec = catalog.get(name)
    if spec is None:
        raise ModelPrepError(
            f"unknown model {name!r}; `ragserve model list` shows the catalog: {', '.join(catalog.names())}"
        )
    return spec


def choose_variant(spec: CatalogModel, variant: Variant) -> Literal["base", "w8a8"]:
    """`auto`: W8A8 int8 where the catalog model has it and the CPU has int8 dot products (VNNI/AMX).

    On CUDA machines the base weights are served (vLLM picks bf16/fp16 there).
    """
    if variant == "base":
        return "base"
    if variant == "w8a8":
        if not spec.w8a8:
            raise ModelPrepError(f"{spec.name} has no W8A8 variant in the catalog")
        return "w8a8"
    return "w8a8" if spec.w8a8 and cpu_has_int8_gemm() and not has_cuda_gpu() else "base"


def prepare_model(
    name: str,
    models_dir: Path,
    *,
    variant: Variant = "auto",
    force: bool = False,
    verify: bool = False,
    log: Log = stderr_log,
) -> Path:
    """Prepare catalog model `name` (once) and return the directory vLLM should serve.

    Fast when already done: a cheap check (sizes + config parse) and return. `verify=True` checks the
    sha256 of every file instead; a directory that fails either check is rebuilt. `force=True` rebuilds.
    """
    spec = _spec(name)
    models_dir = Path(models_dir).expanduser().absolute()
    base = models_dir / spec.name
    src = spec.source
    expect_base = {
        "model": spec.name,
        "variant": "base",
        "source": {
            "file": src.filename,
            "size": src.size,
            "sha256": src.sha256,
            "quantization": src.quantization,
        },
    }

    def make_base(tmp: Path) -> dict[str, Any]:
        log(f"preparing {spec.title} ({spec.params}, {spec.license}); {spec.attribution}")
        gguf = fetch_gguf(spec, models_dir, log=log)
        log(f"converting {gguf.name} into {base}")
        facts = convert(spec, gguf, tmp, log)
        shutil.copy2(spec.license_path, tmp / "LICENSE.txt")
        return {**facts, "hf_equivalent": spec.hf_equivalent, "license": spec.license,
                "attribution": spec.attribution}  # fmt: skip

    _build(base, expect_base, force=force, verify=verify, log=log, make=make_base)
    if force or _check_existing(base, expect_base, full=False) is None:
        # The joined GGUF is only needed to convert; keep the disk for the served weights.
        gguf = models_dir / ".sources" / src.filename
        if gguf.is_file() and spec.name != catalog.SMOLLM2.name:
            gguf.unlink()
    chosen = choose_variant(spec, variant)
    if chosen == "base":
        log(f"ready: {base}")
        return base

    from service.engine.quantize import quantize

    target = models_dir / f"{spec.name}-w8a8"
    base_marker = read_marker(base)
    weights_sha = {k: v["sha256"] for k, v in base_marker["files"].items() if k.endswith(".safetensors")}
    expect_q = {"model": spec.name, "variant": "w8a8", "base_weights": weights_sha}

    def make_q(tmp: Path) -> dict[str, Any]:
        log(f"quantizing {spec.name} to W8A8 int8 (per-channel weights, dynamic per-token activations)")
        info = quantize(base, tmp, scheme="w8a8", log=log)
        shutil.copy2(spec.license_path, tmp / "LICENSE.txt")
        return {**{k: base_marker.get(k) for k in ("hf_equivalent", "license", "attribution", "params",
                                                   "architecture", "special_tokens", "versions")},
                "dtype": base_marker.get("dtype"), "quantization": info}  # fmt: skip

    _build(target, expect_q, force=force, verify=verify, log=log, make=make_q)
    log(f"ready: {target}")
    return target


def resolve_model(
    spec: str, models_dir: Path, *, variant: Variant = "auto", log: Log = stderr_log
) -> Path | str:
    """What vLLM should load for `spec` (settings.engine.model).

    A catalog name -> its prepared directory (prepared now if needed); an existing local directory ->
    that path; anything else -> returned as is (a hub id that vLLM resolves itself).
    """
    if catalog.get(spec) is not None:
        return prepare_model(spec, models_dir, variant=variant, log=log)
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
            **{
                k: marker.get(k)
                for k in (
                    "model",
                    "variant",
                    "params",
                    "hf_equivalent",
                    "license",
                    "attribution",
                    "source",
                    "special_tokens",
                    "versions",
                    "created_at",
                    "conversion_seconds",
                    "quantization",
                )
            },
            dtype=marker.get("dtype", info["dtype"]),
            size_bytes=sum(int(m.get("size", 0)) for m in marker["files"].values()),
            files=marker["files"],
        )
    else:
        info["prepared"] = False
    return info


def library_versions() -> dict[str, str | None]:
    return {name: pkg_version(name) for name in ("transformers", "torch", "gguf", "compressed-tensors")}
