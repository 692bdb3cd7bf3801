"""Which tools a chat request involves: client tools and server tools validated, the decoding strategy."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import anyio

from service.chat.route import ChatRoute
from service.errors import APIError, BadRequest
from service.knowledge import KnowledgeService
from service.protocol.openai import ChatCompletionRequest
from service.safety import GuardPipeline
from service.settings import Settings
from service.tools import prompting
from service.tools.builtins import ToolContext, ToolRegistry
from service.tools.definitions import SchemaBudget, ToolDef, ToolRequest, parse_tool_choice, parse_tools


@dataclass
class ToolPlan:
    """A chat request's tools, validated, and how calls will be decoded."""

    tools: ToolRequest
    strategy: str
    wants_trace: bool  # server tools were requested: the answer carries `tool_trace`
    route: ChatRoute


class ToolPlanner:
    """Validates a request's `tools`, `tool_choice`, `parallel_tool_calls` and `server_tools`."""

    def __init__(
        self,
        *,
        guard: GuardPipeline,
        knowledge: KnowledgeService,
        settings: Settings,
        registry: ToolRegistry,
    ) -> None:
        self.guard = guard
        self.knowledge = knowledge
        self.settings = settings
        self.cfg = settings.tools
        self.registry = registry

    def strategy_for(self, engine_model: str) -> str:
        """How calls are decoded for this engine model: `guided` or `native`."""
        return self.cfg.model_strategies.get(engine_model, self.cfg.strategy)

    async def plan(
        self, req: ChatCompletionRequest, raw: dict[str, Any], route: ChatRoute
    ) -> ToolPlan | None:
        """Validate the request's tools; None when the request does not involve tools at all."""
        strategy = self.strategy_for(route.engine_model)
        server_names = raw.get("server_tools")
        involved = (
            raw.get("tools") is not None
            or raw.get("tool_choice") is not None
            or bool(server_names)
            or (strategy == "guided" and prompting.has_tool_history(raw.get("messages") or []))
        )
        if not involved:
            return None
        client_tools: list[ToolDef] = []
        if raw.get("tools") is not None:
            # Schema checks and `$ref` inlining are CPU work (bounded by the budget): off the event loop.
            budget = SchemaBudget(self.cfg.max_schema_nodes, self.cfg.max_schema_depth)
            client_tools = await anyio.to_thread.run_sync(
                functools.partial(parse_tools, raw["tools"], budget=budget)
            )
        server_tools = await self._server_tools(server_names, client_tools, route)
        all_tools = client_tools + server_tools
        choice = parse_tool_choice(raw.get("tool_choice"), all_tools, has_tools=bool(all_tools))
        parallel = raw.get("parallel_tool_calls")
        if parallel is not None and not isinstance(parallel, bool):
            raise BadRequest("parallel_tool_calls must be true or false", param="parallel_tool_calls")
        return ToolPlan(
            tools=ToolRequest(client_tools, server_tools, choice, parallel is not False),
            strategy=strategy,
            wants_trace=bool(server_tools),
            route=route,
        )

    async def context(self, route: ChatRoute) -> ToolContext:
        """What server tools may reach for this request: collections, the default one, the guard."""
        collections = [c["name"] for c in await self.knowledge.list_collections()]
        default = route.collection or self.settings.default_collection
        guard = self.guard

        def screen_text(text: str) -> str | None:
            verdict = guard.scan("context", text, collection=default)
            return None if verdict.blocked else verdict.text

        return ToolContext(
            self.knowledge, self.cfg, collections, default,
            screen=lambda hits, collection: guard.filter_context(hits, collection=collection),
            screen_text=screen_text,
        )  # fmt: skip

    async def _server_tools(self, names: Any, client_tools: list[ToolDef], route: ChatRoute) -> list[ToolDef]:
        if names is None or names == []:
            return []
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise BadRequest("server_tools must be an array of tool names", param="server_tools")
        client_names = {t.name for t in client_tools}
        ctx = await self.context(route)
        out: list[ToolDef] = []
        for i, name in enumerate(dict.fromkeys(names)):
            tool = self.registry.get(name)
            where = f"server_tools[{i}]"
            if tool is None:
                raise BadRequest(
                    f"{where}: unknown server tool {name!r}; available: {', '.join(self.registry.names())}",
                    param=where, code="unknown_tool",
                )  # fmt: skip
            if tool.mutating and name not in self.cfg.allow_mutating:
                raise APIError(
                    f"{where}: {name!r} changes things and is not allowed on this server "
                    "(an operator can allow it with tools.allow_mutating)",
                    status_code=403, error_type="permission_error", param=where, code="tool_not_allowed",
                )  # fmt: skip
            if name in client_names:
                raise BadRequest(
                    f"{where}: {name!r} is also defined in tools; a name can be a client or a server tool",
                    param=where,
                )
            if name == "prometheus_query" and not self.cfg.prometheus_url:
                raise BadRequest(
                    f"{where}: prometheus_query needs a Prometheus; set tools.prometheus_url "
                    "(RAGSERVE_TOOLS__PROMETHEUS_URL)",
                    param=where, code="tool_unavailable",
                )  # fmt: skip
            out.append(tool.definition(ctx))
        return out
