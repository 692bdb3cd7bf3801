"""A quantized checkpoint served end to end: W8A8 int8 (compressed-tensors) made by `ragserve model quantize`.

`ragserve model quantize --scheme w8a8` writes the checkpoint (cached under var/models); the gateway
serves it by configuration alone (engine.model), vLLM reading the scheme from its config.json.
Runs after test_live.py has stopped the shared server. Skips, saying why, only when this CPU's vLLM
build has no int8 kernel for it; any other failure fails.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.conftest import REPO
from tests.e2e.conftest import LiveServer, launch_live_server

pytestmark = pytest.mark.engine

MODEL = "smollm2-135m-instruct"
NO_KERNEL = ("has no kernel", "NotImplementedError", "not supported on CPU", "No compiled cutlass")


@pytest.fixture(scope="module")
def quantized_dir() -> Path:
    import subprocess
    import sys

    from service.settings import PLUMBING_MODEL

    proc = subprocess.run(
        [sys.executable, "-m", "service.cli", "--data-dir", str(REPO / "var"), "model", "quantize",
         "--scheme", "w8a8", "--model", PLUMBING_MODEL],
        cwd=REPO, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return Path(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def quantized_server(quantized_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp("quantized-live")
    try:
        with launch_live_server(data_dir, RAGSERVE_ENGINE__MODEL=str(quantized_dir)) as server:
            yield server
    except pytest.fail.Exception:
        log = (data_dir / "server.log").read_text(errors="replace")
        if any(marker in log for marker in NO_KERNEL):
            pytest.skip("this CPU's vLLM build has no int8 W8A8 kernel (see docs/quantization.md)")
        raise


def test_checkpoint_is_int8_and_smaller(quantized_dir: Path) -> None:
    cfg = json.loads((quantized_dir / "config.json").read_text())["quantization_config"]
    assert cfg["quant_method"] == "compressed-tensors" and cfg["format"] == "int-quantized"
    group = cfg["config_groups"]["group_0"]
    assert group["weights"]["num_bits"] == 8 and group["input_activations"]["dynamic"] is True
    base = REPO / "var" / "models" / MODEL / "model.safetensors"
    assert (quantized_dir / "model.safetensors").stat().st_size < 0.5 * base.stat().st_size


def test_quantized_model_loads_and_answers(quantized_server: LiveServer) -> None:
    client = openai.OpenAI(base_url=quantized_server.v1, api_key="unused", timeout=120, max_retries=0)
    assert MODEL in {m.id for m in client.models.list().data}
    r = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=24, temperature=0,
    )  # fmt: skip
    assert "Paris" in (r.choices[0].message.content or "")
    question = [{"role": "user", "content": "What does exit code 137 mean for a pod?"}]
    r = client.chat.completions.create(model="rag/default", messages=question, max_tokens=48, temperature=0)
    assert r.model_extra["citations"][0]["document_id"] == "runbooks/pod-oomkilled.md"  # type: ignore[index]
    log = quantized_server.log.read_text(errors="replace")
    assert "quantization=compressed-tensors" in log  # vLLM took the scheme from the checkpoint
    assert httpx.get(quantized_server.url + "/readyz", timeout=10).status_code == 200
