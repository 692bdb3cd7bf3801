"""Converters (SQuAD, CMRC, BEIR) on tiny fixtures written here, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from eval.data import load_queries
from service.cli import main


def _jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_squad(tmp_path: Path) -> None:
    src = tmp_path / "squad.json"
    src.write_text(
        json.dumps(
            {
                "data": [
                    {
                        "title": "Pods",
                        "paragraphs": [
                            {
                                "context": "A pod is killed with exit code 137.",
                                "qas": [
                                    {
                                        "id": "q1",
                                        "question": "Which exit code?",
                                        "answers": [{"text": "137"}, {"text": "137"}],
                                    },
                                    {
                                        "id": "q2",
                                        "question": "Impossible?",
                                        "answers": [],
                                        "is_impossible": True,
                                    },
                                ],
                            }
                        ],
                    }
                ]
            }
        ),
        encoding="utf-8",
    )
    assert main(["eval", "convert", "squad", str(src), "--out", str(tmp_path / "out")]) == 0
    corpus = _jsonl(tmp_path / "out" / "corpus.jsonl")
    assert corpus == [{"id": "0-0", "text": "A pod is killed with exit code 137.", "title": "Pods"}]
    queries = load_queries(tmp_path / "out" / "queries.jsonl")
    assert [(q.id, q.relevant, q.answers) for q in queries] == [("q1", ["0-0"], ["137"])]


def test_cmrc_flat_layout(tmp_path: Path) -> None:
    src = tmp_path / "cmrc.json"
    src.write_text(
        json.dumps(
            [
                {
                    "context_id": "C1",
                    "title": "泡泡战士",
                    "context_text": "生命数耗完即算为踢爆。",
                    "qas": [
                        {"query_id": "C1_Q0", "query_text": "生命数耗完即算为什么？", "answers": ["踢爆"]},
                        {"query_id": "C1_Q1", "query_text": "", "answers": ["x"]},
                    ],
                }
            ],
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    assert main(["eval", "convert", "cmrc", str(src), "--out", str(tmp_path / "out")]) == 0
    assert _jsonl(tmp_path / "out" / "corpus.jsonl") == [
        {"id": "C1", "text": "生命数耗完即算为踢爆。", "title": "泡泡战士"}
    ]
    q = load_queries(tmp_path / "out" / "queries.jsonl")
    assert [(x.id, x.query, x.relevant, x.answers) for x in q] == [
        ("C1_Q0", "生命数耗完即算为什么？", ["C1"], ["踢爆"])
    ]


def test_beir(tmp_path: Path) -> None:
    src = tmp_path / "beir"
    (src / "qrels").mkdir(parents=True)
    (src / "corpus.jsonl").write_text(
        '{"_id": "d1", "title": "Disk", "text": "Disk full: prune images."}\n'
        '{"_id": "d2", "title": "", "text": "OOMKilled means memory limit."}\n',
        encoding="utf-8",
    )
    (src / "queries.jsonl").write_text(
        '{"_id": "q1", "text": "disk is full"}\n{"_id": "q2", "text": "no qrels"}\n', encoding="utf-8"
    )
    (src / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t0\n", encoding="utf-8"
    )
    assert main(["eval", "convert", "beir", str(src), "--out", str(tmp_path / "out")]) == 0
    corpus = _jsonl(tmp_path / "out" / "corpus.jsonl")
    assert corpus == [
        {"id": "d1", "text": "Disk full: prune images.", "title": "Disk"},
        {"id": "d2", "text": "OOMKilled means memory limit."},
    ]
    assert _jsonl(tmp_path / "out" / "queries.jsonl") == [
        {"id": "q1", "query": "disk is full", "relevant": ["d1"]}
    ]


def test_bad_input_is_one_line_error(tmp_path: Path, capsys: object) -> None:
    src = tmp_path / "bad.json"
    src.write_text('{"nope": 1}', encoding="utf-8")
    assert main(["eval", "convert", "squad", str(src), "--out", str(tmp_path / "out")]) == 1
