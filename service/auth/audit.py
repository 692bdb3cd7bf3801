"""Audit log: one line on logger `ragserve.audit` per administrative action, allowed or refused."""

from __future__ import annotations

import logging
from typing import Any

from service.auth.principal import Principal

audit_logger = logging.getLogger("ragserve.audit")


def audit(principal: Principal, action: str, *, outcome: str = "ok", **fields: Any) -> None:
    """E.g. `audit(p, "collection.delete", collection="runbooks")`; fields also go to JSON logs."""
    detail = " ".join(f"{k}={v}" for k, v in fields.items())
    audit_logger.log(
        logging.INFO if outcome == "ok" else logging.WARNING,
        "%s %s by key '%s' %s", action, outcome, principal.name, detail,
        extra={"action": action, "outcome": outcome, "key": principal.name, **fields},
    )  # fmt: skip
