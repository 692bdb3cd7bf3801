"""Server tools inside the tool loop: run the calls, record the trace, feed the results back.

Each call runs within `tools.tool_timeout_s` and the request's deadline; a failure (timeout, a
tool error, a bug) becomes text for the model and an error in `tool_trace`, never a failed request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import anyio

from service.llm import Usage
from service.observability.metrics import Metrics
from service.settings import ToolSettings
from service.tools import constrained, prompting
from service.tools.builtins import ToolContext, ToolError, ToolRegistry
from service.tools.constrained import DecodedCall

logger = logging.getLogger("ragserve.tools")


@dataclass
class LoopState:
    messages: list[dict[str, Any]]
    ctx: ToolContext
    deadline: float
    question: str
    usage: Usage = field(default_factory=Usage)
    trace: list[dict[str, Any]] = field(default_factory=list)
    done: set[str] = field(default_factory=set)  # server calls already made (name + arguments)
    results: list[str] = field(default_factory=list)  # server tool results, as the answer shows them


def call_key(call: DecodedCall) -> str:
    """A call's identity (name + arguments): a repeated server call would get the same result."""
    return call.name + constrained.arguments_json(call.arguments)


class ServerToolRunner:
    def __init__(self, *, registry: ToolRegistry, settings: ToolSettings, metrics: Metrics) -> None:
        self.registry = registry
        self.cfg = settings
        self.metrics = metrics

    async def run_calls(self, calls: list[tuple[DecodedCall, str]], state: LoopState, iteration: int) -> None:
        openai_calls = [constrained.openai_tool_call(c, i) for c, i in calls]
        state.messages.append({"role": "assistant", "content": None, "tool_calls": openai_calls})
        for call, call_id in calls:
            content, entry = await self.execute(call, call_id, state)
            entry["iteration"] = iteration
            state.trace.append(entry)
            state.done.add(call_key(call))
            state.results.append(
                content
                if call.name == "search_knowledge_base" and entry["error"] is None
                else prompting.result_text(
                    call.name, None, content, constrained.arguments_json(call.arguments)
                )
            )
            state.messages.append(
                {"role": "tool", "tool_call_id": call_id, "name": call.name, "content": content}
            )

    async def execute(self, call: DecodedCall, call_id: str, state: LoopState) -> tuple[str, dict[str, Any]]:
        """Run one server tool; failures become text for the model and an error in the trace."""
        tool = self.registry.get(call.name)
        t0 = time.perf_counter()
        summary: str | None = None
        error: str | None = None
        outcome = "ok"
        timeout = min(self.cfg.tool_timeout_s, state.deadline - time.monotonic())
        if tool is None:  # pragma: no cover - the plan only admits registered tools
            error, outcome = f"unknown tool {call.name!r}", "error"
        elif tool.mutating and tool.name not in self.cfg.allow_mutating:
            error, outcome = f"{tool.name} changes things and is not allowed on this server", "refused"
        elif timeout <= 0:
            error, outcome = "not run: the request's tool deadline has passed", "timeout"
        else:
            try:
                out = await asyncio.wait_for(tool.run(call.arguments, state.ctx), timeout)
                content, summary = out.content, out.summary
            except TimeoutError:
                error, outcome = f"timed out after {timeout:.1f} s", "timeout"
            except ToolError as exc:
                error, outcome = str(exc), "error"
            except Exception as exc:  # a tool bug must not fail the request
                logger.exception("server tool %s failed", call.name)
                error, outcome = f"internal error: {type(exc).__name__}: {exc}", "error"
        if error is not None:
            content = f"Error: {error}"
        screen = state.ctx.screen_text
        if screen is not None and (error is not None or tool is None or not tool.screened):
            # What the model reads of a tool passes the guard retrieved passages pass.
            screened = await anyio.to_thread.run_sync(screen, content)
            if screened is None:
                logger.info("safety: withheld the result of %s", call.name)
                summary, error, outcome = None, "the result was withheld by the safety filter", "withheld"
                content = f"Error: {error}"
            else:
                content = screened
        seconds = time.perf_counter() - t0
        self.metrics.tool_calls.labels(call.name, outcome).inc()
        self.metrics.tool_duration.labels(call.name).observe(seconds)
        entry = {
            "id": call_id,
            "name": call.name,
            "arguments": call.arguments,
            "result": summary,
            "duration_ms": round(seconds * 1000, 1),
            "error": error,
        }
        return content, entry

    # -- one decoding step ----------------------------------------------------------------
