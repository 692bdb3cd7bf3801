"""JSONL loader: one document per record `{"id", "text", "title"?, "metadata"?}`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ingest.errors import LoaderError
from ingest.loaders.base import LoadedDocument, Section, decode_text, sha256_bytes


def load_jsonl(path: Path, document_id: str, data: bytes, max_records: int) -> list[LoadedDocument]:
    """Each record is its own document, identified by its `id`; a bad line fails the file."""
    docs: list[LoadedDocument] = []
    seen: set[str] = set()
    for lineno, line in enumerate(decode_text(data, document_id).splitlines(), 1):
        if not line.strip():
            continue
        where = f"{document_id} line {lineno}"
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LoaderError(f"{where}: invalid JSON ({exc.msg})") from exc
        if not isinstance(rec, dict) or not isinstance(rec.get("text"), str):
            raise LoaderError(f'{where}: expected an object with a string "text"')
        rid = rec.get("id")
        if not isinstance(rid, (str, int)) or isinstance(rid, bool) or str(rid).strip() == "":
            raise LoaderError(f'{where}: missing "id" (string or integer)')
        rid = str(rid)
        if rid in seen:
            raise LoaderError(f"{where}: duplicate id {rid!r}")
        seen.add(rid)
        if len(seen) > max_records:
            raise LoaderError(f"{document_id}: more than {max_records} records")
        meta: dict[str, Any] = {}
        if isinstance(rec.get("metadata"), dict):
            meta.update(rec["metadata"])
        meta["format"] = "jsonl"
        meta["file"] = document_id
        if isinstance(rec.get("title"), str) and rec["title"].strip():
            meta["title"] = rec["title"].strip()
        canon = json.dumps(rec, sort_keys=True, ensure_ascii=False).encode()
        source = str(meta.get("source") or rid)
        docs.append(LoadedDocument(rid, source, sha256_bytes(canon), [Section(rec["text"])], meta))
    return docs
