"""The input guard over every text a chat request puts before the model.

vLLM renders more than `text` parts: `input_text` and `output_text` (their `text`), `refusal`,
`thinking`, an assistant's `reasoning` and tool calls, a message's `name`. All of them, in every
guarded role, pass the input stage; media parts (images, audio, video) pass on to the engine, which
refuses them for a text model; any other part type (embeddings, `tool_reference`, ...) is a 400,
since the guard cannot read what the engine would make of it.

Blocking looks at a message's texts joined as the engine joins them (a phrase split across parts is
still the phrase); redaction rewrites each text where it lies, in the body sent upstream and in the
parsed request that later stages (grounding, tools) read.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

from service.errors import BadRequest
from service.protocol.openai import MEDIA_PART_TYPES, TEXT_PART_FIELDS, ChatCompletionRequest, ChatMessage
from service.safety import GuardPipeline

Slot = tuple[MutableMapping[str, Any], str]  # a text's holder and key: where a redaction is written


def check_part_types(raw_messages: list[Any]) -> None:
    """Every content part of every message names a type the gateway can read or pass on."""
    for i, m in enumerate(raw_messages):
        content = m.get("content") if isinstance(m, dict) else None
        if not isinstance(content, list):
            continue
        for j, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            where = f"messages[{i}].content[{j}]"
            if not isinstance(kind, str):
                raise BadRequest(f"{where} needs a 'type' (e.g. 'text')", param=f"{where}.type")
            if kind in TEXT_PART_FIELDS:
                field = TEXT_PART_FIELDS[kind]
                if not isinstance(part.get(field), str):
                    raise BadRequest(
                        f"{where} of type {kind!r} needs a string {field!r}", param=f"{where}.{field}"
                    )
            elif kind not in MEDIA_PART_TYPES:
                known = sorted({*TEXT_PART_FIELDS, *MEDIA_PART_TYPES})
                raise BadRequest(
                    f"{where}.type {kind!r} is not supported; use one of {', '.join(known)}",
                    param=f"{where}.type", code="unsupported_content_part",
                )  # fmt: skip


def text_slots(message: MutableMapping[str, Any]) -> Iterator[Slot]:
    """Where a message holds text the engine renders, in the order it renders them."""
    content = message.get("content")
    if isinstance(content, str):
        yield message, "content"
    elif isinstance(content, list):
        for part in content:
            field = TEXT_PART_FIELDS.get(str(part.get("type"))) if isinstance(part, dict) else None
            if field is not None and isinstance(part.get(field), str):
                yield part, field
    for key in ("reasoning", "reasoning_content", "name"):
        if isinstance(message.get(key), str):
            yield message, key
    for call in message.get("tool_calls") or []:
        fn = call.get("function") if isinstance(call, dict) else None
        if isinstance(fn, dict):
            for key in ("name", "arguments"):
                if isinstance(fn.get(key), str):
                    yield fn, key


def guard_texts(guard: GuardPipeline, slots: list[Slot], collection: str | None) -> bool:
    """Check texts that reach the model together: raises ContentBlocked, or redacts them in place.

    Returns whether anything was redacted.
    """
    texts = [holder[key] for holder, key in slots]
    if not any(texts):
        return False
    verdict = guard.check_input("\n".join(texts), collection=collection)
    if verdict.action != "redact":
        return False
    changed = False
    for holder, key in slots:
        one = guard.check_input(holder[key], collection=collection)
        if one.action == "redact" and one.text != holder[key]:
            holder[key] = one.text
            changed = True
    return changed


def guard_chat_input(
    guard: GuardPipeline, req: ChatCompletionRequest, raw: dict[str, Any], collection: str | None
) -> None:
    """The input stage over a chat request (CPU-bound: run it off the event loop).

    Raises BadRequest (a part type) or ContentBlocked; redactions land in `raw` (what goes
    upstream) and in `req` (what grounding searches with), `rag.query` included.
    """
    raw_messages = raw.get("messages")
    if not isinstance(raw_messages, list):  # pragma: no cover - the request model requires a list
        return
    check_part_types(raw_messages)
    roles = set(guard.settings.input_roles)
    for i, m in enumerate(raw_messages):
        if not isinstance(m, dict) or m.get("role") not in roles:
            continue
        if guard_texts(guard, list(text_slots(m)), collection) and i < len(req.messages):
            req.messages[i] = ChatMessage.model_validate(m)
    rag = raw.get("rag")
    if req.rag is None or not req.rag.query or not isinstance(rag, dict):
        return
    if guard_texts(guard, [(rag, "query")], collection):
        req.rag.query = rag["query"]
