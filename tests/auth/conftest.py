"""Gateways with API keys, over real HTTP, each in front of its own scripted fake engine.

Collections: `runbooks` (what the user keys may read) and `finance` (admin only), whose one
document carries a marker string that must never reach a user key, nor the engine on its behalf.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.utils.fake_vllm import MODEL, FakeVLLM
from tests.utils.gateway import METRICS_KEY_ENTRY, remote_settings, serve_gateway, write_corpus
from tests.utils.gateway import Gateway as BaseGateway
from tests.utils.servers import free_port, serve_in_thread

SECRET = "PLUTONIUM-LEDGER-7731"
ADMIN_KEY = "admin-key-0123456789-Qz7Wp2Rx4Lm9"
OPS_KEY = "ops-key-0123456789-Qz7Wp2Rx4Lm9"  # user, runbooks only
FIN_ADMIN_KEY = "fin-admin-key-0123456789-Qz7Wp2Rx4Lm9"  # admin, finance only

CORPUS = {
    "runbooks": {
        "oom.md": "# OOMKilled\n\nA container exceeded its memory limit and the kernel killed it with "
        "exit code 137. Check `kubectl describe pod` for Reason: OOMKilled.\n",
        "disk.md": "# Disk full\n\nRemove unused container images with `crictl rmi --prune` and "
        "configure log rotation for the runtime.\n",
    },
    "finance": {
        "budget.md": f"# Budget\n\nThe quarterly budget for memory upgrades is kept in ledger {SECRET}. "
        "Containers killed with exit code 137 cost the company money.\n",
    },
}


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def base_keys() -> list[dict[str, Any]]:
    return [
        {"name": "admin", "key_sha256": sha(ADMIN_KEY), "role": "admin", "collections": ["*"]},
        {"name": "ops", "key_sha256": sha(OPS_KEY), "role": "user", "collections": ["runbooks"]},
        {"name": "fin-admin", "key": FIN_ADMIN_KEY, "role": "admin", "collections": ["finance"]},
        dict(METRICS_KEY_ENTRY),
    ]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class Gateway(BaseGateway):
    keys_file: Path | None

    def write_keys(self, keys: list[dict[str, Any]]) -> None:
        assert self.keys_file is not None
        tmp = self.keys_file.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(keys), encoding="utf-8")
        tmp.replace(self.keys_file)  # atomic, as an operator's config management would do

    def chat(self, key: str | None, body: dict[str, Any], **kw: Any) -> httpx.Response:
        headers = bearer(key) if key else {}
        kw.setdefault("timeout", 30)
        return httpx.post(self.v1 + "/chat/completions", json=body, headers=headers, **kw)


def hello(max_tokens: int = 8, **extra: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": max_tokens,
        **extra,
    }


@pytest.fixture(scope="session")
def collections_dir(shared_embedder: object, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two collections, ingested once; each gateway gets a copy."""
    from ingest.knowledge_base import KnowledgeBase

    root = tmp_path_factory.mktemp("auth-corpus")
    kb_dir = tmp_path_factory.mktemp("auth-collections")
    kb = KnowledgeBase(kb_dir, shared_embedder)  # type: ignore[arg-type]
    for collection, files in CORPUS.items():
        kb.ingest_paths(collection, [write_corpus(root / collection, files)])
    return kb_dir


GatewayFactory = Callable[..., Gateway]


@pytest.fixture
def start_gateway(shared_embedder: object, collections_dir: Path, tmp_path: Path) -> Iterator[GatewayFactory]:
    """`start_gateway(keys=[...] | None, **settings)`: a fresh gateway and fake engine for one test."""
    with ExitStack() as stack:
        count = 0

        def start(keys: list[dict[str, Any]] | None = None, **overrides: Any) -> Gateway:
            nonlocal count
            count += 1
            fake = FakeVLLM()
            engine_url = stack.enter_context(serve_in_thread(fake.app, ready_path="/health"))
            data_dir = tmp_path / f"gw{count}"
            shutil.copytree(collections_dir, data_dir / "collections")
            keys_file = None
            if keys is not None:
                keys_file = tmp_path / f"keys{count}.yaml"
                keys_file.write_text(yaml.safe_dump(keys), encoding="utf-8")
            overrides.setdefault("auth", {})
            overrides["auth"] = {"reload_check_s": 0, **overrides["auth"]}
            settings = remote_settings(
                data_dir, engine_url, default_collection="runbooks", auth_keys_file=keys_file, **overrides
            )
            url, _app = stack.enter_context(serve_gateway(settings, shared_embedder))
            return Gateway(url=url, fake=fake, settings=settings, keys_file=keys_file)

        yield start


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free loopback port, for the session (Debian package redis-server)."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed: apt-get install redis-server (make test does it)")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
