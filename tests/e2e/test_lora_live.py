"""LoRA on the real engine: a gateway whose vLLM runs with --enable-lora and runtime loading.

Its own server (LoRA changes vLLM's flags), started once for this module after test_live.py has
stopped the shared one. The adapter is a deterministic random-init rank-8 LoRA on q/v made by
deploy/lora/adapters.py: enough to change greedy output without training one here.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from tests.conftest import REPO
from tests.e2e.conftest import LiveServer, launch_live_server

pytestmark = pytest.mark.engine

MODEL = "smollm2-135m-instruct"
ADMIN = "lora-e2e-admin-0123456789-Qz7Wp2Rx4Lm9"
USER = "lora-e2e-user-0123456789-Qz7Wp2Rx4Lm9"
SCRAPER = "lora-e2e-scrape-0123456789-Qz7Wp2Rx4Lm9"  # /metrics needs the `metrics` permission
QUESTION = [{"role": "user", "content": "What is Kubernetes? Answer in one sentence."}]


@pytest.fixture(scope="module")
def adapters(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from deploy.lora.adapters import make_random_adapter

    root = tmp_path_factory.mktemp("adapters")
    static = make_random_adapter(REPO / "var" / "models" / MODEL, root / "static", rank=8, seed=1, std=0.08)
    runtime = root / "runtime"
    shutil.copytree(static, runtime)
    broken = root / "broken"
    shutil.copytree(static, broken)
    weights = broken / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # a truncated download, say
    big = root / "big"
    shutil.copytree(static, big)
    cfg = json.loads((big / "adapter_config.json").read_text())
    (big / "adapter_config.json").write_text(json.dumps({**cfg, "r": 64}))
    return {"static": static, "runtime": runtime, "broken": broken, "big": big}


@pytest.fixture(scope="module")
def lora_server(adapters: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp("lora-live")
    keys = [
        {"name": "admin", "key": ADMIN, "role": "admin", "collections": ["*"]},
        {"name": "ops", "key": USER, "role": "user", "collections": ["*"]},
        {"name": "scraper", "key": SCRAPER, "role": "user", "permissions": ["metrics"]},
    ]
    (data_dir / "keys.yaml").write_text(yaml.safe_dump(keys))
    with launch_live_server(
        data_dir,
        RAGSERVE_AUTH_KEYS_FILE=str(data_dir / "keys.yaml"),
        RAGSERVE_ENGINE__LORA__ENABLED="true",
        RAGSERVE_ENGINE__LORA__ADAPTERS=json.dumps({"ops-static": str(adapters["static"])}),
        RAGSERVE_ENGINE__LORA__MAX_LORA_RANK="16",
    ) as server:
        yield server


def _client(server: LiveServer, key: str = ADMIN) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.v1, api_key=key, timeout=120, max_retries=0)


def _answer(server: LiveServer, model: str, **extra: Any) -> str:
    r = _client(server, USER).chat.completions.create(
        model=model,
        messages=QUESTION,
        max_tokens=24,
        temperature=0,
        **extra,  # type: ignore[arg-type]
    )
    return r.choices[0].message.content or ""


def _post(server: LiveServer, path: str, body: dict[str, Any], key: str = ADMIN) -> httpx.Response:
    return httpx.post(server.v1 + path, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=120)


def test_configured_adapter_is_listed_with_its_parent_and_changes_the_output(lora_server: LiveServer) -> None:
    models = {m.id: m for m in _client(lora_server, USER).models.list().data}
    assert models["ops-static"].model_extra["parent"] == MODEL  # type: ignore[index]
    base, adapted = _answer(lora_server, MODEL), _answer(lora_server, "ops-static")
    assert base and adapted and base != adapted, (base, adapted)
    assert _answer(lora_server, "ops-static") == adapted  # greedy: the adapter, not noise


def test_adapter_with_rag_field_answers_with_citations(lora_server: LiveServer) -> None:
    r = _client(lora_server, USER).chat.completions.create(
        model="ops-static",
        messages=[{"role": "user", "content": "What does exit code 137 mean for a pod?"}],
        max_tokens=48, temperature=0,
        extra_body={"rag": {"collection": "default", "top_k": 2}},
    )  # fmt: skip
    assert r.model == "ops-static"
    citations = r.model_extra["citations"]  # type: ignore[index]
    assert citations and citations[0]["document_id"] == "runbooks/pod-oomkilled.md"
    scrape = {"Authorization": f"Bearer {SCRAPER}"}
    metrics = httpx.get(lora_server.url + "/metrics", headers=scrape, timeout=10).text
    assert 'ragserve_generation_tokens_total{model="ops-static"}' in metrics


def test_runtime_load_select_unload_with_admin_key_only(
    lora_server: LiveServer, adapters: dict[str, Path]
) -> None:
    body = {"lora_name": "ops-runtime", "lora_path": str(adapters["runtime"])}
    r = _post(lora_server, "/load_lora_adapter", body, key=USER)
    assert r.status_code == 403 and r.json()["error"]["type"] == "permission_error"
    r = _post(lora_server, "/load_lora_adapter", body)
    assert r.status_code == 200, r.text
    assert r.json()["parent"] == MODEL and r.json()["rank"] == 8
    ids = {m.id for m in _client(lora_server, USER).models.list().data}
    assert "ops-runtime" in ids
    # Same weights as ops-static under another name: the same greedy answer.
    assert _answer(lora_server, "ops-runtime") == _answer(lora_server, "ops-static")
    assert _post(lora_server, "/load_lora_adapter", body).status_code == 409
    assert _post(lora_server, "/unload_lora_adapter", {"lora_name": "ops-runtime"}).status_code == 200
    with pytest.raises(openai.NotFoundError):
        _answer(lora_server, "ops-runtime")
    r = _post(lora_server, "/unload_lora_adapter", {"lora_name": "ops-runtime"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "adapter_not_found"


def test_broken_unknown_and_oversized_adapters_get_4xx_and_the_engine_stays_up(
    lora_server: LiveServer, adapters: dict[str, Path], tmp_path: Path
) -> None:
    cases = [
        ("broken", str(adapters["broken"]), "invalid_adapter"),  # the engine's worker refuses it
        ("big", str(adapters["big"]), "lora_rank_too_large"),
        ("nowhere", str(tmp_path / "nowhere"), "adapter_not_found"),
    ]
    for name, path, code in cases:
        r = _post(lora_server, "/load_lora_adapter", {"lora_name": name, "lora_path": path})
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == code, r.text
    assert httpx.get(lora_server.url + "/readyz", timeout=10).status_code == 200
    assert _answer(lora_server, "ops-static")  # adapters still served
    assert "broken" not in {m.id for m in _client(lora_server, USER).models.list().data}
