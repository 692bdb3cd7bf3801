"""The current request's access record, in a context variable set by the auth middleware.

The knowledge service asks `can_read()` before every search, listing or lookup, so a key's
invisible collections stay invisible whichever code path asks (router, RAG, server tool, one
written later). Generation reports the engine's real token usage with `report_usage()`, which
reconciles the key's tokens-per-minute bucket. Outside a request (start-up, ingestion jobs,
probes) there is no record: nothing is hidden and nothing is counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any

from service.auth.principal import Principal


@dataclass
class RequestAccess:
    principal: Principal
    # x-ratelimit-* headers for the response (requests from the middleware, tokens from admission).
    rate_headers: dict[str, str] = field(default_factory=dict)
    tokens_used: int = 0  # prompt + completion tokens the engine reported for this request
    usage_reported: bool = False
    rejection: str | None = None  # reason label when access control or admission refused it


_current: ContextVar[RequestAccess | None] = ContextVar("ragserve_request_access", default=None)


def current_request() -> RequestAccess | None:
    return _current.get()


def current_principal() -> Principal | None:
    """The principal of the request being served, or None outside a request."""
    ra = _current.get()
    return ra.principal if ra is not None else None


def can_read(collection: str) -> bool:
    """Whether the current request (if any) may see `collection`."""
    ra = _current.get()
    return ra is None or ra.principal.can_read(collection)


def report_usage(usage: Mapping[str, Any] | None) -> None:
    """Add one engine answer's `usage` to the current request (called by the model interface, service/llm)."""
    ra = _current.get()
    if ra is None or not usage:
        return
    total = usage.get("total_tokens")
    if total is None:
        total = int(usage.get("prompt_tokens") or 0) + int(usage.get("completion_tokens") or 0)
    ra.tokens_used += int(total)
    ra.usage_reported = True


def bind(ra: RequestAccess | None) -> Token[RequestAccess | None]:
    return _current.set(ra)


def unbind(token: Token[RequestAccess | None]) -> None:
    _current.reset(token)
