"""Collection names: one rule for every backend (a Milvus backend maps them to its own alphabet)."""

from __future__ import annotations

import re

from ingest.errors import InvalidName

NAME_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")  # \Z: "$" would accept a trailing newline


def validate_name(name: str) -> str:
    """A collection name, or InvalidName."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidName(
            f"invalid collection name {name!r}: use 1-64 letters, digits, '_', '.', '-', "
            "starting with a letter or digit"
        )
    return name
