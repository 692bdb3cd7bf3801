"""The UI's component and library tests (Vitest, ui/tests/unit), run as part of the pytest suite."""

from __future__ import annotations

import os
import re
import subprocess

from tests.ui.conftest import UI, node_or_skip


def test_vitest_suite_passes() -> None:
    node_or_skip()
    proc = subprocess.run(
        [str(UI / "node_modules" / ".bin" / "vitest"), "run", "--reporter=dot", "--color=false"],
        cwd=UI, capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "CI": "1", "NO_COLOR": "1"},
    )  # fmt: skip
    output = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)  # no colour codes, whatever the tty
    print(output)
    assert proc.returncode == 0, f"vitest failed:\n{output[-6000:]}"
    tests = re.search(r"Tests\s+(\d+) passed", output)
    assert tests and int(tests.group(1)) >= 25, f"fewer Vitest tests than expected ran:\n{output[-2000:]}"
