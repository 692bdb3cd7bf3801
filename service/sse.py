"""Server-sent events: one framing helper, and errors inside a stream that has already started.

Once the first byte of a stream is out, its status is 200; an error then travels inside it as
OpenAI (and vLLM) send it: `data: {"error": {...}}` and `data: [DONE]`.
"""

from __future__ import annotations

import json
from typing import Any

from service.errors import error_response

DONE = b"data: [DONE]\n\n"


def frame(data: dict[str, Any] | str) -> bytes:
    """One SSE event: `data: <compact JSON>` (or a literal string such as `[DONE]`) and a blank line."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"data: {payload}\n\n".encode()


def error_frames(exc: BaseException) -> bytes:
    """The end of a stream cut by `exc`: its error envelope, then `[DONE]`."""
    _, envelope, _ = error_response(exc)
    return frame(envelope) + DONE
