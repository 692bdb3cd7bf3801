"""Locust users that flood `/v1/chat/completions` (no think time): the worst case for admission.

Run against any gateway:
    RAGSERVE_LOADTEST_KEY=<key> locust -f eval/loadtest/locustfile.py --headless -u 32 -r 32 -t 30s \
        --host http://127.0.0.1:8000
With `RAGSERVE_LOADTEST_OUT=path.json` every request's status and latency are summarised there at
the end (what `python -m eval.loadtest` reads); locust's own summary goes to stdout as usual.
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from typing import Any

from locust import FastHttpUser, constant, events, task

KEY = os.environ.get("RAGSERVE_LOADTEST_KEY", "")
MODEL = os.environ.get("RAGSERVE_LOADTEST_MODEL", "fake-model")
MAX_TOKENS = int(os.environ.get("RAGSERVE_LOADTEST_MAX_TOKENS", "16"))
# 1: a refused user sleeps for the Retry-After it was given (as the OpenAI SDKs do) instead of flooding.
POLITE = os.environ.get("RAGSERVE_LOADTEST_HONOR_RETRY_AFTER") == "1"

_latencies_ms: dict[int, list[float]] = defaultdict(list)


class ChatUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def chat(self) -> None:
        body = {
            "model": MODEL,
            "messages": [{"role": "user", "content": "Why was my container killed with exit code 137?"}],
            "max_tokens": MAX_TOKENS,
        }
        headers = {"Authorization": f"Bearer {KEY}"} if KEY else {}
        with self.client.post("/v1/chat/completions", json=body, headers=headers, catch_response=True) as r:
            if r.status_code in (429, 503):
                r.failure(f"rejected {r.status_code}")  # expected under overload; counted apart
                if POLITE:
                    time.sleep(float(r.headers.get("retry-after") or 1))  # gevent-patched: yields


@events.request.add_listener
def _record(response: Any, response_time: float, exception: Any, **_: Any) -> None:
    status = getattr(response, "status_code", 0) or 0
    _latencies_ms[int(status)].append(float(response_time))


@events.quitting.add_listener
def _dump(**_: Any) -> None:
    out = os.environ.get("RAGSERVE_LOADTEST_OUT")
    if out:
        with open(out, "w", encoding="utf-8") as f:
            json.dump({str(k): v for k, v in _latencies_ms.items()}, f)
