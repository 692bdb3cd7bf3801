"""The embedded engine's OpenMP binding: `engine.cpu_threads_bind` -> VLLM_CPU_OMP_THREADS_BIND."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from service.engine.cpu import _id_ranges, omp_threads_bind
from service.engine.supervisor import default_launch_spec
from service.settings import EngineSettings


def _spec(bind: str | None) -> object:
    return default_launch_spec(
        model_path="/models/base", served_model_name="m", dtype="float32", max_model_len=2048, port=1234,
        enforce_eager=True, max_num_seqs=8, kv_cache_space_gib=1, tool_call_parser=None, extra_args=[],
        cpu_threads_bind=bind,
    )  # fmt: skip


def test_all_means_every_cpu_this_process_may_use() -> None:
    allowed = sorted(os.sched_getaffinity(0))
    got = omp_threads_bind("all")
    ids: list[int] = []
    for part in got.split(","):
        lo, _, hi = part.partition("-")
        ids += list(range(int(lo), int(hi or lo) + 1))
    assert ids == allowed
    assert omp_threads_bind("auto") == "auto" and omp_threads_bind("0-3") == "0-3"


def test_cpu_lists_are_written_as_ranges() -> None:
    assert _id_ranges([0]) == "0"
    assert _id_ranges([0, 1, 2, 5, 7, 8]) == "0-2,5,7-8"


def test_the_binding_reaches_the_child_and_the_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VLLM_CPU_OMP_THREADS_BIND", raising=False)
    assert _spec("0-1").environment()["VLLM_CPU_OMP_THREADS_BIND"] == "0-1"  # type: ignore[attr-defined]
    assert "VLLM_CPU_OMP_THREADS_BIND" not in _spec(None).environment()  # type: ignore[attr-defined]
    monkeypatch.setenv("VLLM_CPU_OMP_THREADS_BIND", "nobind")
    assert _spec("0-1").environment()["VLLM_CPU_OMP_THREADS_BIND"] == "nobind"  # type: ignore[attr-defined]


def test_a_malformed_binding_is_refused_by_the_settings() -> None:
    assert EngineSettings(cpu_threads_bind="0-3,6").cpu_threads_bind == "0-3,6"
    for bad in ("0-", "cores 0-1", "0;rm -rf /", ""):
        with pytest.raises(ValidationError):
            EngineSettings(cpu_threads_bind=bad)
