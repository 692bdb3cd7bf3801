"""Server-side tools: built-ins the gateway executes itself when a request lists them in `server_tools`.

Each tool declares whether it changes anything (`mutating`); mutating tools are refused unless the
operator allows them by name (`tools.allow_mutating`). None of the built-ins changes anything.
A tool signals a failure the model should read by raising `ToolError`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from ingest.types import SearchHit
from service.errors import APIError
from service.knowledge import KnowledgeService
from service.rag.prompt import Citation, format_passage
from service.settings import ToolSettings
from service.tools.definitions import ToolDef


class ToolError(Exception):
    """A tool failed in a way the model (and the trace) should be told about."""


@dataclass
class ToolContext:
    """What a server tool may use while serving one request."""

    knowledge: KnowledgeService
    settings: ToolSettings
    collections: list[str]
    default_collection: str
    citations: list[Citation] = field(default_factory=list)  # numbered across the whole request
    # The safety pipeline's context stage: passages that carry planted instructions never reach the
    # model, whether they come from grounding or from a tool.
    screen: Callable[[list[SearchHit], str], list[SearchHit]] | None = None
    # The same guard over a tool's text result (None: withheld); tools that read passages through
    # `search` are screened passage by passage instead.
    screen_text: Callable[[str], str | None] | None = None
    searched: list[str] = field(default_factory=list)  # collections read: their output policies apply

    async def search(self, collection: str, query: str, **kw: Any) -> list[SearchHit]:
        hits = await self.knowledge.search(collection, query, **kw)
        if collection not in self.searched:
            self.searched.append(collection)
        if self.screen is None:
            return hits
        return await anyio.to_thread.run_sync(self.screen, hits, collection)  # CPU-bound: off the loop


@dataclass
class ToolOutput:
    content: str  # what the model reads
    summary: str  # one line for the trace


class ServerTool(abc.ABC):
    name: str
    description: str
    mutating: bool = False
    # Its result is made of passages read through `ToolContext.search` (already screened one by one);
    # any other result passes the context guard as one text before the model reads it.
    screened: bool = False

    @abc.abstractmethod
    def parameters(self, ctx: ToolContext) -> dict[str, Any]:
        """The JSON schema of the arguments (may depend on the deployment, e.g. collection names)."""

    @abc.abstractmethod
    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolOutput: ...

    def definition(self, ctx: ToolContext) -> ToolDef:
        return ToolDef(self.name, self.description, self.parameters(ctx), server=True)


def _collection_schema(ctx: ToolContext) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "description": "Collection to read"}
    if ctx.collections:
        schema["enum"] = list(ctx.collections)  # the model can only name collections that exist
    else:
        schema["maxLength"] = 64
    return schema


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)].rstrip() + "…"


class SearchKnowledgeBase(ServerTool):
    name = "search_knowledge_base"
    screened = True
    description = (
        "Search the knowledge base (runbooks, manuals, post-mortems) and return the best passages, "
        "numbered [n] for citation."
    )

    def parameters(self, ctx: ToolContext) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                "query": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 256,
                    "description": "What to look for",
                },
                "collection": _collection_schema(ctx),
                "top_k": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 10,
                    "description": "Passages to return",
                },
            },
            "required": ["query"],
            "additionalProperties": False,
        }

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        query = str(args.get("query") or "").strip()
        if not query:
            raise ToolError("query is empty")
        collection = str(args.get("collection") or ctx.default_collection)
        top_k = int(args.get("top_k") or 3)
        try:
            hits = await ctx.search(collection, query, top_k=top_k, mode="hybrid", filters=None)
        except APIError as exc:
            raise ToolError(exc.message) from exc
        if not hits:
            return ToolOutput("No passages found.", f"0 passages from {collection}")
        per_hit = max(80, ctx.settings.result_max_chars // len(hits))
        lines = []
        for hit in hits:
            n = len(ctx.citations) + 1
            ctx.citations.append(Citation.from_hit(n, hit))
            clipped = SearchHit(**{**hit.to_dict(), "text": _clip(hit.text.strip(), per_hit)})
            lines.append(f"{format_passage(n, clipped)}\n(document {hit.document_id}, chunk {hit.chunk_id})")
        first = len(ctx.citations) - len(hits) + 1
        return ToolOutput(
            "\n\n".join(lines),
            f"{len(hits)} passages from {collection} ([{first}]..[{len(ctx.citations)}]): "
            + ", ".join(sorted({h.document_id for h in hits})),
        )


class GetDocument(ServerTool):
    name = "get_document"
    screened = True
    description = (
        "Read a whole document (by document_id) or one passage (by chunk_id) from the knowledge base."
    )

    def parameters(self, ctx: ToolContext) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                "document_id": {"type": "string", "maxLength": 256, "description": "e.g. runbooks/oom.md"},
                "chunk_id": {"type": "string", "maxLength": 128, "description": "a passage id from a search"},
                "collection": _collection_schema(ctx),
            },
            "additionalProperties": False,
        }

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        collection = str(args.get("collection") or ctx.default_collection)
        chunk_id = str(args.get("chunk_id") or "").strip()
        document_id = str(args.get("document_id") or "").strip()
        if not chunk_id and not document_id:
            raise ToolError("give a document_id or a chunk_id")
        try:
            if chunk_id:
                hits = await ctx.search(
                    collection, chunk_id, top_k=1, mode="dense", filters={"chunk_id": chunk_id}
                )
                if not hits:
                    raise ToolError(f"no chunk {chunk_id!r} in collection {collection!r}")
                what = f"chunk {chunk_id}"
            else:
                docs = await ctx.knowledge.list_documents(collection)
                info = next((d for d in docs if d.document_id == document_id), None)
                if info is None:
                    raise ToolError(f"no document {document_id!r} in collection {collection!r}")
                # The index has no "read a document" call; a filtered search over all of its
                # chunks returns them, which we put back in reading order.
                hits = await ctx.search(
                    collection, document_id, top_k=max(1, info.chunks), mode="dense",
                    filters={"document_id": document_id},
                )  # fmt: skip
                what = f"document {document_id} ({info.chunks} chunks)"
        except APIError as exc:
            raise ToolError(exc.message) from exc
        hits.sort(key=lambda h: (h.page or 0, int(h.metadata.get("start") or 0)))
        text = "\n\n".join(h.text.strip() for h in hits)
        limit = ctx.settings.result_max_chars
        return ToolOutput(
            _clip(text, limit),
            f"{what}: {len(text)} characters" + (" (clipped)" if len(text) > limit else ""),
        )


class ToolRegistry:
    """The server tools this gateway offers, by name."""

    def __init__(self, tools: list[ServerTool] | None = None) -> None:
        self._tools: dict[str, ServerTool] = {}
        for t in tools or []:
            self.register(t)

    def register(self, tool: ServerTool) -> None:
        self._tools[tool.name] = tool

    def get(self, name: str) -> ServerTool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return sorted(self._tools)


def default_registry() -> ToolRegistry:
    from service.tools.prometheus import PrometheusQuery

    return ToolRegistry([SearchKnowledgeBase(), GetDocument(), PrometheusQuery()])
