"""The pieces of guided decoding on their own: schema checks, tightening, decoding, history text."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator

from service.errors import BadRequest
from service.tools.constrained import Bounds, InvalidCall, decode_calls, decoding_schema, tighten
from service.tools.definitions import ToolDef, check_parameters, inline_refs
from service.tools.prompting import flatten_history

PERSON = {
    "type": "object",
    "properties": {"who": {"$ref": "#/$defs/name"}, "tags": {"type": "array", "items": {"type": "string"}}},
    "required": ["who"],
    "$defs": {"name": {"type": "string", "minLength": 2}},
}


def test_local_refs_are_inlined_so_parameters_can_be_nested() -> None:
    out = inline_refs(PERSON)
    assert out["properties"]["who"] == {"type": "string", "minLength": 2} and "$defs" not in out
    with pytest.raises(BadRequest, match="only local"):
        check_parameters({"type": "object", "properties": {"a": {"$ref": "http://x/y"}}}, param="p", tool="t")


def test_tighten_bounds_strings_and_arrays_and_stays_within_the_original() -> None:
    t = tighten(inline_refs(PERSON), Bounds(max_string_length=10, max_array_items=3))
    assert t["properties"]["who"]["maxLength"] == 10 and t["properties"]["tags"]["maxItems"] == 3
    assert t["properties"]["tags"]["items"]["maxLength"] == 10 and t["additionalProperties"] is False
    enum = tighten({"type": "string", "enum": ["a"]}, Bounds())
    assert "maxLength" not in enum  # already bounded
    assert tighten({"type": "string", "minLength": 500}, Bounds(max_string_length=10))["maxLength"] == 500
    # Anything the tightened schema admits, the original admits too.
    Draft202012Validator(PERSON).validate({"who": "0123456789", "tags": ["a", "b", "c"]})


def test_decode_checks_against_the_tools_own_schema() -> None:
    tool = ToolDef("greet", "", inline_refs(PERSON))
    schema = decoding_schema([tool], parallel=True, max_calls=2, bounds=Bounds())
    assert schema["type"] == "array" and schema["items"]["properties"]["name"] == {"const": "greet"}
    (call,) = decode_calls(json.dumps({"name": "greet", "arguments": {"who": "Ann"}}), [tool])
    assert call.arguments == {"who": "Ann"}
    for bad, why in [
        ('{"name": "greet", "arguments": {"who": "A', "not complete JSON"),
        ('{"name": "greet", "arguments": {"who": "A"}}', "do not match its schema"),
        ('{"name": "other", "arguments": {}}', "not an allowed tool"),
        ("[]", "no call"),
    ]:
        with pytest.raises(InvalidCall, match=why):
            decode_calls(bad, [tool])


def test_flatten_history_for_decoding_and_for_answers() -> None:
    history = [
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
    ]
    decode = flatten_history(history)
    assert decode == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": '{"name": "f", "arguments": {"a": 1}}'},
        {"role": "user", "content": "Result of f (c1):\n42"},
    ]
    answer = flatten_history(history, for_answer=True)
    assert answer == [
        {"role": "user", "content": "hi"},
        {"role": "user", "content": 'Result of f({"a": 1}):\n42'},
    ]
