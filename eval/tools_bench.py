"""Function-calling benchmark: schema validity of tool calls and the latency cost of guided decoding.

Runs varied prompts through a running gateway with `tool_choice` = required, required + parallel,
named and auto, and checks every returned call against its tool's own JSON schema. For the
latency cost, the same prompts go through the same engine unconstrained (the gateway's prompt for
a call, without the grammar) and, with --engine-url, through vLLM's own tool parser (hermes).

    python -m eval.tools_bench --url http://127.0.0.1:8000 [--engine-url http://127.0.0.1:PORT] --out DIR
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from service.tools.definitions import ToolDef, parse_tools
from service.tools.prompting import CALL_INSTRUCTION, describe_tools

MODEL = "smollm2-135m-instruct"  # the default of --model (the plumbing model)


def _fn(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }


TOOLS = [
    _fn("get_weather", "Current weather in a city.",
        {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        ["city"]),
    _fn("restart_deployment", "Restart a Kubernetes deployment.",
        {"namespace": {"type": "string"}, "deployment": {"type": "string"},
         "replicas": {"type": "integer", "minimum": 0, "maximum": 50}}, ["deployment"]),
    _fn("search_runbooks", "Search the operations runbooks.",
        {"query": {"type": "string"}, "top_k": {"type": "integer", "minimum": 1, "maximum": 10}}, ["query"]),
    _fn("create_ticket", "Open an incident ticket.",
        {"title": {"type": "string"}, "severity": {"type": "string", "enum": ["sev1", "sev2", "sev3"]},
         "labels": {"type": "array", "items": {"type": "string"}},
         "owner": {"type": "object", "required": ["team"],
                   "properties": {"team": {"type": "string"}, "oncall": {"type": "boolean"}}}},
        ["title", "severity"]),
    _fn("query_metric", "Read a metric over a time window.",
        {"metric": {"type": "string"}, "window_minutes": {"type": "number", "exclusiveMinimum": 0},
         "aggregation": {"type": "string", "enum": ["avg", "max", "p99"]}}, ["metric", "window_minutes"]),
]  # fmt: skip

# (prompt, the tool a person would call, or None when no tool is needed)
PROMPTS: list[tuple[str, str | None]] = [
    ("What's the weather in Paris?", "get_weather"),
    ("Is it cold in Oslo right now, in fahrenheit?", "get_weather"),
    ("Weather for Tokyo and for Berlin please.", "get_weather"),
    ("Should I take an umbrella in London today?", "get_weather"),
    ("Restart the checkout deployment in the shop namespace.", "restart_deployment"),
    ("The payments service is stuck, bounce it with 3 replicas.", "restart_deployment"),
    ("Please roll the api-gateway pods.", "restart_deployment"),
    ("Scale frontend back up by restarting it with 5 replicas.", "restart_deployment"),
    ("How do I fix a disk full error on a node?", "search_runbooks"),
    ("Find the runbook for OOMKilled pods.", "search_runbooks"),
    ("What does exit code 137 mean?", "search_runbooks"),
    ("Look up how to rotate TLS certificates.", "search_runbooks"),
    ("Open a sev1 ticket: database is down, owner team dba.", "create_ticket"),
    ("File a sev3 ticket about slow dashboards with labels grafana and ui.", "create_ticket"),
    ("Create an incident for 500 errors on checkout, severity sev2.", "create_ticket"),
    ("Raise a ticket for the payments team: card declines spiking.", "create_ticket"),
    ("What was the max CPU usage over the last 15 minutes?", "query_metric"),
    ("Show the p99 latency of the API over 60 minutes.", "query_metric"),
    ("Average memory of the cache in the last 5 minutes?", "query_metric"),
    ("How many requests per second did we serve in the past hour?", "query_metric"),
    ("Hello! How are you today?", None),
    ("What is 12 times 12?", None),
    ("Write a haiku about autumn.", None),
    ("Translate 'good morning' into Spanish.", None),
    ("Tell me a joke about computers.", None),
    ("What is the capital of Italy?", None),
    ("Summarize what Kubernetes is in one sentence.", None),
    ("Thanks, that's all.", None),
    ("Explain what a runbook is.", None),
    ("Who wrote Hamlet?", None),
]


def _check(calls: list[dict[str, Any]], tools: dict[str, ToolDef]) -> bool:
    if not calls:
        return False
    for c in calls:
        fn = c.get("function") or {}
        tool = tools.get(fn.get("name"))
        try:
            args = json.loads(fn.get("arguments") or "")
        except (ValueError, TypeError):
            return False
        if (
            tool is None
            or not isinstance(args, dict)
            or not Draft202012Validator(tool.parameters).is_valid(args)
        ):
            return False
    return True


def _calls_from_text(text: str) -> list[dict[str, Any]]:
    """The unconstrained baseline: the model's text, read as the call(s) it was asked to write."""
    try:
        data = json.loads(text.strip().removeprefix("```json").removeprefix("```").removesuffix("```"))
    except ValueError:
        return []
    items = data if isinstance(data, list) else [data]
    return [
        {"function": {"name": i.get("name"), "arguments": json.dumps(i.get("arguments"))}}
        for i in items
        if isinstance(i, dict)
    ]


def run(
    url: str,
    engine_url: str | None,
    max_tokens: int,
    limit: int | None,
    *,
    model: str = MODEL,
    engine_key: str | None = None,
) -> dict[str, Any]:
    tools = {t.name: t for t in parse_tools(TOOLS)}
    prompts = PROMPTS[:limit] if limit else PROMPTS
    http = httpx.Client(timeout=600)
    modes: dict[str, list[dict[str, Any]]] = {}

    def post(base: str, body: dict[str, Any]) -> tuple[dict[str, Any] | None, float]:
        t0 = time.perf_counter()
        headers = {"Authorization": f"Bearer {engine_key}"} if engine_key and base == engine_url else {}
        r = http.post(base + "/v1/chat/completions", json=body, headers=headers)
        return (r.json() if r.status_code == 200 else None), time.perf_counter() - t0

    for prompt, expected in prompts:
        msgs = [{"role": "user", "content": prompt}]
        base = {"model": model, "messages": msgs, "max_tokens": max_tokens, "temperature": 0}
        named = expected or "get_weather"
        runs: dict[str, tuple[str, dict[str, Any]]] = {
            "required": (url, {**base, "tools": TOOLS, "tool_choice": "required",
                               "parallel_tool_calls": False}),
            "required_parallel": (url, {**base, "tools": TOOLS, "tool_choice": "required"}),
            "named": (url, {**base, "tools": TOOLS, "parallel_tool_calls": False,
                            "tool_choice": {"type": "function", "function": {"name": named}}}),
            "auto": (url, {**base, "tools": TOOLS, "tool_choice": "auto", "parallel_tool_calls": False}),
            # Same prompt the guided path builds for `required`, without the grammar.
            "unconstrained": (url, {**base, "messages": [
                {"role": "system", "content": describe_tools(list(tools.values()), with_parameters=True)
                 + "\n" + CALL_INSTRUCTION}, *msgs]}),
        }  # fmt: skip
        if engine_url:
            runs["vllm_hermes_required"] = (engine_url, {**base, "tools": TOOLS, "tool_choice": "required"})
        for mode, (target, body) in runs.items():
            data, seconds = post(target, body)
            row: dict[str, Any] = {
                "prompt": prompt,
                "expected": expected,
                "seconds": seconds,
                "ok": data is not None,
            }
            if data is not None:
                choice = data["choices"][0]
                msg = choice["message"]
                calls = msg.get("tool_calls") or []
                if mode == "unconstrained":
                    calls = _calls_from_text(msg.get("content") or "")
                row.update(
                    finish_reason=choice["finish_reason"],
                    called=bool(calls),
                    valid=_check(calls, tools),
                    names=[(c.get("function") or {}).get("name") for c in calls],
                    completion_tokens=(data.get("usage") or {}).get("completion_tokens"),
                )
            modes.setdefault(mode, []).append(row)
            print(f"{mode:22s} {seconds:6.2f}s valid={row.get('valid')} {prompt[:50]}", file=sys.stderr)
    return {"model": model, "max_tokens": max_tokens, "prompts": len(prompts), "summary": summarize(modes),
            "rows": modes}  # fmt: skip


def summarize(modes: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode, rows in modes.items():
        called = [r for r in rows if r.get("called")]
        lat = [r["seconds"] for r in rows if r["ok"]]
        toks = [r["completion_tokens"] for r in rows if r.get("completion_tokens")]
        s: dict[str, Any] = {
            "requests": len(rows),
            "errors": sum(not r["ok"] for r in rows),
            "calls_returned": len(called),
            "schema_valid_of_calls": (sum(r["valid"] for r in called) / len(called)) if called else None,
            "schema_valid_of_requests": sum(bool(r.get("valid")) for r in rows) / len(rows),
            "latency_s_p50": statistics.median(lat) if lat else None,
            "latency_s_mean": statistics.fmean(lat) if lat else None,
            "completion_tokens_mean": statistics.fmean(toks) if toks else None,
            "finish_length": sum(r.get("finish_reason") == "length" for r in rows),
        }
        if mode == "auto":
            decided = [r for r in rows if r["ok"]]
            s["decision_accuracy"] = sum(r["called"] == (r["expected"] is not None) for r in decided) / len(
                rows
            )
        if mode in ("required", "named", "auto"):
            with_tool = [r for r in rows if r.get("called") and r["expected"]]
            s["right_tool"] = sum(r["names"][0] == r["expected"] for r in with_tool) / max(1, len(with_tool))
        out[mode] = s
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8000", help="gateway root (without /v1)")
    ap.add_argument("--engine-url", help="the vLLM server itself, to compare its hermes tool parser")
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--limit", type=int, help="only the first N prompts")
    ap.add_argument("--model", default=MODEL, help="served model name (default: %(default)s)")
    ap.add_argument(
        "--engine-key-file", type=Path, help="file holding the engine's API key (the gateway's VLLM_API_KEY)"
    )
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    key = args.engine_key_file.read_text(encoding="utf-8").strip() if args.engine_key_file else None
    result = run(
        args.url.rstrip("/"),
        args.engine_url and args.engine_url.rstrip("/"),
        args.max_tokens,
        args.limit,
        model=args.model,
        engine_key=key,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tools_bench.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(json.dumps(result["summary"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
