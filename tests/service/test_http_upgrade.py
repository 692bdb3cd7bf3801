"""`ragserve serve`'s HTTP server keeps the body of a POST that offers an HTTP/2 upgrade.

The JDK HttpClient (HTTP/2 by default) sends `Connection: Upgrade, HTTP2-Settings` and `Upgrade: h2c`
on plain http://. uvicorn's httptools parser then dropped the body and read it as the next request, so
such clients got `invalid_json: the request body is empty`. The server now runs with h11 (setting
`server.http_parser`); this test starts the real command and sends the request byte for byte.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO
from tests.utils.servers import free_port


def post_with_h2c_upgrade(port: int, path: str, body: bytes) -> tuple[int, dict[str, object]]:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
        "HTTP2-Settings: AAEAAEAAAAIAAAABAAMAAABkAAQBAAAAAAUAAEAA\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(head + body)
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(65536)
        header, _, rest = data.partition(b"\r\n\r\n")
        length = int(
            next(h.split(b":")[1] for h in header.split(b"\r\n") if h.lower().startswith(b"content-length"))
        )
        while len(rest) < length:
            rest += s.recv(65536)
    return int(header.split(b" ")[1]), json.loads(rest[:length])


@pytest.fixture(scope="module")
def gateway_port(tmp_path_factory: pytest.TempPathFactory) -> int:
    port = free_port()
    data = tmp_path_factory.mktemp("h2c")
    env = {**os.environ, "RAGSERVE_DATA_DIR": str(data), "RAGSERVE_LOG_LEVEL": "warning"}
    env.pop("RAGSERVE_AUTH_KEYS_FILE", None)
    log = Path(data) / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--port", str(port), "--no-sample-corpus",
             "--engine-url", "http://127.0.0.1:9"],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code < 600:
                    break
            except httpx.HTTPError:
                if proc.poll() is not None:
                    pytest.fail(f"ragserve serve exited: {log.read_text(errors='replace')[-2000:]}")
                time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_post_body_survives_an_h2c_upgrade_offer(gateway_port: int) -> None:
    body = json.dumps({"collection": "no-such-collection", "query": "exit code 137"}).encode()
    status, payload = post_with_h2c_upgrade(gateway_port, "/v1/retrieve", body)
    # the body was read: the error is about the collection it names, not an empty body
    assert status == 404, payload
    assert payload["error"]["code"] == "collection_not_found"  # type: ignore[index]
