"""A scripted OpenAI-compatible streaming server on a free loopback port: real HTTP, fake engine."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class FakeEngineScript:
    """What the fake server streams: `tokens` content chunks, `delay_s` apart."""

    tokens: int = 5
    delay_s: float = 0.003
    tokens_per_chunk: int = 1
    send_usage: bool = True
    fail_every: int = 0  # every n-th chat request (1-based) gets HTTP 500
    truncate_every: int = 0  # every n-th chat request ends without [DONE]
    models: list[str] = field(default_factory=lambda: ["rag/default", "fake-model"])
    bodies: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _FakeServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _json(self, status: int, doc: Any) -> None:
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _chunk(self, text: str) -> None:
        data = text.encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def do_GET(self) -> None:
        if self.path == "/v1/models":
            script = self.server.script
            self._json(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in script.models]})
        else:
            self._json(
                404, {"error": {"message": "not found", "type": "not_found", "param": None, "code": 404}}
            )

    def do_POST(self) -> None:
        script = self.server.script
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with script.lock:
            script.bodies.append(body)
            n = len(script.bodies)
        if self.path != "/v1/chat/completions":
            self._json(404, {"error": {"message": "not found", "type": "x", "param": None, "code": 404}})
            return
        if script.fail_every and n % script.fail_every == 0:
            self._json(
                500,
                {"error": {"message": "engine exploded", "type": "server_error", "param": None, "code": 500}},
            )
            return
        max_tokens = int(body.get("max_tokens") or script.tokens)
        tokens = max_tokens if body.get("ignore_eos") else min(script.tokens, max_tokens)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        base = {
            "id": f"chatcmpl-{n}",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": body["model"],
        }

        def event(doc: dict[str, Any]) -> None:
            self._chunk(f"data: {json.dumps({**base, **doc})}\n\n")

        event(
            {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}
        )
        sent = 0
        while sent < tokens:
            k = min(script.tokens_per_chunk, tokens - sent)
            time.sleep(script.delay_s)
            event({"choices": [{"index": 0, "delta": {"content": " tok" * k}, "finish_reason": None}]})
            sent += k
        if script.truncate_every and n % script.truncate_every == 0:
            self._chunk("")  # end the chunked body without [DONE]
            return
        event({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]})
        if script.send_usage:
            usage = {"prompt_tokens": 7, "completion_tokens": tokens, "total_tokens": 7 + tokens}
            event({"choices": [], "usage": usage})
        self._chunk(": keep-alive comment\n\ndata: [DONE]\n\n")
        self._chunk("")


class _FakeServer(ThreadingHTTPServer):
    daemon_threads = True
    script: FakeEngineScript


@dataclass
class FakeOpenAIServer:
    url: str
    script: FakeEngineScript


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAIServer]:
    server = _FakeServer(("127.0.0.1", 0), _Handler)
    server.script = FakeEngineScript()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    try:
        yield FakeOpenAIServer(url=f"http://{host}:{port}", script=server.script)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
