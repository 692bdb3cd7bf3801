"""The evaluation data format (see ARCHITECTURE.md, "Evaluation data format").

- corpus: a directory of files (document id = path relative to it), or a JSONL file of
  `{"id", "text", "title"?, "metadata"?}` (document id = `id`);
- queries: JSONL of `{"id", "query", "relevant": [document ids], "answers"?: [str], "language"?: str}`
  (`language`, e.g. "zh" or "en", is the query's: `eval retrieval` breaks its figures down by it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class EvalDataError(Exception):
    """Bad evaluation input; the message names the file and line."""


@dataclass
class Query:
    """One evaluation query and its relevant documents (and gold answers, for QA)."""

    id: str
    query: str
    relevant: list[str]
    answers: list[str] = field(default_factory=list)
    language: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSONL record."""
        d: dict[str, Any] = {"id": self.id, "query": self.query, "relevant": self.relevant}
        if self.answers:
            d["answers"] = self.answers
        if self.language:
            d["language"] = self.language
        return d


def load_queries(path: Path) -> list[Query]:
    """Read and check a queries JSONL file."""
    out: list[Query] = []
    seen: set[str] = set()
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise EvalDataError(f"cannot read queries file {path}: {exc.strerror or exc}") from exc
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path} line {lineno}"
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalDataError(f"{where}: invalid JSON ({exc.msg})") from exc
        if not isinstance(rec, dict):
            raise EvalDataError(f"{where}: expected a JSON object")
        qid, text, rel = rec.get("id"), rec.get("query"), rec.get("relevant")
        if not isinstance(qid, (str, int)) or isinstance(qid, bool):
            raise EvalDataError(f'{where}: missing "id"')
        if not isinstance(text, str) or not text.strip():
            raise EvalDataError(f'{where}: missing "query" text')
        if not isinstance(rel, list) or not all(isinstance(r, (str, int)) for r in rel):
            raise EvalDataError(f'{where}: "relevant" must be a list of document ids')
        answers = rec.get("answers") or []
        if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
            raise EvalDataError(f'{where}: "answers" must be a list of strings')
        language = rec.get("language")
        if language is not None and (not isinstance(language, str) or not language.strip()):
            raise EvalDataError(f'{where}: "language" must be a non-empty string')
        if str(qid) in seen:
            raise EvalDataError(f"{where}: duplicate query id {qid!r}")
        seen.add(str(qid))
        out.append(Query(str(qid), text, [str(r) for r in rel], list(answers), language))
    if not out:
        raise EvalDataError(f"{path}: no queries")
    return out


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> int:
    """Write records one per line (UTF-8, non-ASCII kept); returns the count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(path, "w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            n += 1
    return n


def check_corpus(path: Path) -> Path:
    """The corpus path, if it is a directory or a file."""
    p = Path(path)
    if not p.exists():
        raise EvalDataError(f"corpus {path} does not exist")
    return p
