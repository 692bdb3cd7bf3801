"""LoRA adapters at run time: validated, then loaded into or unloaded from vLLM by its own endpoints.

vLLM does the work (`/v1/load_lora_adapter`, `/v1/unload_lora_adapter`, adapters listed in its
`/v1/models` with `parent`, selected per request by `model`). This layer adds what a shared service
needs in front of it: admin-only access (in the router), checks that turn a bad request into a clear
400 before the engine sees it (the directory and `adapter_config.json` exist, the rank fits
`--max-lora-rank`, the name does not shadow the base model, an embedder or a `rag/` model), errors
in OpenAI's envelope, and, for the embedded engine, memory of what was loaded so that a restarted
engine comes back with the same adapters.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.engine.client import EngineClient
from service.engine.supervisor import LoraLaunch
from service.errors import APIError, BadRequest, Conflict, NotFound
from service.observability.metrics import Metrics
from service.settings import Settings

logger = logging.getLogger("ragserve.lora")

NAME_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._:-]{0,127}\Z")


@dataclass(frozen=True)
class AdapterInfo:
    """What `adapter_config.json` says about an adapter that matters for serving it."""

    rank: int
    target_modules: list[str]
    base_model: str | None


def inspect_adapter(path: Path, *, max_rank: int) -> AdapterInfo:
    """Read and check an adapter directory; BadRequest (param `lora_path`) with the reason otherwise."""
    if not path.exists():
        raise BadRequest(f"lora_path {path} does not exist", param="lora_path", code="adapter_not_found")
    if not path.is_dir():
        raise BadRequest(
            f"lora_path {path} is not a directory (a PEFT adapter directory is expected)",
            param="lora_path", code="invalid_adapter",
        )  # fmt: skip
    cfg_file = path / "adapter_config.json"
    try:
        cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BadRequest(
            f"{path} has no adapter_config.json: not a PEFT LoRA adapter", param="lora_path",
            code="invalid_adapter",
        ) from exc  # fmt: skip
    except (OSError, ValueError) as exc:
        raise BadRequest(
            f"{cfg_file} is not readable JSON ({exc})", param="lora_path", code="invalid_adapter"
        ) from exc
    if not isinstance(cfg, dict):
        raise BadRequest(f"{cfg_file} must hold a JSON object", param="lora_path", code="invalid_adapter")
    peft_type = str(cfg.get("peft_type") or "LORA").upper()
    if peft_type != "LORA":
        raise BadRequest(
            f"{path} is a {peft_type} adapter; only LoRA adapters are served", param="lora_path",
            code="invalid_adapter",
        )  # fmt: skip
    if cfg.get("use_dora"):
        raise BadRequest("DoRA adapters are not served by vLLM", param="lora_path", code="invalid_adapter")
    if not any((path / f).is_file() for f in ("adapter_model.safetensors", "adapter_model.bin")):
        raise BadRequest(
            f"{path} has no adapter_model.safetensors (or .bin) with the weights", param="lora_path",
            code="invalid_adapter",
        )  # fmt: skip
    ranks = [cfg.get("r"), *(cfg.get("rank_pattern") or {}).values()]
    try:
        rank = max(int(r) for r in ranks if r is not None)
    except ValueError as exc:
        raise BadRequest(f"{cfg_file} gives no rank `r`", param="lora_path", code="invalid_adapter") from exc
    if rank > max_rank:
        raise BadRequest(
            f"the adapter's rank {rank} exceeds the engine's max_lora_rank {max_rank}; raise "
            "engine.lora.max_lora_rank (RAGSERVE_ENGINE__LORA__MAX_LORA_RANK) and restart",
            param="lora_path", code="lora_rank_too_large",
        )  # fmt: skip
    targets = cfg.get("target_modules") or []
    return AdapterInfo(
        rank=rank,
        target_modules=[str(t) for t in targets] if isinstance(targets, list) else [str(targets)],
        base_model=str(cfg["base_model_name_or_path"]) if cfg.get("base_model_name_or_path") else None,
    )


def resolve_path(raw: str) -> Path:
    return Path(raw).expanduser().absolute()


class LoraAdapters:
    """Checks and relays adapter loads and unloads; remembers them for the embedded engine's restarts."""

    def __init__(
        self,
        *,
        settings: Settings,
        engine: EngineClient,
        metrics: Metrics,
        launch: LoraLaunch | None,
        reserved_names: set[str],
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.metrics = metrics
        self.launch = launch  # embedded engine: the live --lora-modules mapping (None: remote or off)
        self.reserved = reserved_names

    @property
    def embedded(self) -> bool:
        return self.settings.engine.mode == "embedded"

    @property
    def base_model(self) -> str:
        return self.settings.engine.served_model_name

    def _check_enabled(self) -> None:
        cfg = self.settings.engine.lora
        if self.embedded and not cfg.enabled:
            raise BadRequest(
                "LoRA serving is off; set engine.lora.enabled "
                "(RAGSERVE_ENGINE__LORA__ENABLED=true) and restart",
                code="lora_disabled",
            )
        if self.embedded and not cfg.runtime_updates:
            raise BadRequest(
                "loading adapters at run time is off (engine.lora.runtime_updates); declare them in "
                "engine.lora.adapters instead",
                code="lora_disabled",
            )

    def _check_name(self, name: str) -> None:
        if not NAME_RE.match(name):
            raise BadRequest(
                f"lora_name {name!r}: use 1-128 letters, digits, '.', '_', ':' or '-' (no '/')",
                param="lora_name", code="invalid_adapter_name",
            )  # fmt: skip
        if name == self.base_model or name in self.reserved or name.startswith("rag/"):
            raise BadRequest(
                f"lora_name {name!r} is taken by a model this service already serves",
                param="lora_name", code="invalid_adapter_name",
            )  # fmt: skip

    async def load(self, name: str, raw_path: str) -> dict[str, Any]:
        """Validate, then ask the engine to load; 4xx for anything wrong with the request or adapter."""
        try:
            result = await self._load(name, raw_path)
        except APIError as exc:
            self.metrics.lora_operations.labels("load", _outcome(exc)).inc()
            raise
        self.metrics.lora_operations.labels("load", "ok").inc()
        return result

    async def _load(self, name: str, raw_path: str) -> dict[str, Any]:
        self._check_enabled()
        self._check_name(name)
        if not raw_path.strip():
            raise BadRequest("lora_path is empty", param="lora_path", code="adapter_not_found")
        path = resolve_path(raw_path)
        info: AdapterInfo | None = None
        # A remote engine reads the path on its own file system: judge it here only when it is visible.
        if self.embedded or path.exists():
            info = inspect_adapter(path, max_rank=self.settings.engine.lora.max_lora_rank)
        if await self._listed(name):
            raise Conflict(
                f"an adapter named {name!r} is already loaded; unload it first or choose another name",
                param="lora_name", code="adapter_exists",
            )  # fmt: skip
        try:
            message = await self.engine.post_text(
                "/v1/load_lora_adapter", {"lora_name": name, "lora_path": str(path)}
            )
        except APIError as exc:
            raise self._engine_error(exc, name=name, path=path) from exc
        if self.launch is not None:
            self.launch.modules[name] = str(path)
        logger.info("LoRA adapter %s loaded from %s (rank %s)", name, path, info.rank if info else "?")
        return {
            "id": name,
            "object": "lora_adapter",
            "parent": self.base_model,
            "root": str(path),
            "rank": info.rank if info else None,
            "target_modules": info.target_modules if info else None,
            "status": "loaded",
            "message": message.strip(),
        }

    async def unload(self, name: str) -> dict[str, Any]:
        try:
            result = await self._unload(name)
        except APIError as exc:
            self.metrics.lora_operations.labels("unload", _outcome(exc)).inc()
            raise
        self.metrics.lora_operations.labels("unload", "ok").inc()
        return result

    async def _unload(self, name: str) -> dict[str, Any]:
        self._check_enabled()
        if name == self.base_model or name in self.reserved or name.startswith("rag/"):
            raise BadRequest(
                f"{name!r} is not a LoRA adapter and cannot be unloaded", param="lora_name",
                code="invalid_adapter_name",
            )  # fmt: skip
        try:
            message = await self.engine.post_text("/v1/unload_lora_adapter", {"lora_name": name})
        except APIError as exc:
            raise self._engine_error(exc, name=name, path=None) from exc
        if self.launch is not None:
            self.launch.modules.pop(name, None)
        logger.info("LoRA adapter %s unloaded", name)
        return {"id": name, "object": "lora_adapter", "status": "unloaded", "message": message.strip()}

    async def _listed(self, name: str) -> bool:
        data = await self.engine.get_json("/v1/models")
        return any(m.get("id") == name for m in data.get("data", []))

    def _engine_error(self, exc: APIError, *, name: str, path: Path | None) -> APIError:
        """vLLM's answers, in our terms: the engine stays up, the client learns what was wrong."""
        text = exc.message
        if exc.status_code == 404 and "Not Found" in text:  # no such route: runtime loading is off
            return BadRequest(
                "the engine does not accept adapters at run time (start vLLM with --enable-lora and "
                "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True)",
                code="lora_disabled",
            )
        if path is None and exc.status_code == 404:
            return NotFound(
                f"no LoRA adapter named {name!r} is loaded", param="lora_name", code="adapter_not_found"
            )
        if path is not None and exc.status_code == 404:
            return BadRequest(
                f"the engine found no adapter at {path}", param="lora_path", code="adapter_not_found"
            )
        if path is not None and exc.status_code in (400, 500, 502):
            if "already been loaded" in text:
                return Conflict(
                    f"an adapter named {name!r} is already loaded", param="lora_name", code="adapter_exists"
                )
            if "conflicts with a served base model" in text:
                return BadRequest(text, param="lora_name", code="invalid_adapter_name")
            # vLLM answers 500 when its worker cannot read the weights; the engine itself stays up.
            detail = text.removeprefix("engine error: ")
            return BadRequest(
                f"the engine could not load adapter {name!r} from {path}: {detail}",
                param="lora_path", code="invalid_adapter",
            )  # fmt: skip
        return exc


def _outcome(exc: APIError) -> str:
    return "rejected" if 400 <= exc.status_code < 500 else "failed"


def launch_from_settings(settings: Settings) -> LoraLaunch | None:
    """The supervisor's LoRA flags; configured adapters that fail the checks are left out (logged)."""
    cfg = settings.engine.lora
    if not cfg.enabled:
        return None
    modules: dict[str, str] = {}
    for name, raw in cfg.adapters.items():
        path = resolve_path(raw)
        try:
            inspect_adapter(path, max_rank=cfg.max_lora_rank)
        except APIError as exc:
            logger.error("LoRA adapter %s is not served: %s", name, exc.message)
            continue
        modules[name] = str(path)
    return LoraLaunch(
        modules=modules,
        max_loras=cfg.max_loras,
        max_lora_rank=cfg.max_lora_rank,
        max_cpu_loras=cfg.max_cpu_loras,
        runtime_updates=cfg.runtime_updates,
    )
