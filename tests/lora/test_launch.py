"""How settings become vLLM's command line: LoRA flags, the runtime-loading switch, quantization."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.engine.lora import launch_from_settings
from service.engine.supervisor import default_launch_spec
from service.settings import Settings
from tests.lora.conftest import write_adapter


def _spec(settings: Settings) -> list[str]:
    eng = settings.engine
    spec = default_launch_spec(
        model_path="/models/base", served_model_name=eng.served_model_name, dtype="float32",
        max_model_len=2048, port=1234, enforce_eager=True, max_num_seqs=8, kv_cache_space_gib=1,
        tool_call_parser=None, extra_args=[], quantization=eng.quantization,
        lora=launch_from_settings(settings),
    )  # fmt: skip
    return spec.argv() + [f"ENV={k}" for k, v in spec.environment().items() if k.startswith("VLLM_ALLOW")]


def test_lora_off_by_default_and_no_quantization_flag() -> None:
    argv = _spec(Settings())
    assert "--enable-lora" not in argv and "--quantization" not in argv
    assert not any(a.startswith("ENV=") for a in argv)


def test_lora_settings_from_the_environment_become_vllm_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    good = write_adapter(tmp_path / "ops")
    too_big = write_adapter(tmp_path / "big", rank=64)
    monkeypatch.setenv("RAGSERVE_ENGINE__LORA__ENABLED", "true")
    monkeypatch.setenv("RAGSERVE_ENGINE__LORA__ADAPTERS", f'{{"ops": "{good}", "big": "{too_big}"}}')
    monkeypatch.setenv("RAGSERVE_ENGINE__LORA__MAX_LORAS", "3")
    monkeypatch.setenv("RAGSERVE_ENGINE__LORA__MAX_LORA_RANK", "32")
    monkeypatch.setenv("RAGSERVE_ENGINE__LORA__MAX_CPU_LORAS", "6")
    monkeypatch.setenv("RAGSERVE_ENGINE__QUANTIZATION", "compressed-tensors")
    argv = _spec(Settings())
    i = argv.index("--enable-lora")
    assert argv[i : i + 7] == [
        "--enable-lora",
        "--max-loras",
        "3",
        "--max-lora-rank",
        "32",
        "--max-cpu-loras",
        "6",
    ]
    # The rank-64 adapter exceeds max_lora_rank: it is left out (and logged) instead of failing the engine.
    assert argv[argv.index("--lora-modules") + 1 :][:1] == [f"ops={good}"]
    assert not any(a.startswith("big=") for a in argv)
    assert any("big is not served" in r.getMessage() for r in caplog.records)
    assert argv[argv.index("--quantization") + 1] == "compressed-tensors"
    assert "ENV=VLLM_ALLOW_RUNTIME_LORA_UPDATING" in argv


def test_runtime_updates_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGSERVE_ENGINE__LORA__ENABLED", "true")
    monkeypatch.setenv("RAGSERVE_ENGINE__LORA__RUNTIME_UPDATES", "false")
    argv = _spec(Settings())
    assert "--enable-lora" in argv and "--lora-modules" not in argv
    assert "ENV=VLLM_ALLOW_RUNTIME_LORA_UPDATING" not in argv


@pytest.mark.parametrize(("key", "value"), [("MAX_LORA_RANK", "12"), ("ADAPTERS", '{"a/b": "/x"}')])
def test_bad_lora_settings_are_refused(monkeypatch: pytest.MonkeyPatch, key: str, value: str) -> None:
    monkeypatch.setenv(f"RAGSERVE_ENGINE__LORA__{key}", value)
    with pytest.raises(ValueError):
        Settings()


async def test_runtime_loads_are_remembered_for_an_engine_restart(tmp_path: Path) -> None:
    """The embedded engine forgets runtime loads when it dies; the supervisor's next start carries them."""
    from service.engine.client import EngineClient
    from service.engine.lora import LoraAdapters
    from service.engine.supervisor import LoraLaunch
    from service.observability.metrics import Metrics
    from tests.utils.fake_vllm import MODEL, FakeVLLM
    from tests.utils.servers import serve_in_thread

    class Ready:
        ready, state = True, "ready"

    fake = FakeVLLM()
    settings = Settings(engine={"mode": "embedded", "served_model_name": MODEL, "lora": {"enabled": True}})
    launch = LoraLaunch(modules={})
    adapter = write_adapter(tmp_path / "ops")
    with serve_in_thread(fake.app, ready_path="/health") as url:
        client = EngineClient(url, health=Ready())
        lora = LoraAdapters(
            settings=settings, engine=client, metrics=Metrics(), launch=launch, reserved_names=set()
        )
        await lora.load("ops", str(adapter))
        assert launch.argv()[-2:] == ["--lora-modules", f"ops={adapter}"]
        await lora.unload("ops")
        assert "--lora-modules" not in launch.argv()
        await client.aclose()
