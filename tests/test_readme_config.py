"""The README's configuration table, checked against the settings tree (service/settings.py).

Every environment variable the table names must be a real setting (`RAGSERVE_A__B` is `a.b`; a
`__C` after it in the same cell is its sibling `a.c`), and each default the table writes as a
literal (in backticks, one per name) must be the setting's default. A renamed, removed or
re-defaulted setting fails here until the README says so.
"""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Any

import pytest
from pydantic import BaseModel

from service.settings import Settings
from tests.conftest import REPO

ENV = re.compile(r"`(RAGSERVE_[A-Z0-9_]+|__[A-Z0-9_]+)`")
LITERAL = re.compile(r"`([^`]*)`")


def table_rows() -> list[tuple[str, str]]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and ENV.search(cells[0]):
            rows.append((cells[0], cells[1]))
    return rows


def setting_paths(cell: str) -> list[list[str]]:
    paths: list[list[str]] = []
    for name in ENV.findall(cell):
        if name.startswith("__"):
            assert paths, f"{cell}: {name} follows no full RAGSERVE_ name"
            paths.append([*paths[-1][:-1], name[2:].lower()])
        else:
            paths.append(name.removeprefix("RAGSERVE_").lower().split("__"))
    return paths


def default_of(path: list[str]) -> Any:
    model: Any = Settings
    value: Any = None
    for part in path:
        assert isinstance(model, type) and issubclass(model, BaseModel), (
            f"{'.'.join(path)}: not a settings group"
        )
        assert part in model.model_fields, f"RAGSERVE_{'__'.join(path).upper()}: no such setting"
        field = model.model_fields[part]
        value = field.get_default(call_default_factory=True)
        model = type(value) if isinstance(value, BaseModel) else None
    return value


def same(literal: str, value: Any) -> bool:
    if isinstance(value, PurePath):
        return PurePath(literal) == value
    if isinstance(value, bool):
        return literal == str(value).lower()
    if isinstance(value, int | float):
        try:
            return float(literal) == float(value)
        except ValueError:
            return False
    if isinstance(value, list | dict):
        return literal == ("[]" if isinstance(value, list) else "{}") and not value
    return literal == str(value)


ROWS = table_rows()


def test_the_table_is_found() -> None:
    assert len(ROWS) >= 20


@pytest.mark.parametrize(("names", "defaults"), ROWS, ids=[r[0][:60] for r in ROWS])
def test_each_row_names_real_settings_with_their_defaults(names: str, defaults: str) -> None:
    paths = setting_paths(names)
    values = [default_of(p) for p in paths]  # fails on a setting that does not exist
    literals = [d.strip() for d in defaults.split(",")]
    if len(literals) != len(paths):
        return  # a summary ("off", "8 MiB, 64 MiB" ...), not one literal per setting
    for path, literal, value in zip(paths, literals, values, strict=True):
        found = LITERAL.fullmatch(literal)
        if found is None or value is None:
            continue  # prose ("auto", "none", "—"), or a setting whose default is decided at run time
        assert same(found.group(1), value), (
            f"{'.'.join(path)}: README says {literal}, the default is {value!r}"
        )
