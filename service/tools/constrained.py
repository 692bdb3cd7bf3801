"""Guided tool calls: the JSON schema the engine decodes under, and its output as OpenAI `tool_calls`.

vLLM enforces `structured_outputs` (a grammar over the tokens) even on CPU, while its tool parsers
trust the model to write well-formed calls, which small models do not. So for `required` and
named choices the gateway asks for JSON that can only be a call to an allowed tool with
schema-valid arguments, and turns that JSON into OpenAI's `tool_calls` itself.
"""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from service.tools.definitions import ToolDef

# Keywords that already bound a string's length (or its exact values).
_STRING_BOUNDS = ("maxLength", "enum", "const", "pattern", "format")


@dataclass(frozen=True)
class Bounds:
    """Limits added to the decoding schema where the tool's own schema has none.

    A small model under a grammar still writes a string until max_tokens runs out; the JSON is then
    cut off and no call can be returned. Any value within these bounds is also valid under the
    tool's own schema, so tightening only the decoding schema costs no correctness.
    """

    max_string_length: int = 128
    max_array_items: int = 8
    # Decode the required properties only (a call without the optional ones is just as valid): the
    # last resort of a budget too small for anything else.
    required_only: bool = False

    def compact(self) -> Bounds:
        """Tighter bounds for a retry after a call was cut off by max_tokens."""
        return Bounds(
            max(8, self.max_string_length // 8), max(1, min(2, self.max_array_items)), self.required_only
        )


def tighten(schema: Any, bounds: Bounds) -> Any:
    """A copy of `schema` with bounded strings and arrays and closed objects."""
    if isinstance(schema, list):
        return [tighten(s, bounds) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("properties", "patternProperties", "dependentSchemas", "$defs", "definitions"):
            out[key] = {k: tighten(v, bounds) for k, v in value.items()} if isinstance(value, dict) else value
        elif key in ("items", "additionalProperties", "not", "if", "then", "else", "contains") or key in (
            "anyOf",
            "oneOf",
            "allOf",
            "prefixItems",
        ):
            out[key] = tighten(value, bounds)
        else:
            out[key] = copy.deepcopy(value)
    types = out.get("type")
    type_set = set(types) if isinstance(types, list) else {types} if isinstance(types, str) else set()
    if "string" in type_set and not any(k in out for k in _STRING_BOUNDS):
        out["maxLength"] = max(int(out.get("minLength", 0)), bounds.max_string_length)
    if "array" in type_set and "maxItems" not in out:
        out["maxItems"] = max(int(out.get("minItems", 0)), bounds.max_array_items)
    if "object" in type_set and "additionalProperties" not in out and "properties" in out:
        out["additionalProperties"] = False
    if (
        bounds.required_only
        and isinstance(out.get("properties"), dict)
        and out.get("additionalProperties") is False
    ):
        keep = set(out.get("required") or [])
        out["properties"] = {k: v for k, v in out["properties"].items() if k in keep}
    return out


# Token estimates of the longest JSON a schema admits (decoding budgets). Free strings count at two
# characters a token: fewer than typical text (about four for SmolLM2's tokenizer), since a model
# under a grammar may write digits or punctuation that tokenize one or two characters each. Names
# and enum values are the schema's own words and count at four.
CHARS_PER_TOKEN = 2
WORD_CHARS_PER_TOKEN = 4
_SCALAR_TOKENS = {"number": 8, "integer": 6, "boolean": 2, "null": 2}
_OPEN_TOKENS = 24  # a value whose length the schema does not bound (pattern, format, free types)
MIN_STRING_LENGTH = 8


def max_tokens_of(schema: Any) -> int:
    """An estimate of the tokens of the longest compact JSON value `schema` admits (bounds applied)."""
    if not isinstance(schema, dict):
        return _OPEN_TOKENS
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return max(max_tokens_of(s) for s in schema[key])
    if "const" in schema or "enum" in schema:
        values = [schema["const"]] if "const" in schema else list(schema["enum"] or [None])
        return 1 + max(len(json.dumps(v)) for v in values) // WORD_CHARS_PER_TOKEN + 1
    types = schema.get("type")
    kinds = set(types) if isinstance(types, list) else {types} if isinstance(types, str) else set()
    if "object" in kinds or "properties" in schema:
        props = schema.get("properties") or {}
        return 2 + sum(3 + len(name) // WORD_CHARS_PER_TOKEN + max_tokens_of(v) for name, v in props.items())
    if "array" in kinds:
        items = int(schema.get("maxItems", 8))
        return 2 + items * (1 + max_tokens_of(schema.get("items", {})))
    if "string" in kinds:
        if "maxLength" in schema:
            return 2 + -(-int(schema["maxLength"]) // CHARS_PER_TOKEN)
        return _OPEN_TOKENS
    return max((_SCALAR_TOKENS.get(str(k), _OPEN_TOKENS) for k in kinds), default=_OPEN_TOKENS)


def call_tokens(tool: ToolDef, bounds: Bounds) -> int:
    """Estimated tokens of the longest call of `tool` under `bounds`."""
    return max_tokens_of(call_schema(tool, bounds))


def fit_bounds(bounds: Bounds, tools: list[ToolDef], max_tokens: int, *, calls: int = 1) -> Bounds:
    """The loosest bounds (at most `bounds`) whose longest call(s) fit in `max_tokens` by estimate.

    Arrays shrink first while strings are short, then strings halve, down to 8 characters and one
    item, then only required properties are decoded; the result is the tightest then, even if the
    estimate still says it does not fit.
    """
    size, items, required_only = bounds.max_string_length, bounds.max_array_items, bounds.required_only
    while True:
        b = Bounds(size, items, required_only)
        need = calls * max(call_tokens(t, b) for t in tools) + (2 if calls > 1 else 0)
        if need <= max_tokens or required_only:
            return b
        if size <= MIN_STRING_LENGTH and items <= 1:
            required_only = True
        elif items > 1 and (size <= 32 or items > 2):
            items = max(1, items // 2)
        else:
            size = max(MIN_STRING_LENGTH, size // 2)


def min_call_tokens(tools: list[ToolDef]) -> int:
    """Estimated max_tokens for the longest of the tightest calls of `tools` (for error messages)."""
    return max(call_tokens(t, Bounds(MIN_STRING_LENGTH, 1, required_only=True)) for t in tools)


def call_schema(tool: ToolDef, bounds: Bounds) -> dict[str, Any]:
    """One call of `tool`: `{"name": <const>, "arguments": <its parameters>}`."""
    return {
        "type": "object",
        "properties": {"name": {"const": tool.name}, "arguments": tighten(tool.parameters, bounds)},
        "required": ["name", "arguments"],
        "additionalProperties": False,
    }


def decoding_schema(
    tools: list[ToolDef], *, parallel: bool, max_calls: int, bounds: Bounds
) -> dict[str, Any]:
    """One call of any allowed tool, or (parallel) an array of 1..max_calls such calls."""
    calls = [call_schema(t, bounds) for t in tools]
    one = calls[0] if len(calls) == 1 else {"anyOf": calls}
    if not parallel or max_calls <= 1:
        return one
    return {"type": "array", "items": one, "minItems": 1, "maxItems": max_calls}


@dataclass(frozen=True)
class DecodedCall:
    name: str
    arguments: dict[str, Any]


class InvalidCall(ValueError):
    """The constrained output is not a complete, schema-valid call (cut off, or not enforced)."""


def decode_calls(text: str, tools: list[ToolDef]) -> list[DecodedCall]:
    """Parse and check the engine's constrained output against each tool's *own* schema."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidCall(f"the output is not complete JSON ({exc.msg} at char {exc.pos})") from exc
    items = data if isinstance(data, list) else [data]
    if not items:
        raise InvalidCall("the output holds no call")
    by_name = {t.name: t for t in tools}
    out: list[DecodedCall] = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise InvalidCall("a call is not an object with a 'name'")
        tool = by_name.get(item["name"])
        if tool is None:
            raise InvalidCall(f"the output calls {item['name']!r}, which is not an allowed tool")
        args = item.get("arguments", {})
        if not isinstance(args, dict):
            raise InvalidCall(f"the arguments of {tool.name!r} are not an object")
        errors = sorted(Draft202012Validator(tool.parameters).iter_errors(args), key=lambda e: list(e.path))
        if errors:
            raise InvalidCall(f"the arguments of {tool.name!r} do not match its schema: {errors[0].message}")
        call = DecodedCall(tool.name, args)
        if call not in out:  # greedy decoding of an array likes to repeat the same call verbatim
            out.append(call)
    return out


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def arguments_json(arguments: dict[str, Any]) -> str:
    return json.dumps(arguments, ensure_ascii=False, separators=(", ", ": "))


def openai_tool_call(call: DecodedCall, call_id: str) -> dict[str, Any]:
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": call.name, "arguments": arguments_json(call.arguments)},
    }


def decision_choices(tools: list[ToolDef]) -> tuple[list[str], str]:
    """The `auto` decision: the name of a tool to call, or the answer sentinel."""
    names = [t.name for t in tools]
    answer = "answer"
    while answer in names:
        answer = "_" + answer
    return [*names, answer], answer
