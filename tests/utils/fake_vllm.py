"""A scripted stand-in for vLLM's OpenAI server, for tests where the engine is beside the point.

It speaks the same HTTP and SSE shapes as vLLM 0.32 (one id per stream, a role chunk first,
`finish_reason` only on the last choice chunk, a usage chunk with empty `choices`), and replies
from a queue of scripted answers; it records what it was sent so tests can inspect prompts.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

MODEL = "fake-model"


class FakeVLLM:
    def __init__(self, *, model: str = MODEL, max_model_len: int = 2048) -> None:
        self.model = model
        self.max_model_len = max_model_len
        self.replies: deque[str] = deque()
        self.requests: list[dict[str, Any]] = []
        self.healthy = True
        self.token_delay_s = 0.0
        self.response_delay_s = 0.0  # before a chat answer (streamed or not): a busy engine
        self.in_flight = 0  # chat requests being answered now, and the most seen at once
        self.peak_in_flight = 0
        self.cancelled_streams = 0  # streams whose client left before the end (generation aborted)
        self.cancelled_requests = 0  # non-streamed requests whose client left during response_delay_s
        # structured_outputs kinds this engine refuses with a 400 (as a backend without grammars would)
        self.refused_structured_outputs: set[str] = set()
        # Cut chat replies at max_tokens words with finish_reason "length", as an engine does (opt-in:
        # most scripts are written without a token budget in mind).
        self.cut_at_max_tokens = False
        # LoRA as vLLM with --enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING: name -> adapter path.
        self.lora_updates = True  # False: the load/unload routes do not exist (404 Not Found)
        self.adapters: dict[str, str] = {}
        self.app = self._build()

    def script(self, *replies: str) -> None:
        self.replies.extend(replies)

    def _next_reply(self) -> str:
        return self.replies.popleft() if self.replies else "Scripted answer [1]."

    def _enter(self) -> None:
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    async def _busy(self, request: Request) -> bool:
        """Take `response_delay_s` like an engine at work; False (counted) if the client left meanwhile."""
        deadline = time.monotonic() + self.response_delay_s
        while (left := deadline - time.monotonic()) > 0:
            if await request.is_disconnected():
                self.cancelled_requests += 1
                return False
            await asyncio.sleep(min(0.02, left))
        return True

    async def _watched(self, events: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """Relay a stream, counting it as cancelled when the client goes away before its end."""
        finished = False
        try:
            async for chunk in events:
                yield chunk
            finished = True
        finally:
            self.in_flight -= 1
            if not finished:
                self.cancelled_streams += 1

    @staticmethod
    def count(text: str) -> int:
        return len(text.split())

    def _error(self, status: int, message: str) -> JSONResponse:
        kind = "NotFoundError" if status == 404 else "BadRequestError"
        return JSONResponse(
            {"error": {"message": message, "type": kind, "param": None, "code": status}}, status_code=status
        )

    def _check(self, body: dict[str, Any]) -> JSONResponse | None:
        if body.get("model") != self.model and body.get("model") not in self.adapters:
            return self._error(404, f"The model `{body.get('model')}` does not exist.")
        return None

    def _build(self) -> FastAPI:
        app = FastAPI()
        fake = self

        @app.get("/health")
        async def health() -> Response:
            return Response(status_code=200 if fake.healthy else 503)

        @app.get("/v1/models")
        async def models() -> dict[str, Any]:
            return {
                "object": "list",
                "data": [
                    {
                        "id": fake.model,
                        "object": "model",
                        "created": 0,
                        "owned_by": "vllm",
                        "root": "/models/fake",
                        "parent": None,
                        "max_model_len": fake.max_model_len,
                    }
                ]
                + [
                    {"id": name, "object": "model", "created": 0, "owned_by": "vllm", "root": path,
                     "parent": fake.model, "max_model_len": None}
                    for name, path in fake.adapters.items()
                ],
            }  # fmt: skip

        @app.post("/v1/load_lora_adapter")
        async def load_lora(request: Request) -> Response:
            # vLLM's answers: 404 when no adapter is at the path, 500 when its worker cannot read the
            # weights (the engine stays up), 400 for a name already loaded; plain text on success.
            from pathlib import Path

            from safetensors import safe_open

            if not fake.lora_updates:
                return JSONResponse({"detail": "Not Found"}, status_code=404)
            body = await request.json()
            name, path = body["lora_name"], body["lora_path"]
            if name in fake.adapters:
                return fake._error(400, f"The lora adapter '{name}' has already been loaded.")
            if not (Path(path) / "adapter_config.json").is_file():
                return fake._error(404, f"Loading lora {name} failed: No adapter found for {path}")
            try:
                with safe_open(str(Path(path) / "adapter_model.safetensors"), framework="numpy"):
                    pass
            except Exception as exc:
                return JSONResponse(
                    {"error": {"message": f"Call to add_lora method failed: {exc}",
                               "type": "InternalServerError", "param": None, "code": 500}},
                    status_code=500,
                )  # fmt: skip
            fake.adapters[name] = path
            return Response(f"Success: LoRA adapter '{name}' added successfully.", media_type="text/plain")

        @app.post("/v1/unload_lora_adapter")
        async def unload_lora(request: Request) -> Response:
            if not fake.lora_updates:
                return JSONResponse({"detail": "Not Found"}, status_code=404)
            name = (await request.json())["lora_name"]
            if fake.adapters.pop(name, None) is None:
                return fake._error(404, f"The lora adapter '{name}' cannot be found.")
            return Response(f"Success: LoRA adapter '{name}' removed successfully.", media_type="text/plain")

        @app.post("/tokenize")
        async def tokenize(request: Request) -> dict[str, Any]:
            body = await request.json()
            text = body.get("prompt") or json.dumps(body.get("messages"))
            n = fake.count(text)
            return {"count": n, "max_model_len": fake.max_model_len, "tokens": list(range(n))}

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> Response:
            body = await request.json()
            fake.requests.append(body)
            if (err := fake._check(body)) is not None:
                return err
            refused = set(body.get("structured_outputs") or {}) & fake.refused_structured_outputs
            if refused:
                return fake._error(400, f"structured outputs kind {sorted(refused)} is not supported")
            prompt_tokens = sum(fake.count(str(m.get("content") or "")) for m in body["messages"])
            if prompt_tokens + int(body.get("max_tokens") or 16) > fake.max_model_len:
                return fake._error(
                    400,
                    "This model's maximum context length is "
                    f"{fake.max_model_len} tokens. However, you requested more.",
                )
            reply = fake._next_reply()
            fake._enter()
            if not body.get("stream"):
                try:
                    if not await fake._busy(request):
                        return Response(status_code=499)
                finally:
                    fake.in_flight -= 1
            rid = f"chatcmpl-{uuid.uuid4().hex}"
            created = int(time.time())
            words = reply.split(" ")
            finish = "stop"
            limit = body.get("max_completion_tokens") or body.get("max_tokens")
            if fake.cut_at_max_tokens and limit is not None and len(words) > int(limit):
                words, finish = words[: int(limit)], "length"
                reply = " ".join(words)
            usage = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(words),
                "total_tokens": prompt_tokens + len(words),
            }
            if not body.get("stream"):
                return JSONResponse(
                    {
                        "id": rid,
                        "object": "chat.completion",
                        "created": created,
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": reply},
                                "finish_reason": finish,
                                "logprobs": None,
                            }
                        ],
                        "usage": usage,
                    }
                )

            async def events() -> AsyncIterator[bytes]:
                def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
                    c = {
                        "id": rid,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": body["model"],
                        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
                    }
                    return f"data: {json.dumps(c)}\n\n".encode()

                await asyncio.sleep(fake.response_delay_s)
                yield chunk({"role": "assistant", "content": ""}, None)
                for i, w in enumerate(words):
                    await asyncio.sleep(fake.token_delay_s)
                    yield chunk({"content": w if i == 0 else " " + w}, None)
                yield chunk({}, finish)
                if (body.get("stream_options") or {}).get("include_usage"):
                    u = {
                        "id": rid,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": body["model"],
                        "choices": [],
                        "usage": usage,
                    }
                    yield f"data: {json.dumps(u)}\n\n".encode()
                yield b"data: [DONE]\n\n"

            return StreamingResponse(fake._watched(events()), media_type="text/event-stream")

        @app.post("/v1/completions")
        async def completions(request: Request) -> Response:
            body = await request.json()
            fake.requests.append(body)
            if (err := fake._check(body)) is not None:
                return err
            reply = fake._next_reply()
            n_prompt = fake.count(str(body.get("prompt")))
            return JSONResponse(
                {
                    "id": f"cmpl-{uuid.uuid4().hex}",
                    "object": "text_completion",
                    "created": int(time.time()),
                    "model": body["model"],
                    "choices": [{"index": 0, "text": reply, "finish_reason": "length", "logprobs": None}],
                    "usage": {
                        "prompt_tokens": n_prompt,
                        "completion_tokens": len(reply.split()),
                        "total_tokens": n_prompt + len(reply.split()),
                    },
                }
            )

        return app
