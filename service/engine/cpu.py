"""Hardware probing that decides how the embedded engine is launched."""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


@lru_cache(maxsize=1)
def has_cuda_gpu() -> bool:
    """True when an NVIDIA GPU answers `nvidia-smi -L` (a CUDA compiler alone is not enough)."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return False
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


def cpu_supports_bf16() -> bool:
    """bf16 only pays off with native bf16 arithmetic (AVX512-BF16 or AMX); measured 4-5x slower without."""
    flags = cpu_flags()
    return bool({"avx512_bf16", "amx_bf16"} & flags)


def cpu_has_int8_gemm() -> bool:
    """int8 dot-product instructions (AVX512-VNNI, AVX-VNNI or AMX-INT8): oneDNN's int8 GEMM is the fast path.

    Without them (plain AVX2) W8A8 still runs but gains little over float, so the base weights are served.
    """
    return bool({"avx512_vnni", "avx_vnni", "amx_int8"} & cpu_flags())


def choose_dtype(configured: str) -> str:
    if configured != "auto":
        return configured
    if has_cuda_gpu():
        return "auto"
    return "bfloat16" if cpu_supports_bf16() else "float32"


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def allowed_cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return list(range(os.cpu_count() or 1))


def _id_ranges(ids: list[int]) -> str:
    """[0, 1, 2, 5] -> "0-2,5" (the list syntax of VLLM_CPU_OMP_THREADS_BIND)."""
    parts: list[str] = []
    start = prev = ids[0]
    for i in [*ids[1:], None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        parts.append(f"{start}-{prev}" if prev != start else str(start))
        if i is not None:
            start = prev = i
    return ",".join(parts)


def omp_threads_bind(configured: str) -> str:
    """VLLM_CPU_OMP_THREADS_BIND for the embedded engine.

    "all": every CPU this process may run on (vLLM's "auto" keeps one core per rank for its scheduler, which
    on a 2-core machine leaves the model one core); "auto" and "nobind" are vLLM's own values; anything else
    is an explicit list such as "0-3" and passes through.
    """
    if configured != "all":
        return configured
    return _id_ranges(allowed_cpus())
