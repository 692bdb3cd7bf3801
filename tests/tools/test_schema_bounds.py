"""Tool schemas whose `$ref`s expand exponentially, or that nest too deep, are a fast 400 (issue 19, #2)."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx

from tests.tools.conftest import ToolGateway
from tests.utils.fake_vllm import MODEL


def ref_bomb(levels: int) -> dict[str, Any]:
    """`a<n>` refers twice to `a<n-1>`: ~100 bytes per level, 2^levels copies once inlined."""
    defs: dict[str, Any] = {"a0": {"type": "string"}}
    for i in range(1, levels + 1):
        prev = {"$ref": f"#/$defs/a{i - 1}"}
        defs[f"a{i}"] = {"type": "object", "properties": {"x": prev, "y": prev}}
    return {"type": "object", "properties": {"p": {"$ref": f"#/$defs/a{levels}"}}, "$defs": defs}


def nested(levels: int) -> str:
    """A tool of `levels` nested object schemas, as JSON text."""
    schema = '{"type": "object", "properties": {"a": ' * levels + '{"type": "string"}' + "}}" * levels
    return f'[{{"type": "function", "function": {{"name": "f", "parameters": {schema}}}}}]'


def tool(name: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": parameters}}


def post(gw: ToolGateway, tools: list[dict[str, Any]] | str) -> httpx.Response:
    """`tools` as objects, or as JSON text (nestings deeper than the json module writes)."""
    if isinstance(tools, str):
        body = f'{{"model": "{MODEL}", "messages": [{{"role": "user", "content": "hi"}}], "tools": {tools}}}'
        headers = {"Content-Type": "application/json"}
        return httpx.post(gw.v1 + "/chat/completions", content=body, headers=headers, timeout=60)
    payload = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "tools": tools}
    return httpx.post(gw.v1 + "/chat/completions", json=payload, timeout=60)


def assert_too_large(r: httpx.Response, param: str) -> str:
    assert r.status_code == 400, r.text[:500]
    err = r.json()["error"]
    assert (err["type"], err["code"], err["param"]) == ("invalid_request_error", "schema_too_large", param)
    message: str = err["message"]
    return message


def test_exponential_refs_are_refused_fast(gw: ToolGateway) -> None:
    # 1.7 KB that used to inline to 65k nodes (about a second of event loop here, and 2^40 for 4 KB).
    small = ref_bomb(16)
    assert len(str(small)) < 2500
    t0 = time.monotonic()
    message = assert_too_large(post(gw, [tool("f", small)]), "tools[0].function.parameters")
    assert "more than 20000 schema nodes" in message and "#/properties/p/$ref" in message
    # A 4 KB schema of 2^40 nodes: refused as soon as the bound is crossed, while /healthz answers.
    slow: list[float] = []
    done = threading.Event()

    def probe() -> None:
        while not done.is_set():
            t = time.monotonic()
            httpx.get(gw.url + "/healthz", timeout=30)
            slow.append(time.monotonic() - t)
            time.sleep(0.02)

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        assert_too_large(post(gw, [tool("f", ref_bomb(40))]), "tools[0].function.parameters")
    finally:
        done.set()
        prober.join()
    assert time.monotonic() - t0 < 10  # each takes a few ms of work; the margin is for a busy machine
    assert max(slow) < 2.0
    assert not gw.sent()  # nothing reached the engine


def test_the_node_bound_covers_all_tools_of_a_request(gw: ToolGateway) -> None:
    gw.settings.tools.max_schema_nodes = 1000
    fine = ref_bomb(6)  # ~ 450 nodes inlined
    assert post(gw, [tool("a", fine)]).status_code == 200
    three = [tool("a", fine), tool("b", fine), tool("c", fine)]
    message = assert_too_large(post(gw, three), "tools[2].function.parameters")
    assert "more than 1000 schema nodes" in message


def test_deep_nesting_is_refused_before_any_recursion(gw: ToolGateway) -> None:
    # 50 levels (100 JSON objects); 400 levels used to make the metaschema check recurse into a 500
    # (the whole body's nesting is bounded first now: tests/service/test_hostile_input.py).
    message = assert_too_large(post(gw, nested(50)), "tools[0].function.parameters")
    assert "nests more than 64 levels" in message
    gw.fake.script("Hello.")
    assert post(gw, nested(20)).status_code == 200  # realistic depths pass
