"""`ragserve eval retrieval`: retrieval quality and latency of each search mode on a labelled set.

The corpus goes into a collection (a temporary one under a temporary data directory, or the
named one, incrementally: an unchanged corpus costs a hash per file), every query is run once
per mode, and the chunks returned are collapsed to documents (a document ranks where its best
chunk ranks) before scoring, since relevance is labelled per document. Latency is the wall time
of one `KnowledgeBase.search` call (query embedding included), after one warm-up query per mode.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eval import metrics as m
from eval import report
from eval.data import Query, check_corpus, load_queries, write_jsonl

if TYPE_CHECKING:
    from ingest.embedding import Embedder
    from ingest.knowledge_base import KnowledgeBase

MODES = ("hybrid", "dense", "bm25")
METRIC_KEYS = ("hit@1", "hit@3", "hit@5", "hit@10", "mrr@10", "ndcg@10", "recall@10")
WORST_SHOWN = 15


@dataclass
class Retrieved:
    """What one query got back in one mode, as documents in rank order."""

    query: Query
    ranked: list[str]
    latency_ms: float
    top: list[dict[str, Any]] = field(default_factory=list)  # first chunks, for the report

    @property
    def rank(self) -> int | None:
        return m.first_relevant_rank(self.ranked, self.query.relevant)


def parse_modes(text: str) -> list[str]:
    """'hybrid,dense' -> ['hybrid', 'dense'], checked."""
    modes = [x.strip() for x in text.split(",") if x.strip()]
    bad = [x for x in modes if x not in MODES]
    if bad or not modes:
        raise ValueError(f"unknown mode(s) {', '.join(bad) or '(none)'}; use {','.join(MODES)}")
    return list(dict.fromkeys(modes))


def run_queries(
    kb: KnowledgeBase,
    collection: str,
    queries: Sequence[Query],
    mode: str,
    *,
    top_k: int = 10,
    progress: Callable[[int, int], None] | None = None,
) -> list[Retrieved]:
    """Run every query in one mode; documents ranked by their best chunk."""
    fetch = max(4 * top_k, 40)  # chunks: enough that top_k distinct documents survive the collapse
    if queries:
        kb.search(collection, queries[0].query, top_k=fetch, mode=mode)  # warm-up (lazy loads, caches)
    out: list[Retrieved] = []
    for i, q in enumerate(queries, 1):
        t0 = time.perf_counter()
        hits = kb.search(collection, q.query, top_k=fetch, mode=mode)
        ms = (time.perf_counter() - t0) * 1000
        ranked = m.dedupe(h.document_id for h in hits)[:top_k]
        top = [
            {
                "document_id": h.document_id,
                "chunk_id": h.chunk_id,
                "score": round(h.score, 4),
                "text": h.text[:200],
            }
            for h in hits[:3]
        ]
        out.append(Retrieved(q, ranked, ms, top))
        if progress is not None:
            progress(i, len(queries))
    return out


def evaluate(
    *,
    queries: Sequence[Query],
    modes: Sequence[str],
    out_dir: Path,
    corpus: Path | None = None,
    collection: str | None = None,
    data_dir: Path | None = None,
    embedder: Embedder | None = None,
    embedding_model: str | None = None,
    threads: int | None = None,
    top_k: int = 10,
    log: Callable[[str], None] | None = None,
    settings: Any = None,
) -> dict[str, Any]:
    """Ingest (if a corpus is given), run, and write metrics.json, report.md, per_query.jsonl and plots.

    A collection built with another bundled embedder than `embedding_model` is searched with its own.
    """
    from ingest.embedding import DEFAULT_MODEL, Embedder
    from ingest.knowledge_base import KnowledgeBase

    say = log or (lambda _msg: None)
    if top_k < 1:
        raise ValueError("--top-k must be at least 1")

    def load(model: str) -> Embedder:
        return Embedder.load(model, threads=threads)

    emb = embedder or load(embedding_model or DEFAULT_MODEL)
    with tempfile.TemporaryDirectory(prefix="ragserve-eval-") as tmp:
        if collection is None:
            root, name = Path(tmp) / "collections", "eval"
        else:
            root, name = Path(data_dir or "./var") / "collections", collection
        backend = None
        if settings is not None:  # store.backend; a temporary collection goes to a temporary Milvus Lite file
            from ingest.store.factory import backend_from_settings, open_backend

            if collection is None and settings.store.backend == "milvus" and not settings.store.milvus.uri:
                backend = open_backend("milvus", collections_dir=root)
            else:
                backend = backend_from_settings(settings, root)
        kb = KnowledgeBase(root, emb, load_embedder=load, backend=backend)
        ingest_info: dict[str, Any] = {}
        if corpus is not None:
            say(f"ingesting {corpus} into collection {name!r} ...")
            summary = kb.ingest_paths(name, [check_corpus(corpus)])
            ingest_info = summary.to_dict(with_failures=False)
            for f in summary.failures[:20]:
                say(f"  failed: {f.source}: {f.reason}")
            say(f"ingested: {ingest_info}")
        elif not kb.exists(name):
            raise ValueError(f"collection {name!r} does not exist; give --corpus to build it")
        documents = {d.document_id for d in kb.list_documents(name)}
        missing = sorted({r for q in queries for r in q.relevant} - documents)
        results: dict[str, list[Retrieved]] = {}
        for mode in modes:
            t0 = time.perf_counter()
            results[mode] = run_queries(kb, name, queries, mode, top_k=top_k)
            say(f"{mode}: {len(queries)} queries in {time.perf_counter() - t0:.1f} s")
        manifest = kb.info(name)
        info = {
            "collection": collection or "(temporary)",
            "embedding_model": manifest.embedding_model,
            "corpus": str(corpus) if corpus else None,
            "documents": len(documents),
            "chunks": kb.chunk_count(name),
            "ingest": ingest_info,
            "relevant_ids_not_in_collection": len(missing),
            "store": kb.backend.name,
        }
        kb.backend.close()
    return write_outputs(out_dir, results, top_k=top_k, info=info, missing=missing)


def write_outputs(
    out_dir: Path,
    results: dict[str, list[Retrieved]],
    *,
    top_k: int,
    info: dict[str, Any],
    missing: Sequence[str] = (),
) -> dict[str, Any]:
    """metrics.json (first mode's figures at top level too), report.md, per_query.jsonl, PNG plots."""
    out_dir.mkdir(parents=True, exist_ok=True)
    per_mode = {
        mode: m.retrieval_summary(
            [r.ranked for r in rs], [r.query.relevant for r in rs], [r.latency_ms for r in rs]
        )
        for mode, rs in results.items()
    }
    primary = next(iter(per_mode))
    languages = sorted({r.query.language for rs in results.values() for r in rs if r.query.language})
    by_language = {
        lang: {
            mode: m.retrieval_summary(
                [r.ranked for r in rs if r.query.language == lang],
                [r.query.relevant for r in rs if r.query.language == lang],
                [r.latency_ms for r in rs if r.query.language == lang],
            )
            for mode, rs in results.items()
        }
        for lang in languages
    }
    doc: dict[str, Any] = {
        "mode": primary,
        **per_mode[primary],
        "modes": per_mode,
        "by_language": by_language,
        "top_k": top_k,
        **info,
        "machine": report.machine(),
    }
    report.write_json(out_dir / "metrics.json", doc)
    write_jsonl(
        out_dir / "per_query.jsonl",
        (
            {
                "mode": mode,
                "id": r.query.id,
                "rank": r.rank,
                "ranked": r.ranked,
                "latency_ms": round(r.latency_ms, 2),
            }
            for mode, rs in results.items()
            for r in rs
        ),
    )
    curves = {
        mode: m.hit_curve([r.ranked for r in rs], [r.query.relevant for r in rs], top_k)
        for mode, rs in results.items()
    }
    report.plot_curves(
        out_dir / "hit_at_k.png", curves, title="hit@k (document level)", xlabel="k", ylabel="hit rate"
    )
    report.plot_histograms(
        out_dir / "latency_hist.png",
        {mode: [r.latency_ms for r in rs] for mode, rs in results.items()},
        title="query latency",
        xlabel="ms per query (embedding included)",
    )
    report.plot_bars(
        out_dir / "modes.png", {k: {x: float(v[x]) for x in METRIC_KEYS} for k, v in per_mode.items()},
        list(METRIC_KEYS), title="retrieval metrics per mode",
    )  # fmt: skip
    (out_dir / "report.md").write_text(_report_md(results, per_mode, doc, missing), encoding="utf-8")
    return doc


def _report_md(
    results: dict[str, list[Retrieved]],
    per_mode: dict[str, dict[str, Any]],
    doc: dict[str, Any],
    missing: Sequence[str],
) -> str:
    lines = ["# Retrieval evaluation", ""]
    mach = doc["machine"]
    lines += [
        f"- date: {mach['date']}, host {mach['host']}, {mach['cpus']} CPUs, load average {mach['loadavg']}",
        f"- collection: {doc['collection']}, corpus: {doc['corpus']}, "
        f"{doc['documents']} documents, {doc['chunks']} chunks",
        f"- queries: {doc['n_queries']}; metrics are per document "
        "(a document ranks where its best chunk ranks)",
    ]
    if doc.get("ingest"):
        lines.append(f"- ingest: {doc['ingest']}")
    if missing:
        lines.append(
            f"- WARNING: {len(missing)} relevant document ids are not in the collection, e.g. {missing[:5]}"
        )
    lines += ["", "## Metrics", ""]
    header = ["mode", *METRIC_KEYS, "p50 ms", "p99 ms"]
    rows = [
        [mode, *(v[k] for k in METRIC_KEYS), v["latency_ms_p50"], v["latency_ms_p99"]]
        for mode, v in per_mode.items()
    ]
    lines += [report.md_table(header, rows), ""]
    for lang, modes_of in doc.get("by_language", {}).items():
        lines += [f"### Queries in {lang}", ""]
        rows_l = [
            [mode, *(v[k] for k in METRIC_KEYS), v["latency_ms_p50"], v["latency_ms_p99"], v["n_queries"]]
            for mode, v in modes_of.items()
        ]
        lines += [report.md_table([*header, "n"], rows_l), ""]
    lines += ["![hit@k](hit_at_k.png) ![modes](modes.png) ![latency](latency_hist.png)", ""]
    modes = list(results)
    if len(modes) > 1:
        lines += ["## Agreement between modes (hit@1)", ""]
        first = {mode: [r.rank == 1 for r in rs] for mode, rs in results.items()}
        n = len(results[modes[0]])
        rows2 = []
        for a in modes:
            for b in modes:
                if a < b:
                    both = sum(x and y for x, y in zip(first[a], first[b], strict=True))
                    only_a = sum(x and not y for x, y in zip(first[a], first[b], strict=True))
                    only_b = sum(y and not x for x, y in zip(first[a], first[b], strict=True))
                    rows2.append([f"{a} / {b}", both, only_a, only_b, n - both - only_a - only_b])
        lines += [report.md_table(["modes a / b", "both", "only a", "only b", "neither"], rows2), ""]
    for mode, rs in results.items():
        worst = sorted(rs, key=lambda r: (r.rank or 10**6, -r.latency_ms), reverse=True)
        worst = [r for r in worst if r.rank != 1][:WORST_SHOWN]
        lines += [f"## Worst queries: {mode}", ""]
        if not worst:
            lines += ["Every query found a relevant document first.", ""]
            continue
        rows3 = []
        for r in worst:
            got = "; ".join(f"{t['document_id']}: {t['text'][:80]}" for t in r.top[:2])
            rows3.append(
                [
                    r.query.id,
                    r.query.query,
                    ", ".join(r.query.relevant[:3]),
                    r.rank or f">{doc['top_k']}",
                    got,
                ]
            )
        lines += [
            report.md_table(["id", "query", "relevant", "rank", "retrieved instead (top chunks)"], rows3),
            "",
        ]
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of `ragserve eval retrieval`."""
    p.add_argument(
        "--corpus", type=Path, help="directory of files, or JSONL of {id, text, title?, metadata?}"
    )
    p.add_argument("--queries", type=Path, required=True, help="JSONL of {id, query, relevant, answers?}")
    p.add_argument("--mode", default="hybrid,dense,bm25", help="comma-separated: hybrid,dense,bm25")
    p.add_argument(
        "--collection",
        help="use (and incrementally update) this collection under the data dir instead of a temporary one",
    )
    p.add_argument("--top-k", type=int, default=10, help="documents scored per query (default 10)")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="compute threads for query embedding (torch's, or the C/numpy engines'; default: their own)",
    )


def cmd(args: argparse.Namespace) -> int:
    """Handler of `ragserve eval retrieval`."""
    if args.corpus is None and args.collection is None:
        raise ValueError("give --corpus, --collection, or both")
    queries = load_queries(args.queries)
    if args.threads:
        import torch

        # On a busy 2-core machine, 2 intra-op threads made one query embedding ~8x slower than 1.
        torch.set_num_threads(args.threads)
    settings = getattr(args, "settings", None)
    doc = evaluate(
        queries=queries,
        modes=parse_modes(args.mode),
        out_dir=args.out,
        corpus=args.corpus,
        collection=args.collection,
        data_dir=getattr(args, "data_dir", None),
        embedding_model=settings.embedding.model if settings else None,
        threads=args.threads or None,
        top_k=args.top_k,
        log=lambda msg: print(msg, file=sys.stderr),
        settings=settings,
    )
    cols = ("hit@1", "hit@3", "hit@5", "hit@10", "mrr@10", "ndcg@10", "latency_ms_p50", "latency_ms_p99")
    print(f"embedder: {doc.get('embedding_model')}")
    print("mode     " + " ".join(f"{c:>14}" for c in cols))
    for mode, row in doc["modes"].items():
        print(f"{mode:<8} " + " ".join(f"{row[c]:>14}" for c in cols))
    for lang, modes_of in doc["by_language"].items():
        for mode, row in modes_of.items():
            print(f"{mode + '/' + lang:<8} " + " ".join(f"{row[c]:>14}" for c in cols))
    print(f"wrote {args.out}/metrics.json, report.md and plots")
    return 0
