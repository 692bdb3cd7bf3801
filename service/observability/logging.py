"""Log set-up: text (default) or one JSON object per line, each record carrying the request id.

`RAGSERVE_SERVER__LOG_FORMAT=json` switches to JSON; uvicorn's own loggers go through the same
handler so a log shipper sees one format.
"""

from __future__ import annotations

import json
import logging
import re
import traceback
from datetime import UTC, datetime
from typing import Any

from service.observability.context import current_request_id

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"

# Attributes every LogRecord has; anything else was passed with `extra=` and goes into the JSON.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "request_id",
    "taskName",
    "color_message",  # uvicorn adds color_message
}


# Characters that could end a log line or rewrite a terminal: C0 controls, DEL, C1 controls, and the
# Unicode line and paragraph separators. Logged fields come from clients (paths, names, headers).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def escape_controls(text: str) -> str:
    """`text` with every control character written as an escape (`\\n`, `\\x1b`, `\\u2028`)."""

    def one(m: re.Match[str]) -> str:
        ch = m.group()
        if ch in "\n\r\t":
            return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch]
        return f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}"

    return _UNSAFE.sub(one, text)


class SafeTextFormatter(logging.Formatter):
    """The text format with control characters escaped in every field, so one record is one line.

    Tracebacks keep their lines, each escaped: a client-chosen exception message cannot add a line
    that looks like a record of its own.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape_controls(super().formatMessage(record))

    def formatException(self, ei: Any) -> str:
        text = super().formatException(ei)
        return "\n".join("    " + escape_controls(line) for line in text.splitlines())


class RequestIdFilter(logging.Filter):
    """Puts the current request id (or "-") on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = current_request_id() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, request_id, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None) or current_request_id()
        if rid and rid != "-":
            out["request_id"] = rid
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value if isinstance(value, str | int | float | bool | None) else str(value)
        if record.exc_info:
            out["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        # json.dumps escapes C0 controls; the line separators too, for shippers that split on them.
        return json.dumps(out, ensure_ascii=False).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def logging_config(fmt: str = "text", level: str = "info") -> dict[str, Any]:
    """A `logging.config.dictConfig` for the server (also passed to uvicorn as `log_config`)."""
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonFormatter"}
        if fmt == "json"
        else {"()": f"{__name__}.SafeTextFormatter", "fmt": TEXT_FORMAT}
    )
    lvl = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": f"{__name__}.RequestIdFilter"}},
        "formatters": {"default": formatter},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "filters": ["request_id"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["default"], "level": lvl},
        "loggers": {
            name: {"handlers": [], "level": lvl, "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "ragserve")
        },
    }


def configure_logging(fmt: str = "text", level: str = "info") -> None:
    import logging.config

    logging.config.dictConfig(logging_config(fmt, level))
