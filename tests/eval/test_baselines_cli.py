"""`eval.baselines` argument handling; the real runs need a model and are documented, not tested."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from eval.baselines import _pick_prompts, main
from eval.prompts import BUILTIN_PROMPTS


def test_pick_prompts_cycles_builtin() -> None:
    convs = _pick_prompts(None, 70)
    assert len(convs) == 70
    assert convs[0][0]["content"] == BUILTIN_PROMPTS[0]
    assert convs[len(BUILTIN_PROMPTS)] == convs[0]
    with pytest.raises(ValueError):
        _pick_prompts(None, 0)


def test_missing_model_dir_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["transformers", "--model", str(tmp_path / "nope"), "--out", str(tmp_path / "r.json")])
    assert rc == 1
    assert "model directory not found" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


def test_module_help_runs_without_heavy_imports() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "eval.baselines", "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0
    assert "vllm-offline" in proc.stdout
