"""Runs vLLM's own OpenAI-compatible server as a supervised child process on loopback.

The gateway then reaches it over HTTP exactly as it reaches a remote vLLM deployment, so the
embedded default and the scaled-out shape share one code path. The supervisor restarts the
child when it dies (with backoff, a bounded number of times), stops it on shutdown, forwards
its log lines, and makes sure it dies with the gateway (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

logger = logging.getLogger("ragserve.engine")
vllm_logger = logging.getLogger("ragserve.vllm")


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Ask the kernel to SIGTERM the child when the gateway dies, even by SIGKILL."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    os.setsid()  # own process group: the whole vLLM tree is signalled together


@dataclass
class LoraLaunch:
    """vLLM's LoRA flags: --enable-lora, the limits, and the adapters to load at start."""

    modules: dict[str, str] = field(default_factory=dict)  # name -> adapter directory
    max_loras: int = 2
    max_lora_rank: int = 16
    max_cpu_loras: int | None = None
    runtime_updates: bool = True  # VLLM_ALLOW_RUNTIME_LORA_UPDATING: /v1/(un)load_lora_adapter

    def argv(self) -> list[str]:
        args = ["--enable-lora", "--max-loras", str(self.max_loras)]
        args += ["--max-lora-rank", str(self.max_lora_rank)]
        if self.max_cpu_loras is not None:
            args += ["--max-cpu-loras", str(self.max_cpu_loras)]
        if self.modules:
            args += ["--lora-modules", *(f"{name}={path}" for name, path in self.modules.items())]
        return args


@dataclass
class VLLMLaunchSpec:
    """Everything needed to start `vllm serve` for one model."""

    model: str
    served_model_name: str
    dtype: str
    max_model_len: int
    port: int
    enforce_eager: bool = True
    max_num_seqs: int = 64
    kv_cache_space_gib: int = 2
    tool_call_parser: str | None = None
    quantization: str | None = None
    # LoRA: None keeps it off. The mapping is live: adapters loaded at run time are added to it, so a
    # restarted engine comes back with them (vLLM forgets runtime loads when its process dies).
    lora: LoraLaunch | None = None
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    # VLLM_CPU_OMP_THREADS_BIND (None: vLLM's default, or whatever the environment says).
    cpu_threads_bind: str | None = None
    # The key vLLM demands on /v1/* (its --api-key), handed over in VLLM_API_KEY: the environment of
    # a process is readable by its user only, its command line by every local user.
    api_key: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        args = [
            sys.executable, "-m", "vllm.entrypoints.openai.api_server",
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--model", self.model,
            "--served-model-name", self.served_model_name,
            "--dtype", self.dtype,
            "--max-model-len", str(self.max_model_len),
            "--max-num-seqs", str(self.max_num_seqs),
            "--disable-uvicorn-access-log",
            "--uvicorn-log-level", "warning",
        ]  # fmt: skip
        if self.enforce_eager:
            args.append("--enforce-eager")
        if self.tool_call_parser:
            args += ["--enable-auto-tool-choice", "--tool-call-parser", self.tool_call_parser]
        if self.quantization:
            args += ["--quantization", self.quantization]
        if self.lora is not None:
            args += self.lora.argv()
        return args + list(self.extra_args)

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("HF_HUB_OFFLINE", "1")
        env.setdefault("TRANSFORMERS_OFFLINE", "1")
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(self.kv_cache_space_gib))
        env.setdefault("VLLM_NO_USAGE_STATS", "1")
        env.setdefault("DO_NOT_TRACK", "1")
        env.setdefault("PYTHONUNBUFFERED", "1")
        if self.lora is not None and self.lora.runtime_updates:
            env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = "True"
        if self.cpu_threads_bind is not None:
            env.setdefault("VLLM_CPU_OMP_THREADS_BIND", self.cpu_threads_bind)
        env.update(self.env)
        env.pop("VLLM_API_KEY", None)  # never one inherited from the gateway's environment
        if self.api_key:
            env["VLLM_API_KEY"] = self.api_key
        return env


class VLLMSupervisor:
    """Starts, watches and restarts one vLLM server process."""

    def __init__(
        self,
        spec: VLLMLaunchSpec,
        *,
        startup_timeout_s: float = 600.0,
        restart_backoff_s: float = 2.0,
        max_restarts: int = 5,
        on_state_change: Callable[[str], None] | None = None,
    ) -> None:
        self.spec = spec
        self.startup_timeout_s = startup_timeout_s
        self.restart_backoff_s = restart_backoff_s
        self.max_restarts = max_restarts
        self.probe_interval_s = 5.0
        self.probe_timeout_s = 10.0
        self.hang_kill_s = 120.0
        self.restarts = 0
        self.state = "stopped"
        self.last_error: str | None = None
        self.started_at: float | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._log_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._ready = asyncio.Event()
        self._on_state_change = on_state_change

    @property
    def url(self) -> str:
        return self.spec.url

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def _set_state(self, state: str) -> None:
        if state != self.state:
            logger.info("engine state: %s -> %s", self.state, state)
            self.state = state
            if self._on_state_change:
                self._on_state_change(state)

    async def start(self) -> None:
        """Spawn the child and return at once; `wait_ready()` waits for it to answer."""
        self._stopping = False
        await self._spawn()
        self._watch_task = asyncio.create_task(self._watch(), name="vllm-watch")

    async def _spawn(self) -> None:
        self._ready.clear()
        self._set_state("starting")
        logger.info("starting vLLM: %s", " ".join(self.spec.argv()))
        self._proc = await asyncio.create_subprocess_exec(
            *self.spec.argv(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=self.spec.environment(),
            preexec_fn=_die_with_parent,
        )
        self.started_at = time.monotonic()
        self._log_task = asyncio.create_task(self._forward_logs(self._proc), name="vllm-logs")

    async def _forward_logs(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while True:
            line = await proc.stdout.readline()
            if not line:
                return
            text = line.decode("utf-8", errors="replace").rstrip()
            if text:
                vllm_logger.info("%s", text)
                if "Error" in text or "error" in text:
                    self.last_error = text[-500:]

    async def _wait_healthy(self, proc: asyncio.subprocess.Process) -> bool:
        deadline = time.monotonic() + self.startup_timeout_s
        async with httpx.AsyncClient(timeout=5.0) as client:
            while time.monotonic() < deadline:
                if proc.returncode is not None:
                    return False
                with contextlib.suppress(httpx.HTTPError):
                    r = await client.get(f"{self.url}/health")
                    if r.status_code == 200:
                        return True
                await asyncio.sleep(1.0)
        self.last_error = f"vLLM did not become healthy within {self.startup_timeout_s:.0f} s"
        return False

    async def _watch(self) -> None:
        """Wait for health, then for exit; restart on unexpected exits."""
        while not self._stopping:
            proc = self._proc
            assert proc is not None
            healthy = await self._wait_healthy(proc)
            if healthy and not self._stopping:
                assert self.started_at is not None
                logger.info("vLLM ready at %s after %.1f s", self.url, time.monotonic() - self.started_at)
                self._set_state("ready")
                self._ready.set()
                await self._watch_running(proc)
            elif not self._stopping and proc.returncode is None:
                # Alive but never healthy: kill it so the restart below starts clean.
                await self._terminate(proc)
            rc = await proc.wait()
            if self._log_task:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._log_task, timeout=2)
            self._ready.clear()
            if self._stopping:
                break
            if healthy and self._stable():
                self.restarts = 0  # it ran fine for a while: this is a fresh failure, not a crash loop
            self.last_error = f"vLLM exited with code {rc}" + (
                f" ({self.last_error})" if self.last_error else ""
            )
            logger.error("%s", self.last_error)
            if self.restarts >= self.max_restarts:
                self._set_state("failed")
                logger.error("vLLM failed %d times; giving up (see the log above)", self.restarts + 1)
                return
            self.restarts += 1
            self._set_state("restarting")
            await asyncio.sleep(self.restart_backoff_s * self.restarts)
            if self._stopping:
                break
            await self._spawn()

    async def _watch_running(self, proc: asyncio.subprocess.Process) -> None:
        """Until the process exits: probe /health so a hung engine also turns readiness off.

        A few failed probes in a row mark it unhealthy (requests get 503 at once instead of
        waiting); a hang that lasts `hang_kill_s` gets the process killed and restarted.
        """
        failures = 0
        unhealthy_since: float | None = None
        async with httpx.AsyncClient(timeout=self.probe_timeout_s) as client:
            while proc.returncode is None and not self._stopping:
                try:
                    await asyncio.wait_for(proc.wait(), timeout=self.probe_interval_s)
                    return
                except TimeoutError:
                    pass
                try:
                    ok = (await client.get(f"{self.url}/health")).status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    failures, unhealthy_since = 0, None
                    if not self._ready.is_set() and not self._stopping:
                        self._set_state("ready")
                        self._ready.set()
                    continue
                failures += 1
                if failures >= 3 and self._ready.is_set():
                    logger.error("vLLM stopped answering /health; marking the engine unavailable")
                    self._ready.clear()
                    self._set_state("unhealthy")
                    unhealthy_since = time.monotonic()
                if unhealthy_since is not None and time.monotonic() - unhealthy_since > self.hang_kill_s:
                    self.last_error = f"vLLM hung for {self.hang_kill_s:.0f} s"
                    await self._terminate(proc)
                    return

    def _stable(self) -> bool:
        return self.started_at is not None and time.monotonic() - self.started_at > 60

    async def wait_ready(self, within_s: float | None = None) -> bool:
        try:
            await asyncio.wait_for(self._ready.wait(), timeout=within_s)
        except TimeoutError:
            return False
        return True

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and self._proc is not None and self._proc.returncode is None

    async def _terminate(self, proc: asyncio.subprocess.Process, grace_s: float = 15.0) -> None:
        if proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout=grace_s)
        except TimeoutError:
            logger.warning("vLLM did not stop within %.0f s; killing it", grace_s)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()

    async def stop(self) -> None:
        self._stopping = True
        self._ready.clear()
        if self._proc is not None:
            await self._terminate(self._proc)
        if self._watch_task is not None:
            self._watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._watch_task
        self._set_state("stopped")


def default_launch_spec(
    *,
    model_path: str | Path,
    served_model_name: str,
    dtype: str,
    max_model_len: int,
    port: int,
    enforce_eager: bool,
    max_num_seqs: int,
    kv_cache_space_gib: int,
    tool_call_parser: str | None,
    extra_args: list[str],
    quantization: str | None = None,
    lora: LoraLaunch | None = None,
    api_key: str | None = None,
    cpu_threads_bind: str | None = None,
) -> VLLMLaunchSpec:
    return VLLMLaunchSpec(
        api_key=api_key,
        cpu_threads_bind=cpu_threads_bind,
        model=str(model_path),
        served_model_name=served_model_name,
        dtype=dtype,
        max_model_len=max_model_len,
        port=port or free_loopback_port(),
        enforce_eager=enforce_eager,
        max_num_seqs=max_num_seqs,
        kv_cache_space_gib=kv_cache_space_gib,
        tool_call_parser=tool_call_parser,
        quantization=quantization,
        lora=lora,
        extra_args=extra_args,
    )
