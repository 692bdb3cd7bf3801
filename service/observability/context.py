"""The current request's id, visible to log records, engine calls and spans (contextvars)."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

REQUEST_ID_HEADER = "X-Request-ID"
_VALID = re.compile(r"\A[A-Za-z0-9._:/@+=-]{1,128}\Z")

request_id_var: ContextVar[str | None] = ContextVar("ragserve_request_id", default=None)


def current_request_id() -> str | None:
    return request_id_var.get()


def accept_request_id(raw: str | None) -> str:
    """The caller's id when it is short and plain (it lands in logs and headers), else a new one."""
    if raw and _VALID.match(raw):
        return raw
    return uuid.uuid4().hex
