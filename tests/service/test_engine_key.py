"""The embedded vLLM answers only the gateway: a random API key per gateway start (issue 19, #18).

The key travels in the child's environment (readable by its own user only), never on its command
line (/proc/<pid>/cmdline is world-readable). tests/e2e/test_live.py runs a real engine this way.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from service.engine.supervisor import default_launch_spec


def _spec(api_key: str | None) -> object:
    return default_launch_spec(
        model_path="/models/base", served_model_name="m", dtype="float32", max_model_len=2048, port=1234,
        enforce_eager=True, max_num_seqs=8, kv_cache_space_gib=1, tool_call_parser=None, extra_args=[],
        api_key=api_key,
    )  # fmt: skip


def test_the_key_reaches_the_child_by_environment_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_API_KEY", "inherited-from-the-gateway")
    spec = _spec("k-3q9ZxT0vL8pWm2KdYc7BnR5hJ1fGa6Es")
    argv, env = spec.argv(), spec.environment()  # type: ignore[attr-defined]
    assert not any("k-3q9ZxT0vL8pWm2KdYc7BnR5hJ1fGa6Es" in a for a in argv) and "--api-key" not in argv
    seen = subprocess.run(
        [sys.executable, "-c", "import os; print(os.environ.get('VLLM_API_KEY'))"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert seen == "k-3q9ZxT0vL8pWm2KdYc7BnR5hJ1fGa6Es"
    assert "VLLM_API_KEY" not in _spec(None).environment()  # type: ignore[attr-defined]


def test_embedded_mode_makes_a_random_key_per_start() -> None:
    from service.app import embedded_engine_key
    from service.settings import EngineSettings

    first, second = EngineSettings(), EngineSettings()
    k1, k2 = embedded_engine_key(first), embedded_engine_key(second)
    assert k1 != k2 and len(k1) >= 40 and first.api_key == k1  # what the gateway's clients send
    assert embedded_engine_key(EngineSettings(api_key="configured")) == "configured"
