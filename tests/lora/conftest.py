"""A gateway with API keys (real HTTP, real embedder and index) in front of the scripted fake engine,
and adapter directories written by the tests themselves (PEFT's file layout, tiny weights)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml
from safetensors.numpy import save_file

from tests.utils.fake_vllm import FakeVLLM
from tests.utils.gateway import METRICS_KEY_ENTRY, Gateway, remote_settings, serve_gateway, write_corpus
from tests.utils.servers import serve_in_thread

ADMIN_KEY = "lora-admin-key-0123456789-Qz7Wp2Rx4Lm9"
USER_KEY = "lora-user-key-0123456789-Qz7Wp2Rx4Lm9"

RUNBOOK = (
    "# OOMKilled\n\nA container exceeded its memory limit and the kernel killed it with exit code 137. "
    "Check `kubectl describe pod` for Reason: OOMKilled and raise the memory limit.\n"
)


@dataclass
class LoraGateway(Gateway):
    def post(self, path: str, body: dict[str, Any], key: str | None = ADMIN_KEY) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.post(self.v1 + path, json=body, headers=headers, timeout=30)


def write_adapter(
    path: Path, *, rank: int = 8, config: dict[str, Any] | None = None, weights: bool = True
) -> Path:
    """An adapter directory as PEFT writes it: adapter_config.json and adapter_model.safetensors."""
    path.mkdir(parents=True, exist_ok=True)
    cfg = {"peft_type": "LORA", "r": rank, "lora_alpha": 16, "target_modules": ["q_proj", "v_proj"],
           "base_model_name_or_path": "smollm2-135m-instruct"}  # fmt: skip
    cfg.update(config or {})
    (path / "adapter_config.json").write_text(json.dumps(cfg), encoding="utf-8")
    if weights:
        rng = np.random.default_rng(0)
        save_file(
            {"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight":
             rng.standard_normal((rank, 8)).astype(np.float32)},
            str(path / "adapter_model.safetensors"),
        )  # fmt: skip
    return path


@pytest.fixture(scope="module")
def lora_gateway(shared_embedder: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoraGateway]:
    fake = FakeVLLM()
    root = tmp_path_factory.mktemp("lora-gw")
    keys = [
        {"name": "admin", "key": ADMIN_KEY, "role": "admin", "collections": ["*"]},
        {"name": "ops", "key": USER_KEY, "role": "user", "collections": ["*"]},
        METRICS_KEY_ENTRY,
    ]
    (root / "keys.yaml").write_text(yaml.safe_dump(keys), encoding="utf-8")
    corpus = write_corpus(root / "corpus", {"oom.md": RUNBOOK})
    with serve_in_thread(fake.app, ready_path="/health") as engine_url:
        settings = remote_settings(
            root / "data",
            engine_url,
            engine={"lora": {"enabled": True, "max_lora_rank": 16}},
            auth_keys_file=root / "keys.yaml",
        )
        with serve_gateway(settings, shared_embedder, corpus) as (url, _app):
            yield LoraGateway(url=url, fake=fake, settings=settings)
