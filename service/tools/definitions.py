"""OpenAI tool definitions and `tool_choice`: checked once, with 400s that name the bad parameter."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from jsonschema.exceptions import SchemaError  # type: ignore[import-untyped]

from service.errors import BadRequest

NAME_RE = re.compile(r"\A[a-zA-Z0-9_-]{1,64}\Z")
EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}
_MAX_REF_DEPTH = 32
# Bounds of the inlined `parameters` of all tools of one request (settings: tools.max_schema_*). A
# schema whose `$ref`s point twice at a definition that does the same, n levels deep, inlines to 2^n
# copies: 2 KB of JSON used to become gigabytes, built on the event loop.
MAX_SCHEMA_NODES = 20_000
MAX_SCHEMA_DEPTH = 64


@dataclass
class SchemaBudget:
    """What the inlined schemas of one request may still hold: nodes (objects, arrays, values), depth."""

    nodes: int = MAX_SCHEMA_NODES
    depth: int = MAX_SCHEMA_DEPTH
    used: int = 0

    def take(self, at: tuple[str, ...], depth: int) -> None:
        self.used += 1
        if self.used > self.nodes:
            raise SchemaTooLarge(
                f"inlined with its $refs it holds more than {self.nodes} schema nodes (at {_pointer(at)}); "
                "simplify it or define fewer tools",
                at,
            )
        if depth > self.depth:
            raise SchemaTooLarge(f"it nests more than {self.depth} levels deep (at {_pointer(at)})", at)


class SchemaTooLarge(ValueError):
    """A tool schema beyond the request's bounds (nodes once inlined, or depth)."""

    def __init__(self, message: str, at: tuple[str, ...]) -> None:
        super().__init__(message)
        self.at = at


def _pointer(at: tuple[str, ...]) -> str:
    """A JSON pointer into the schema as written (`#/properties/a`), shortened past 12 steps."""
    parts = [p.replace("~", "~0").replace("/", "~1") for p in at]
    if len(parts) > 12:
        parts = [*parts[:6], "...", *parts[-5:]]
    return "#/" + "/".join(parts) if parts else "#"


ChoiceMode = Literal["none", "auto", "required", "named"]


@dataclass(frozen=True)
class ToolDef:
    """One callable function: its name, description and the JSON schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]
    server: bool = False  # executed by the gateway (a `server_tools` built-in), not by the client

    def validator(self) -> Draft202012Validator:
        return Draft202012Validator(self.parameters)

    def openai(self) -> dict[str, Any]:
        """The definition in OpenAI's shape (what a native tool parser is given)."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


@dataclass(frozen=True)
class ToolChoice:
    mode: ChoiceMode
    name: str | None = None  # for mode "named"

    def allowed(self, tools: list[ToolDef]) -> list[ToolDef]:
        """The tools a call may use under this choice."""
        if self.mode == "named":
            return [t for t in tools if t.name == self.name]
        return list(tools) if self.mode != "none" else []


@dataclass
class ToolRequest:
    """The tool-related part of a chat request, validated."""

    client_tools: list[ToolDef] = field(default_factory=list)
    server_tools: list[ToolDef] = field(default_factory=list)
    choice: ToolChoice = field(default_factory=lambda: ToolChoice("auto"))
    parallel: bool = True

    @property
    def all_tools(self) -> list[ToolDef]:
        return self.client_tools + self.server_tools

    def is_server(self, name: str) -> bool:
        return any(t.name == name for t in self.server_tools)


def parse_tools(raw: Any, *, param: str = "tools", budget: SchemaBudget | None = None) -> list[ToolDef]:
    """Validate OpenAI `tools`: function type, name pattern, unique names, a valid JSON schema.

    CPU-bound (schema checks, `$ref` inlining) and bounded by `budget`: call it off the event loop.
    """
    budget = budget if budget is not None else SchemaBudget()
    if not isinstance(raw, list):
        raise BadRequest(f"{param} must be an array of tool definitions", param=param)
    if not raw:
        raise BadRequest(f"{param} must not be empty; omit the field when there are no tools", param=param)
    tools: list[ToolDef] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        where = f"{param}[{i}]"
        if not isinstance(item, dict):
            raise BadRequest(f"{where} must be an object", param=where)
        if item.get("type", "function") != "function":
            raise BadRequest(
                f"{where}.type is {item.get('type')!r}; only 'function' tools are supported",
                param=f"{where}.type",
            )
        fn = item.get("function")
        if not isinstance(fn, dict):
            raise BadRequest(
                f"{where}.function is required: {{'name': ..., 'description': ..., 'parameters': {{...}}}}",
                param=f"{where}.function",
            )
        name = fn.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise BadRequest(
                f"{where}.function.name {name!r} is invalid: use 1-64 letters, digits, '_' or '-'",
                param=f"{where}.function.name",
            )
        if name in seen:
            raise BadRequest(
                f"{where}.function.name: the tool name {name!r} is used more than once; names must be unique",
                param=f"{where}.function.name",
            )
        seen.add(name)
        description = fn.get("description") or ""
        if not isinstance(description, str):
            raise BadRequest(
                f"{where}.function.description must be a string", param=f"{where}.function.description"
            )
        params = fn.get("parameters")
        params = check_parameters(params, param=f"{where}.function.parameters", tool=name, budget=budget)
        tools.append(ToolDef(name=name, description=description, parameters=params))
    return tools


def check_parameters(
    params: Any, *, param: str, tool: str, budget: SchemaBudget | None = None
) -> dict[str, Any]:
    """A tool's `parameters`: a valid JSON Schema of type object, local `$ref`s inlined within `budget`."""
    if params is None:
        return copy.deepcopy(EMPTY_PARAMETERS)
    if not isinstance(params, dict):
        raise BadRequest(f"{param} of tool {tool!r} must be a JSON Schema object", param=param)
    budget = budget if budget is not None else SchemaBudget()
    # Depth first, iteratively: the metaschema check and the inlining below recurse.
    try:
        _check_depth(params, budget.depth)
    except SchemaTooLarge as exc:
        raise _too_large(param, tool, exc) from exc
    try:
        Draft202012Validator.check_schema(params)
    except SchemaError as exc:
        path = "".join(f"[{p!r}]" for p in exc.path) or "the schema root"
        raise BadRequest(
            f"{param} of tool {tool!r} is not a valid JSON Schema: {exc.message} (at {path})", param=param
        ) from exc
    if params.get("type", "object") != "object":
        raise BadRequest(
            f"{param} of tool {tool!r} must be a schema of type 'object' (the arguments), "
            f"got type {params.get('type')!r}",
            param=param,
        )
    try:
        inlined = inline_refs(params, budget)
    except SchemaTooLarge as exc:
        raise _too_large(param, tool, exc) from exc
    except ValueError as exc:
        raise BadRequest(f"{param} of tool {tool!r}: {exc}", param=param) from exc
    if not isinstance(inlined, dict):  # pragma: no cover - a dict stays a dict
        raise BadRequest(f"{param} of tool {tool!r} must be a JSON Schema object", param=param)
    inlined.setdefault("type", "object")
    return inlined


def _too_large(param: str, tool: str, exc: SchemaTooLarge) -> BadRequest:
    return BadRequest(f"{param} of tool {tool!r} is too large: {exc}", param=param, code="schema_too_large")


def _check_depth(schema: Any, limit: int) -> None:
    """Refuse a schema nested deeper than `limit` (objects and arrays), without recursion."""
    stack: list[tuple[Any, tuple[str, ...]]] = [(schema, ())]
    while stack:
        node, at = stack.pop()
        if len(at) > limit:
            raise SchemaTooLarge(f"it nests more than {limit} levels deep (at {_pointer(at)})", at)
        if isinstance(node, dict):
            stack.extend((v, (*at, str(k))) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, (*at, str(i))) for i, v in enumerate(node))


def inline_refs(schema: dict[str, Any], budget: SchemaBudget | None = None) -> Any:
    """Replace local `#/...` references by their targets, so the schema can be embedded anywhere.

    The constrained decoding schema nests each tool's parameters inside a larger schema, where a
    `#/$defs/X` pointer would resolve against the wrong root. Recursive references cannot be
    inlined and are refused. Every node of the result counts against `budget` as it is built, so a
    schema that would expand beyond it is refused before it takes time or memory.
    """
    root = schema
    budget = budget if budget is not None else SchemaBudget()

    def resolve(ref: str) -> Any:
        if not ref.startswith("#"):
            raise ValueError(f"only local $ref pointers ('#/...') are supported, got {ref!r}")
        node: Any = root
        for part in ref[1:].split("/")[1:] if ref != "#" else []:
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                raise ValueError(f"$ref {ref!r} points to nothing")
            node = node[part]
        return node

    def walk(node: Any, stack: tuple[str, ...], at: tuple[str, ...]) -> Any:
        # `at`: where in the result this node lands (its depth), as a path through the written schema
        budget.take(at, len(at))
        if isinstance(node, list):
            return [walk(v, stack, (*at, str(i))) for i, v in enumerate(node)]
        if not isinstance(node, dict):
            return node
        if isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            if ref in stack or len(stack) > _MAX_REF_DEPTH:
                raise ValueError(f"recursive $ref {ref!r} is not supported in tool parameters")
            target = walk(resolve(ref), (*stack, ref), (*at, "$ref"))
            rest = {k: walk(v, stack, (*at, k)) for k, v in node.items() if k != "$ref"}
            if not rest:
                return target
            return {"allOf": [target, rest]}
        return {k: walk(v, stack, (*at, k)) for k, v in node.items() if k not in ("$defs", "definitions")}

    return walk(schema, (), ())


def parse_tool_choice(raw: Any, tools: list[ToolDef], *, has_tools: bool) -> ToolChoice:
    """`none` | `auto` | `required` | `{"type": "function", "function": {"name": N}}`."""
    if raw is None:
        return ToolChoice("auto" if has_tools else "none")
    if not has_tools and raw != "none":
        raise BadRequest(
            "tool_choice is only allowed when tools (or server_tools) are given", param="tool_choice"
        )
    if isinstance(raw, str):
        if raw not in ("none", "auto", "required"):
            raise BadRequest(
                f"tool_choice {raw!r} is invalid: use 'none', 'auto', 'required' or "
                "{'type': 'function', 'function': {'name': ...}}",
                param="tool_choice",
            )
        return ToolChoice(raw)  # type: ignore[arg-type]
    if isinstance(raw, dict):
        fn = raw.get("function")
        name = fn.get("name") if isinstance(fn, dict) else None
        if raw.get("type") != "function" or not isinstance(name, str):
            raise BadRequest(
                "tool_choice object must be {'type': 'function', 'function': {'name': ...}}",
                param="tool_choice",
            )
        if name not in {t.name for t in tools}:
            raise BadRequest(
                f"tool_choice names the function {name!r}, which is not among the tools "
                f"({', '.join(t.name for t in tools)})",
                param="tool_choice.function.name",
            )
        return ToolChoice("named", name)
    raise BadRequest("tool_choice must be a string or an object", param="tool_choice")
