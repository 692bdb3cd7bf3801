"""Client-chosen text never forges a log line: control characters are escaped in every field (#11)."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import httpx
import pytest

from service.auth import audit
from service.auth.principal import Principal
from service.observability.logging import TEXT_FORMAT, JsonFormatter, RequestIdFilter, SafeTextFormatter
from tests.observability.conftest import Gateway

FORGED = "2026-12-03 10:00:00,000 INFO ragserve.audit [-] collection.delete ok by key 'admin'"


@pytest.fixture(params=["text", "json"])
def captured(request: pytest.FixtureRequest) -> Iterator[tuple[str, io.StringIO]]:
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(SafeTextFormatter(TEXT_FORMAT) if request.param == "text" else JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger("ragserve")
    old_level = root.level
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    try:
        yield request.param, buf
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def _assert_one_line_each(fmt: str, text: str) -> None:
    lines = [line for line in text.splitlines() if line]
    assert lines
    for line in lines:
        assert not line.startswith("2026-12-03 10:00:00"), line  # no forged record starts a line
        assert "\x1b" not in line and "\u2028" not in line and "\r" not in line
        if fmt == "json":
            json.loads(line)


def test_paths_with_line_breaks_stay_on_one_log_line(
    obs_gateway: Gateway, captured: tuple[str, io.StringIO]
) -> None:
    fmt, buf = captured
    forged = FORGED.replace(" ", "%20")
    for sep in ("%0A", "%0D%0A", "%E2%80%A8", "%1B[2K%0D"):
        r = httpx.get(f"{obs_gateway.v1}/collections/x{sep}{forged}/documents", timeout=10)
        assert r.status_code == 404
    _assert_one_line_each(fmt, buf.getvalue())
    if fmt == "text":
        assert "\\n2026-12-03" in buf.getvalue() and "\\x1b[2K" in buf.getvalue()


def test_audit_fields_and_exceptions_are_escaped(captured: tuple[str, io.StringIO]) -> None:
    fmt, buf = captured
    admin = Principal(name="admin", role="admin", collections=None)
    audit(admin, "documents.upload", collection="ops", files="a.txt\n" + FORGED)
    try:
        raise ValueError("bad name\n" + FORGED)
    except ValueError:
        logging.getLogger("ragserve.test").exception(
            "upload of %r failed", "x\r\n" + FORGED, exc_info=sys.exc_info()
        )
    _assert_one_line_each(fmt, buf.getvalue())
