"""`ragserve eval convert`: public QA and retrieval sets into the project's corpus/queries JSONL.

- `squad` / `cmrc`: SQuAD-style JSON (`{"data": [{"title", "paragraphs": [{"context", "qas":
  [{"id", "question", "answers": [{"text"}], "is_impossible"?}]}]}]}`, which CMRC 2018's official
  files follow too) or the flat CMRC trial layout (`[{"context_id", "context_text", "title", "qas":
  [{"query_id", "query_text", "answers": [str]}]}]`). Each context becomes a document; each
  question is relevant to its own context and carries its answers. Unanswerable SQuAD 2.0
  questions are left out (they have no relevant document).
- `beir`: a BEIR directory (`corpus.jsonl` with `_id`, `title`, `text`; `queries.jsonl` with
  `_id`, `text`; `qrels/<split>.tsv` with `query-id`, `corpus-id`, `score`); relevant = score > 0.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from eval.data import EvalDataError, write_jsonl


def _read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except (OSError, json.JSONDecodeError) as exc:
        raise EvalDataError(f"cannot read {path}: {exc}") from exc


def _answer_texts(raw: Any) -> list[str]:
    out: list[str] = []
    for a in raw or []:
        text = a.get("text") if isinstance(a, dict) else a
        if isinstance(text, str) and text.strip() and text.strip() not in out:
            out.append(text.strip())
    return out


def convert_squad(source: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(corpus records, query records) from SQuAD-style or flat CMRC JSON."""
    raw = _read_json(source)
    corpus: list[dict[str, Any]] = []
    queries: list[dict[str, Any]] = []
    seen_q: set[str] = set()

    def add(doc_id: str, title: str | None, text: str, qas: list[dict[str, Any]]) -> None:
        rec: dict[str, Any] = {"id": doc_id, "text": text}
        if title:
            rec["title"] = title
        corpus.append(rec)
        for n, qa in enumerate(qas):
            if qa.get("is_impossible"):
                continue
            qid = str(qa.get("id") or qa.get("query_id") or f"{doc_id}_Q{n}")
            question = qa.get("question") or qa.get("query_text")
            if not isinstance(question, str) or not question.strip() or qid in seen_q:
                continue
            seen_q.add(qid)
            queries.append(
                {
                    "id": qid,
                    "query": question.strip(),
                    "relevant": [doc_id],
                    "answers": _answer_texts(qa.get("answers")),
                }
            )

    if isinstance(raw, dict) and isinstance(raw.get("data"), list):
        for a, article in enumerate(raw["data"]):
            title = article.get("title")
            for p, para in enumerate(article.get("paragraphs") or []):
                doc_id = str(para.get("id") or para.get("context_id") or f"{a}-{p}")
                add(doc_id, title, para.get("context") or "", para.get("qas") or [])
    elif isinstance(raw, list):
        for c, ctx in enumerate(raw):
            doc_id = str(ctx.get("context_id") or ctx.get("id") or c)
            add(
                doc_id,
                ctx.get("title"),
                ctx.get("context_text") or ctx.get("context") or "",
                ctx.get("qas") or [],
            )
    else:
        raise EvalDataError(f"{source}: neither SQuAD-style ({{'data': [...]}}) nor a CMRC list of contexts")
    corpus = [c for c in corpus if c["text"].strip()]
    if not corpus:
        raise EvalDataError(f"{source}: no contexts found")
    return corpus, queries


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    try:
        lines = Path(path).read_text(encoding="utf-8-sig").splitlines()
    except OSError as exc:
        raise EvalDataError(f"cannot read {path}: {exc.strerror or exc}") from exc
    for lineno, line in enumerate(lines, 1):
        if line.strip():
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise EvalDataError(f"{path} line {lineno}: invalid JSON ({exc.msg})") from exc


def convert_beir(source: Path, split: str = "test") -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(corpus records, query records) from a BEIR dataset directory; queries without qrels are left out."""
    qrels_path = source / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        raise EvalDataError(
            f"{qrels_path} not found (BEIR layout: corpus.jsonl, queries.jsonl, qrels/{split}.tsv)"
        )
    relevant: dict[str, list[str]] = {}
    with open(qrels_path, encoding="utf-8") as fh:
        for row in csv.reader(fh, delimiter="\t"):
            if len(row) < 3 or row[0] == "query-id":
                continue
            try:
                score = float(row[2])
            except ValueError:
                continue
            if score > 0:
                relevant.setdefault(row[0], []).append(row[1])
    corpus: list[dict[str, Any]] = []
    for rec in _jsonl(source / "corpus.jsonl"):
        out: dict[str, Any] = {"id": str(rec["_id"]), "text": rec.get("text") or ""}
        if rec.get("title"):
            out["title"] = rec["title"]
        if isinstance(rec.get("metadata"), dict) and rec["metadata"]:
            out["metadata"] = rec["metadata"]
        if out["text"].strip():
            corpus.append(out)
    queries = [
        {"id": str(q["_id"]), "query": q["text"], "relevant": relevant[str(q["_id"])]}
        for q in _jsonl(source / "queries.jsonl")
        if str(q["_id"]) in relevant
    ]
    return corpus, queries


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of `ragserve eval convert`."""
    p.add_argument("format", choices=["squad", "cmrc", "beir"], help="input layout")
    p.add_argument("source", type=Path, help="SQuAD/CMRC JSON file, or BEIR dataset directory")
    p.add_argument("--out", type=Path, required=True, help="directory for corpus.jsonl and queries.jsonl")
    p.add_argument("--split", default="test", help="BEIR qrels split (default test)")
    p.add_argument("--limit", type=int, default=0, help="keep only the first N queries (and their documents)")


def cmd(args: argparse.Namespace) -> int:
    """Handler of `ragserve eval convert`."""
    if args.format == "beir":
        corpus, queries = convert_beir(args.source, args.split)
    else:
        corpus, queries = convert_squad(args.source)
    if args.limit and args.limit > 0:
        queries = queries[: args.limit]
        if args.format != "beir":  # SQuAD-style: keep only the contexts of the kept questions
            keep = {r for q in queries for r in q["relevant"]}
            corpus = [c for c in corpus if c["id"] in keep]
    n_docs = write_jsonl(args.out / "corpus.jsonl", corpus)
    n_q = write_jsonl(args.out / "queries.jsonl", queries)
    print(
        f"wrote {n_docs} documents to {args.out / 'corpus.jsonl'}, "
        f"{n_q} queries to {args.out / 'queries.jsonl'}"
    )
    return 0
