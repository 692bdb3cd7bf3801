"""Tool definitions and tool history rendered as plain chat text, for the guided strategy.

Many small models' chat templates (SmolLM2's among them) ignore `tools` and expect every
message's content to be a string, so the model would never see the functions, and an assistant
turn with `tool_calls` and `content: null` renders as garbage. The guided strategy therefore
writes the functions into the system message and the calls and results into ordinary turns.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from typing import Any

from service.protocol.openai import content_text
from service.tools.definitions import ToolDef

# Measured on SmolLM2-135M: listing the arguments in words (not as a JSON Schema, which it copies
# into the values) gives argument values taken from the request; the grammar enforces the structure.
CALL_INSTRUCTION = "Reply with the function call as JSON."
PARALLEL_INSTRUCTION = (
    "Reply with a JSON array of function calls (several only when the request needs several)."
)


def describe_arguments(parameters: dict[str, Any]) -> str:
    props = parameters.get("properties")
    if not isinstance(props, dict) or not props:
        return "none"
    required = set(parameters.get("required") or [])
    parts = []
    for name, spec in props.items():
        spec = spec if isinstance(spec, dict) else {}
        kind = spec.get("type", "any")
        kind = "/".join(kind) if isinstance(kind, list) else str(kind)
        text = f"{name} ({kind}{', required' if name in required else ''})"
        if spec.get("description"):
            text += f": {spec['description']}"
        if isinstance(spec.get("enum"), list):
            text += f" (one of {', '.join(json.dumps(v, ensure_ascii=False) for v in spec['enum'])})"
        parts.append(text)
    return "; ".join(parts)


def describe_tools(tools: Sequence[ToolDef], *, with_parameters: bool) -> str:
    lines = ["You can call these functions:"]
    for t in tools:
        line = f"- {t.name}: {t.description.strip() or 'no description'}"
        if with_parameters:
            line += f" Arguments: {describe_arguments(t.parameters)}."
        lines.append(line)
    return "\n".join(lines)


def with_system(messages: list[dict[str, Any]], addition: str) -> list[dict[str, Any]]:
    """Append `addition` to the leading system message (or add one): templates often allow one, first."""
    if messages and messages[0].get("role") in ("system", "developer"):
        first = messages[0]
        text = content_text(first.get("content"))
        return [{"role": "system", "content": f"{text}\n\n{addition}" if text else addition}, *messages[1:]]
    return [{"role": "system", "content": addition}, *messages]


def calls_text(tool_calls: Sequence[dict[str, Any]]) -> str:
    """An assistant turn's calls, written the way the model is asked to write them."""
    rendered = []
    for c in tool_calls:
        fn = c.get("function") or {}
        args: Any = fn.get("arguments") or "{}"
        with contextlib.suppress(ValueError):  # otherwise keep the client's text as it is
            args = json.loads(args) if isinstance(args, str) else args
        rendered.append({"name": fn.get("name"), "arguments": args})
    value: Any = rendered[0] if len(rendered) == 1 else rendered
    return json.dumps(value, ensure_ascii=False)


def result_text(name: str | None, call_id: str | None, content: str, arguments: str | None = None) -> str:
    if arguments is not None and name:
        who = f"{name}({arguments})"
    else:
        who = f"{name} ({call_id})" if name and call_id else name or call_id or "a function"
    return f"Result of {who}:\n{content}"


def flatten_history(messages: Sequence[dict[str, Any]], *, for_answer: bool = False) -> list[dict[str, Any]]:
    """Chat history with tool calls and tool results as plain text turns.

    For decoding a call, `assistant` turns with `tool_calls` become their calls as JSON (the form
    the model is asked to write). For an answer they are left out (a small model imitates them
    instead of answering) and each result names the call it answers. `tool` (and legacy
    `function`) results become user turns; multi-part content is joined to text. Other turns keep
    their role, with string content.
    """
    calls_by_id: dict[str, dict[str, Any]] = {}
    out: list[dict[str, Any]] = []
    for m in messages:
        role = m.get("role")
        text = content_text(m.get("content"))
        if role == "assistant" and m.get("tool_calls"):
            calls = [c for c in m["tool_calls"] if isinstance(c, dict)]
            for c in calls:
                if isinstance(c.get("id"), str):
                    calls_by_id[c["id"]] = c.get("function") or {}
            if for_answer:
                if text.strip():
                    out.append({"role": "assistant", "content": text})
                continue
            body = calls_text(calls)
            out.append({"role": "assistant", "content": f"{text}\n{body}" if text.strip() else body})
        elif role in ("tool", "function"):
            call_id = m.get("tool_call_id")
            fn = calls_by_id.get(call_id, {}) if isinstance(call_id, str) else {}
            name = m.get("name") or fn.get("name")
            args = fn.get("arguments") if for_answer else None
            out.append({"role": "user", "content": result_text(name, call_id, text, args)})
        elif role == "developer":
            out.append({"role": "system", "content": text})
        else:
            out.append({"role": str(role), "content": text})
    return out


def has_tool_history(messages: Sequence[Any]) -> bool:
    for m in messages:
        role = m.get("role") if isinstance(m, dict) else getattr(m, "role", None)
        calls = m.get("tool_calls") if isinstance(m, dict) else getattr(m, "tool_calls", None)
        if role in ("tool", "function") or calls:
            return True
    return False
