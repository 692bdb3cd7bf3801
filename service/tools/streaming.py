"""OpenAI's streamed shape for a tool-call response, built from calls that are already complete.

The guided path decodes a call non-streamed upstream (its JSON must be complete and checked
against the tool's schema before anything reaches the client: a half-sent call that turns out
invalid could not be taken back), then replays it in OpenAI's chunk sequence: a role chunk, per
call a chunk with `index`, `id`, `type` and `function.name` (arguments ""), the arguments in
fragments, a final chunk with `finish_reason: "tool_calls"`, the usage chunk when asked for, and
`[DONE]`; one id on every chunk.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from service.sse import DONE, frame

ARGUMENT_FRAGMENT_CHARS = 12


def _chunk(base: dict[str, Any], delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}


def tool_call_chunks(
    *,
    completion_id: str,
    created: int,
    model: str,
    tool_calls: list[dict[str, Any]],
    usage: dict[str, Any] | None,
    final_fields: dict[str, Any],
) -> list[dict[str, Any]]:
    base = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model}
    chunks = [_chunk(base, {"role": "assistant", "content": None})]
    for i, call in enumerate(tool_calls):
        fn = call["function"]
        head = {
            "index": i,
            "id": call["id"],
            "type": "function",
            "function": {"name": fn["name"], "arguments": ""},
        }
        chunks.append(_chunk(base, {"tool_calls": [head]}))
        args: str = fn["arguments"]
        for start in range(0, len(args), ARGUMENT_FRAGMENT_CHARS):
            piece = args[start : start + ARGUMENT_FRAGMENT_CHARS]
            chunks.append(_chunk(base, {"tool_calls": [{"index": i, "function": {"arguments": piece}}]}))
    chunks.append(_chunk(base, {}, "tool_calls"))
    if usage is not None:
        chunks.append({**base, "choices": [], "usage": usage})
    chunks[-1].update(final_fields)  # like citations: on the last chunk before [DONE]
    return chunks


async def replay(chunks: list[dict[str, Any]]) -> AsyncIterator[bytes]:
    for c in chunks:
        yield frame(c)
    yield DONE
