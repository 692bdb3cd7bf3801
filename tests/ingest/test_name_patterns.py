"""Names checked by a pattern never end in a newline (issue 19, #16: `$` matches before a final "\\n")."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ingest.errors import InvalidName
from ingest.knowledge_base import KnowledgeBase, validate_name
from service.engine.lora import NAME_RE as LORA_NAME_RE
from service.observability.context import accept_request_id
from service.tools.definitions import NAME_RE as TOOL_NAME_RE

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["ops\n", "ops\r\n", "\nops", "ops\x00", "ops\u2028"])
def test_collection_names_with_line_breaks_are_invalid(kb: KnowledgeBase, name: str) -> None:
    with pytest.raises(InvalidName):
        validate_name(name)
    with pytest.raises(InvalidName):
        kb.create_collection(name)
    assert not kb.exists(name)
    assert kb.list_collections() == []


def test_other_name_patterns_refuse_a_trailing_newline() -> None:
    assert LORA_NAME_RE.match("adapter-1") and not LORA_NAME_RE.match("adapter-1\n")
    assert TOOL_NAME_RE.match("get_weather") and not TOOL_NAME_RE.match("get_weather\n")
    assert accept_request_id("req-1") == "req-1"
    assert accept_request_id("req-1\n") != "req-1\n"


def test_no_validation_pattern_ends_in_a_bare_dollar() -> None:
    """Every anchored pattern compiled in service/ and ingest/ ends in \\Z (or is applied per line)."""
    per_line = {"ingest/loaders/markdown.py"}  # matched against single lines already stripped of "\n"
    offenders = []
    for path in sorted((REPO / "service").rglob("*.py")) + sorted((REPO / "ingest").rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if rel not in per_line and re.search(r"re\.compile\(r?[\"']\^.*\$[\"']", line):
                offenders.append(f"{rel}:{lineno}: {line.strip()}")
    assert offenders == []


def test_key_names_refuse_a_trailing_newline() -> None:
    from pydantic import ValidationError

    from service.auth.keys import KeyEntry

    KeyEntry(name="rca-frontend", key_sha256="a" * 64, collections=["*"])
    with pytest.raises(ValidationError):
        KeyEntry(name="rca-frontend\n", key_sha256="a" * 64, collections=["*"])
