"""Search filters: keys never become SQL, and a slow docstore statement blocks no one else (issue 19, #1)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from ingest.errors import InvalidFilter, QueryTimeout
from ingest.knowledge_base import KnowledgeBase
from ingest.store.docstore import MAX_FILTER_KEYS, MAX_FILTER_VALUES, DocstoreReader
from ingest.store.versions import read_manifest

# Keys that broke out of the quoted JSON path, or would reach SQL text in some other way.
HOSTILE_KEYS = [
    "a') OR 1=1 OR json_extract(metadata, '$.x",
    "x'",
    'x"',
    "x\\",
    "team) IN (1) UNION SELECT id FROM chunks --",
    "",
    "1team",
    "k" * 65,
    "tea\nm",
    "téam",
    "team\x00",
]


@pytest.fixture
def jsonl_kb(kb: KnowledgeBase, tmp_path: Path) -> KnowledgeBase:
    corpus = tmp_path / "records.jsonl"
    corpus.write_text(
        '{"id": "a", "text": "Reset a password in the IAM console.", '
        '"metadata": {"team": "iam", "tier.level": 1}}\n'
        '{"id": "b", "text": "Payroll questions go to the HR desk.", "metadata": {"team": "hr"}}\n',
        encoding="utf-8",
    )
    kb.ingest_paths("j", [corpus])
    return kb


@pytest.mark.parametrize("key", HOSTILE_KEYS)
def test_hostile_filter_keys_are_refused(jsonl_kb: KnowledgeBase, key: str) -> None:
    with pytest.raises(InvalidFilter, match="filter key"):
        jsonl_kb.search("j", "password", mode="bm25", filters={key: "iam"})


def test_plain_keys_still_filter(jsonl_kb: KnowledgeBase) -> None:
    hits = jsonl_kb.search("j", "password payroll", mode="bm25", top_k=5, filters={"team": "iam"})
    assert [h.document_id for h in hits] == ["a"]
    hits = jsonl_kb.search("j", "password payroll", mode="bm25", top_k=5, filters={"tier.level": 1})
    assert [h.document_id for h in hits] == ["a"]


def test_filter_size_is_bounded(jsonl_kb: KnowledgeBase) -> None:
    with pytest.raises(InvalidFilter, match="keys"):
        jsonl_kb.search("j", "x", mode="bm25", filters={f"k{i}": 1 for i in range(MAX_FILTER_KEYS + 1)})
    with pytest.raises(InvalidFilter, match="values"):
        jsonl_kb.search("j", "x", mode="bm25", filters={"team": list(range(MAX_FILTER_VALUES + 1))})
    with pytest.raises(InvalidFilter, match="values must be"):
        jsonl_kb.search("j", "x", mode="bm25", filters={"team": {"$ne": 1}})


RUNAWAY = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"


def test_runaway_statement_is_stopped_and_blocks_no_other_reader(jsonl_kb: KnowledgeBase) -> None:
    coll = jsonl_kb.root / "j"
    manifest = read_manifest(coll)
    assert manifest is not None
    reader = DocstoreReader(coll / manifest["dir"] / "docstore.sqlite", statement_timeout_s=1.5)
    errors: list[BaseException] = []

    def runaway() -> None:
        try:
            reader._query(RUNAWAY)
        except BaseException as exc:  # recorded for the assertion below
            errors.append(exc)

    t = threading.Thread(target=runaway)
    t0 = time.monotonic()
    t.start()
    time.sleep(0.2)
    # While the runaway statement runs, another thread reads the same docstore at once.
    t1 = time.monotonic()
    assert [d.document_id for d in reader.documents()] == ["a", "b"]
    assert time.monotonic() - t1 < 1.0
    t.join(timeout=30)
    assert not t.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], QueryTimeout)
    assert time.monotonic() - t0 < 10
    reader.close()
