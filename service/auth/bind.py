"""Secure by default: `ragserve serve` refuses a non-loopback address without API keys."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


def refuse_insecure_bind(host: str, *, keys_configured: bool, insecure: bool) -> str | None:
    """The one-line refusal to print, or None when serving on `host` is fine."""
    if keys_configured or insecure or is_loopback(host):
        return None
    return (
        f"ragserve: refusing to serve on {host} without API keys: anyone who can reach it could use "
        "the model and read every collection; set RAGSERVE_AUTH_KEYS_FILE (see docs/security.md), "
        "or pass --insecure (RAGSERVE_AUTH__ALLOW_INSECURE=true) to serve without keys anyway"
    )
