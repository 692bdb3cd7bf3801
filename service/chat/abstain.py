"""The answer to a grounded question that no passage can answer (the relevance gate said so).

The model is not asked: the answer is the abstention sentence of the question's language, in the
exact shapes vLLM would have sent (a `chat.completion`, or `chat.completion.chunk` events ending in
`[DONE]`), with the passages that were considered in `citations` (none cited) and the gate's
report in `grounding`. Usage is zero: no token was processed by the model.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from service.chat.route import PreparedRequest
from service.rag.prompt import ABSTENTIONS, citations_payload
from service.sse import DONE, frame


def abstention_sentence(language: str) -> str:
    return ABSTENTIONS[1] + "。" if language == "zh" else ABSTENTIONS[0] + "."


def _extensions(prepared: PreparedRequest, sentence: str) -> dict[str, Any]:
    assert prepared.grounded is not None
    return {
        "citations": citations_payload(prepared.grounded.citations, sentence),
        "grounding": dict(prepared.grounded.irrelevant or {}),
        **prepared.final_fields,
    }


_USAGE = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


def whole(prepared: PreparedRequest) -> dict[str, Any]:
    """A `chat.completion` whose every choice is the abstention sentence."""
    assert prepared.grounded is not None
    sentence = abstention_sentence(prepared.grounded.language)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": prepared.public_model,
        "choices": [  # one: the gateway refuses n > 1
            {
                "index": 0,
                "message": {"role": "assistant", "content": sentence, "tool_calls": []},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": dict(_USAGE),
        **_extensions(prepared, sentence),
    }


async def stream(prepared: PreparedRequest) -> AsyncIterator[bytes]:
    """The same answer as `chat.completion.chunk` events: role, text, finish (+ usage if asked), [DONE]."""
    assert prepared.grounded is not None
    sentence = abstention_sentence(prepared.grounded.language)
    head = {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": prepared.public_model,
    }

    def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {**head, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

    yield frame(chunk({"role": "assistant", "content": ""}, None))
    yield frame(chunk({"content": sentence}, None))
    last = chunk({}, "stop")
    if prepared.client_wants_usage:
        yield frame(last)
        last = {**head, "choices": [], "usage": dict(_USAGE)}
    yield frame({**last, **_extensions(prepared, sentence)})
    yield DONE
