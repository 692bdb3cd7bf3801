"""The GPU overlay with the LoRA and FP8 components (k8s/components/vllm-lora, vllm-fp8) renders and
gives vLLM the flags docs/lora.md and docs/quantization.md describe."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from tests.deploy.conftest import K8S, render


def _vllm_container(components: list[str], tmp_path: Path) -> dict[str, object]:
    k = tmp_path / "kustomization.yaml"
    rel = lambda p: os.path.relpath(p, tmp_path)  # noqa: E731 - kustomize wants relative paths
    k.write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [rel(K8S / "overlays" / "gpu")],
        "components": [rel(K8S / "components" / c) for c in components],
    }))  # fmt: skip
    docs = [d for d in yaml.safe_load_all(render(tmp_path, "--load-restrictor=LoadRestrictionsNone")) if d]
    dep = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "ragserve-vllm")
    container: dict[str, object] = dep["spec"]["template"]["spec"]["containers"][0]
    return container


@pytest.mark.parametrize(
    ("components", "args", "env"),
    [
        (["vllm-lora"], ["--enable-lora", "--max-loras=4", "--max-lora-rank=16",
                         "--lora-modules=ops-format=/models/lora/ops-format"],
         {"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}),
        (["vllm-fp8"], ["--quantization=fp8"], {}),
        (["vllm-lora", "vllm-fp8"], ["--enable-lora", "--quantization=fp8"], {}),
    ],
)  # fmt: skip
def test_components_add_vllm_flags(
    components: list[str], args: list[str], env: dict[str, str], tmp_path: Path
) -> None:
    c = _vllm_container(components, tmp_path)
    rendered_args = list(c["args"])  # type: ignore[call-overload]
    assert rendered_args[0] == "vllm" and "--model=/models/$(MODEL_DIR)" in rendered_args
    for a in args:
        assert rendered_args.count(a) == 1, rendered_args
    rendered_env = {e["name"]: e.get("value") for e in c["env"]}  # type: ignore[attr-defined]
    assert env.items() <= rendered_env.items()
    assert "SERVED_MODEL_NAME" in rendered_env  # the overlay's own env is kept


def test_gpu_overlay_alone_has_neither() -> None:
    docs = [d for d in yaml.safe_load_all(render(K8S / "overlays" / "gpu")) if d]
    dep = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "ragserve-vllm")
    args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
    assert not any(a.startswith(("--enable-lora", "--quantization")) for a in args)
