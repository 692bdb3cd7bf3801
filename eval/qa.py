"""`ragserve eval qa`: end-to-end answer quality through the gateway's HTTP API.

Either an in-process gateway (`service.app.create_app` with the configured engine, on a free
loopback port in a thread, data in a temporary directory) or a running server (`--url`). Every
query is asked as `model: "rag/<collection>"` (or `--model M` with `rag: {"collection": ...}`, e.g. a LoRA
adapter), non-streaming, temperature 0, and scored:

- `exact_match`, `f1`: against the query's `answers` (SQuAD normalization; character tokens for
  Chinese), with the `[n]` citation markers removed from the answer;
- `answer_in_passages`: a gold answer occurs in some passage given to the model (retrieval's
  ceiling for the answer); `answer_in_citations`: ... in a passage the answer cites as `[n]`;
- `citation_precision`: cited passages that come from a relevant document, over all cited
  passages (mean over answers citing anything); `cited_rate`: answers citing at least one;
- negative rejection: for a sample of queries the relevant documents are withheld (the request's
  `rag.filters` admit every other document of the collection) and `abstention_rate` is the share of
  those answers that say they do not know, in the wording the prompt templates ask for;
  `false_abstention_rate` is the same test on the normal answers. `abstention_rate_answer_absent`
  counts only the withheld queries whose passages hold no gold answer (another document may state
  it too: then answering is right), and `withheld_answer_present` says how many were left out.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from eval import metrics as m
from eval import report
from eval.data import Query, check_corpus, load_queries, write_jsonl

if TYPE_CHECKING:
    from ingest.embedding import Embedder
    from service.settings import Settings

QA_KEYS = (
    "exact_match",
    "f1",
    "answer_in_passages",
    "answer_in_citations",
    "citation_precision",
    "cited_rate",
    "abstention_rate",
    "abstention_rate_answer_absent",
    "false_abstention_rate",
)
# Said by models that abstain without the template's exact wording; matched after normalization.
_EXTRA_ABSTAIN = (
    "i don't know",
    "i do not know",
    "do not contain the answer",
    "does not contain the answer",
    "no information",
    "cannot answer",
    "我不知道",
    "无法回答",
    "没有相关",
    "未提及",
)


def abstention_phrases() -> list[str]:
    """Normalized phrases meaning "I don't know": the gateway's abstention sentences, and kin."""
    try:
        from service.rag.prompt import ABSTENTIONS

        found = list(ABSTENTIONS)
    except ModuleNotFoundError:
        found = []
    phrases = [m.normalize_answer(p) for p in [*found, *_EXTRA_ABSTAIN]]
    return list(dict.fromkeys(p for p in phrases if p))


def abstains(answer: str, phrases: Sequence[str]) -> bool:
    """Whether the answer says it does not know (normalized substring; spaces ignored for Chinese)."""
    a = m.normalize_answer(answer)
    compact = a.replace(" ", "")
    return any((p.replace(" ", "") in compact) if m.is_cjk(p) else (p in a) for p in phrases)


@dataclass
class Answer:
    """One gateway answer and its scores."""

    query: Query
    withheld: bool
    text: str = ""
    citations: list[dict[str, Any]] = field(default_factory=list)
    latency_ms: float = 0.0
    error: str | None = None
    # The gateway's `grounding` report, when it changed or flagged the answer (relevance gate, support
    # check): which of the abstentions were the gateway's and which the model's own.
    grounding: dict[str, Any] | None = None

    @property
    def cited(self) -> list[dict[str, Any]]:
        return [c for c in self.citations if c.get("cited")]

    def scores(self, phrases: Sequence[str]) -> dict[str, Any]:
        q = self.query
        out: dict[str, Any] = {"abstained": abstains(self.text, phrases)}
        if self.withheld:
            # Another document may hold the answer too: then abstaining is not the right answer, and
            # `abstention_rate_answer_absent` leaves the query out.
            if q.answers:
                out["answer_in_passages"] = float(
                    any(m.contains_answer(c.get("text", ""), q.answers) for c in self.citations)
                )
            return out
        if q.answers:
            out["exact_match"] = m.exact_match(self.text, q.answers)
            out["f1"] = m.token_f1(self.text, q.answers)
            out["answer_in_passages"] = float(
                any(m.contains_answer(c.get("text", ""), q.answers) for c in self.citations)
            )
            out["answer_in_citations"] = float(
                any(m.contains_answer(c.get("text", ""), q.answers) for c in self.cited)
            )
        out["cited_any"] = float(bool(self.cited))
        if self.cited:
            rel = set(q.relevant)
            out["citation_precision"] = sum(c.get("document_id") in rel for c in self.cited) / len(self.cited)
        return out


class Gateway:
    """A small client of the ragserve HTTP API."""

    def __init__(self, url: str, api_key: str | None = None, timeout_s: float = 300.0) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)

    def close(self) -> None:
        self.http.close()

    def wait_ready(self, timeout_s: float) -> None:
        """Wait for /readyz (engine answering, index loaded)."""
        deadline = time.monotonic() + timeout_s
        last = ""
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                r = self.http.get("/readyz", timeout=5)
                if r.status_code == 200:
                    return
                last = r.text[:200]
            time.sleep(1.0)
        raise TimeoutError(f"{self.url} was not ready within {timeout_s:.0f} s ({last})")

    def _ok(self, r: httpx.Response) -> Any:
        if r.status_code >= 400:
            raise RuntimeError(
                f"{r.request.method} {r.request.url.path}: HTTP {r.status_code}: {r.text[:300]}"
            )
        return r.json()

    def collection_exists(self, name: str) -> bool:
        data = self._ok(self.http.get("/v1/collections"))
        items = data.get("data", data) if isinstance(data, dict) else data
        return any((c.get("name") if isinstance(c, dict) else c) == name for c in items)

    def document_ids(self, name: str) -> list[str]:
        data = self._ok(self.http.get(f"/v1/collections/{name}/documents"))
        return [d["document_id"] for d in data["data"]]

    def upload(self, name: str, corpus: Path, timeout_s: float = 3600.0) -> dict[str, Any]:
        """Create the collection and upload the corpus (a JSONL file, or a directory's files)."""
        if corpus.is_dir():
            files = sorted(p for p in corpus.rglob("*") if p.is_file() and not p.name.startswith("."))
            nested = [p.relative_to(corpus).as_posix() for p in files if p.parent != corpus]
            if nested:  # uploads take plain file names (issue 19): the document ids would change
                raise ValueError(
                    f"{corpus} has files in subfolders (e.g. {nested[0]}), which an upload cannot name; "
                    f"ingest it on the server (`ragserve ingest {corpus} --collection NAME`) and pass "
                    "--collection NAME, or give a JSONL corpus"
                )
        else:
            files = [corpus]
        self._ok(self.http.post("/v1/collections", json={"name": name}))
        summary: dict[str, Any] = {}
        for start in range(0, len(files), 50):
            batch = files[start : start + 50]
            with contextlib.ExitStack() as stack:
                parts = [
                    (
                        "file",
                        (
                            p.relative_to(corpus).as_posix() if corpus.is_dir() else p.name,
                            stack.enter_context(open(p, "rb")),
                        ),
                    )
                    for p in batch
                ]
                job = self._ok(self.http.post(f"/v1/collections/{name}/documents", files=parts))
            deadline = time.monotonic() + timeout_s
            while True:
                st = self._ok(self.http.get(f"/v1/jobs/{job['job_id']}"))
                if st["status"] in ("succeeded", "failed"):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"ingest job {job['job_id']} did not finish")
                time.sleep(0.5)
            if st["status"] == "failed":
                raise RuntimeError(f"ingest job failed: {st.get('error')}")
            for k, v in (st.get("summary") or {}).items():
                if isinstance(v, (int, float)):
                    summary[k] = summary.get(k, 0) + v
        return summary

    def delete_collection(self, name: str) -> None:
        with contextlib.suppress(httpx.HTTPError):
            self.http.delete(f"/v1/collections/{name}")

    def ask(
        self, collection: str, q: Query, *, withheld: bool, allowed: list[str] | None, options: dict[str, Any]
    ) -> Answer:
        rag: dict[str, Any] = {k: v for k, v in options.items() if k in ("top_k", "mode") and v}
        if allowed is not None:
            rag["filters"] = {"document_id": allowed}
        model = options.get("model")
        if model:  # a chosen model (e.g. a LoRA adapter) grounded through the `rag` field
            rag["collection"] = collection
        body: dict[str, Any] = {
            "model": model or f"rag/{collection}",
            "messages": [{"role": "user", "content": q.query}],
            "temperature": 0,
            "max_tokens": options.get("max_tokens") or 128,
        }
        if rag:
            body["rag"] = rag
        t0 = time.perf_counter()
        ans = Answer(q, withheld)
        try:
            r = self.http.post("/v1/chat/completions", json=body)
            ans.latency_ms = (time.perf_counter() - t0) * 1000
            data = self._ok(r)
            ans.text = "".join(
                str((c.get("message") or {}).get("content") or "") for c in data.get("choices", [])
            )
            ans.citations = list(data.get("citations") or [])
            ans.grounding = data.get("grounding")
        except (httpx.HTTPError, RuntimeError, ValueError) as exc:
            ans.latency_ms = (time.perf_counter() - t0) * 1000
            ans.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return ans


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve_app(app: Any, timeout_s: float = 120.0) -> Iterator[str]:
    """Run an ASGI app with uvicorn on a free loopback port in a daemon thread; yields its root URL."""
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="eval-gateway", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the in-process gateway failed to start")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise TimeoutError("the in-process gateway did not start")
        time.sleep(0.05)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=60)


def choose_withheld(queries: Sequence[Query], n: int, seed: int) -> list[Query]:
    """A reproducible sample of queries (with relevant documents) to ask with those documents withheld."""
    pool = [q for q in queries if q.relevant]
    rng = random.Random(seed)
    return sorted(rng.sample(pool, min(n, len(pool))), key=lambda q: q.id)


def run(
    gw: Gateway,
    collection: str,
    queries: Sequence[Query],
    *,
    withheld: Sequence[Query],
    options: dict[str, Any],
    concurrency: int = 1,
    log: Callable[[str], None] = lambda _m: None,
) -> list[Answer]:
    """Ask every query normally, then the withheld sample with its relevant documents filtered out."""
    all_ids = gw.document_ids(collection) if withheld else []
    jobs: list[tuple[Query, bool, list[str] | None]] = [(q, False, None) for q in queries]
    for q in withheld:
        rel = set(q.relevant)
        jobs.append((q, True, [d for d in all_ids if d not in rel] or ["\x00none"]))
    done = 0
    lock = threading.Lock()

    def one(job: tuple[Query, bool, list[str] | None]) -> Answer:
        nonlocal done
        ans = gw.ask(collection, job[0], withheld=job[1], allowed=job[2], options=options)
        with lock:
            done += 1
            if done % 25 == 0 or done == len(jobs):
                log(f"  {done}/{len(jobs)} answers")
        return ans

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        return list(pool.map(one, jobs))


def summarize(
    answers: Sequence[Answer], phrases: Sequence[str]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(metrics, per-answer rows)."""
    rows: list[dict[str, Any]] = []
    for a in answers:
        s = a.scores(phrases) if a.error is None else {}
        rows.append(
            {
                "id": a.query.id,
                "withheld": a.withheld,
                "query": a.query.query,
                "answer": a.text,
                "gold": a.query.answers[:3],
                "error": a.error,
                "latency_ms": round(a.latency_ms, 1),
                "citations": [c.get("document_id") for c in a.citations],
                "cited": [c.get("index") for c in a.cited],
                "grounding": (a.grounding or {}).get("reason"),
                **s,
            }
        )
    normal = [r for r in rows if not r["withheld"] and r["error"] is None]
    held = [r for r in rows if r["withheld"] and r["error"] is None]

    def mean(rs: list[dict[str, Any]], key: str) -> float | None:
        vals = [float(r[key]) for r in rs if key in r]
        return round(sum(vals) / len(vals), 4) if vals else None

    lat = [a.latency_ms for a in answers if a.error is None]
    doc: dict[str, Any] = {
        "n_queries": sum(1 for a in answers if not a.withheld),
        "n_withheld": sum(1 for a in answers if a.withheld),
        "errors": sum(1 for a in answers if a.error is not None),
        "exact_match": mean(normal, "exact_match"),
        "f1": mean(normal, "f1"),
        "answer_in_passages": mean(normal, "answer_in_passages"),
        "answer_in_citations": mean(normal, "answer_in_citations"),
        "citation_precision": mean(normal, "citation_precision"),
        "cited_rate": mean(normal, "cited_any"),
        "abstention_rate": mean(held, "abstained"),
        "abstention_rate_answer_absent": mean(
            [r for r in held if not r.get("answer_in_passages")], "abstained"
        ),
        "withheld_answer_present": sum(1 for r in held if r.get("answer_in_passages")),
        "false_abstention_rate": mean(normal, "abstained"),
        "latency_ms_p50": round(m.percentile(lat, 50), 1),
        "latency_ms_p99": round(m.percentile(lat, 99), 1),
    }
    return doc, rows


def write_outputs(out_dir: Path, answers: Sequence[Answer], info: dict[str, Any]) -> dict[str, Any]:
    """metrics.json, answers.jsonl, report.md and plots."""
    out_dir.mkdir(parents=True, exist_ok=True)
    phrases = abstention_phrases()
    doc, rows = summarize(answers, phrases)
    doc = {**doc, **info, "abstention_phrases": phrases, "machine": report.machine()}
    report.write_json(out_dir / "metrics.json", doc)
    write_jsonl(out_dir / "answers.jsonl", rows)
    normal = [r for r in rows if not r["withheld"] and r["error"] is None]
    report.plot_bars(
        out_dir / "qa_metrics.png",
        {"answers": {k.replace("_", "\n"): float(doc[k] or 0.0) for k in QA_KEYS}},
        [k.replace("_", "\n") for k in QA_KEYS],
        title="answer quality",
    )
    report.plot_histograms(
        out_dir / "f1_hist.png",
        {"F1": [r["f1"] for r in normal if "f1" in r]},
        title="token F1 per answer",
        xlabel="F1",
    )
    report.plot_histograms(
        out_dir / "latency_hist.png",
        {
            "answered": [r["latency_ms"] for r in rows if not r["withheld"]],
            "withheld": [r["latency_ms"] for r in rows if r["withheld"]],
        },
        title="end-to-end latency",
        xlabel="ms per request",
    )
    (out_dir / "report.md").write_text(_report_md(doc, rows), encoding="utf-8")
    return doc


def _report_md(doc: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    mach = doc["machine"]
    lines = [
        "# Answer-quality evaluation (end to end through the gateway)",
        "",
        f"- date: {mach['date']}, host {mach['host']}, {mach['cpus']} CPUs, load average {mach['loadavg']}",
        f"- gateway: {doc.get('gateway')}, collection: {doc.get('collection')}, model: {doc.get('model')}",
        f"- queries: {doc['n_queries']} answered normally, "
        f"{doc['n_withheld']} with their documents withheld; "
        f"errors: {doc['errors']}",
        "",
        "## Metrics",
        "",
        report.md_table(
            ["metric", "value"],
            [
                [k, doc[k] if doc[k] is not None else "n/a"]
                for k in (*QA_KEYS, "latency_ms_p50", "latency_ms_p99")
            ],
        ),
        "",
        "![metrics](qa_metrics.png) ![F1](f1_hist.png) ![latency](latency_hist.png)",
        "",
    ]
    normal = [r for r in rows if not r["withheld"] and r["error"] is None and "f1" in r]
    worst = sorted(normal, key=lambda r: (r["f1"], r.get("answer_in_passages", 0.0)))[:15]
    if worst:
        lines += ["## Lowest-F1 answers", ""]
        lines += [
            report.md_table(
                ["id", "query", "gold", "answer", "F1", "answer in passages", "cited docs"],
                [
                    [
                        r["id"],
                        r["query"],
                        " / ".join(r["gold"]),
                        r["answer"],
                        r["f1"],
                        r.get("answer_in_passages", ""),
                        ", ".join(str(c) for c in r["citations"][:3]),
                    ]
                    for r in worst
                ],
            ),
            "",
        ]
    held = [r for r in rows if r["withheld"] and r["error"] is None and not r.get("abstained")]
    if held:
        lines += ["## Withheld documents, yet answered (no abstention)", ""]
        lines += [
            report.md_table(
                ["id", "query", "answer"], [[r["id"], r["query"], r["answer"]] for r in held[:15]]
            ),
            "",
        ]
    errors = [r for r in rows if r["error"]]
    if errors:
        lines += (
            ["## Errors", ""] + [f"- {r['id']}: {report.md_cell(r['error'])}" for r in errors[:20]] + [""]
        )
    return "\n".join(lines)


def evaluate(
    *,
    queries: Sequence[Query],
    out_dir: Path,
    corpus: Path | None,
    url: str | None = None,
    settings: Settings | None = None,
    embedder: Embedder | None = None,
    collection: str | None = None,
    withhold: int = 20,
    seed: int = 0,
    options: dict[str, Any] | None = None,
    concurrency: int = 1,
    api_key: str | None = None,
    ready_timeout_s: float = 900.0,
    log: Callable[[str], None] = lambda _m: None,
) -> dict[str, Any]:
    """Run the QA evaluation in-process (url None: a gateway built from `settings`) or against `url`."""
    opts = dict(options or {})
    held = choose_withheld(queries, withhold, seed)
    if url is not None:
        gw = Gateway(url, api_key)
        try:
            gw.wait_ready(ready_timeout_s)
            name, created, ingest_info = collection, False, {}
            if name is None or not gw.collection_exists(name):
                if corpus is None:
                    raise ValueError("give --corpus (or an existing --collection)")
                name = name or f"eval-{uuid.uuid4().hex[:8]}"
                log(f"uploading {corpus} into collection {name!r} on {url} ...")
                ingest_info = gw.upload(name, check_corpus(corpus))
                created = collection is None
            answers = run(gw, name, queries, withheld=held, options=opts, concurrency=concurrency, log=log)
            if created:
                gw.delete_collection(name)
        finally:
            gw.close()
        info = {
            "gateway": url,
            "collection": name,
            "ingest": ingest_info,
            "model": opts.get("model") or f"rag/{name}",
        }
        return write_outputs(out_dir, answers, {**info, "options": opts})

    from ingest.embedding import Embedder
    from ingest.knowledge_base import KnowledgeBase
    from service.app import create_app
    from service.settings import Settings

    base = settings or Settings()
    with tempfile.TemporaryDirectory(prefix="ragserve-eval-qa-") as tmp:
        s = base.model_copy(update={"data_dir": Path(tmp)})
        if s.engine.mode == "embedded":
            # The prepared model stays where it is (the configured data dir), not in the temporary one.
            from service.engine.model_prep import resolve_model

            model = resolve_model(s.engine.model, base.models_dir, variant=s.engine.variant, log=log)
            s.engine = s.engine.model_copy(update={"model": str(model)})
        emb = embedder or Embedder.load(s.embedding.model, s.embedding.device, s.embedding.batch_size)
        name = collection or "eval"
        if corpus is None:
            raise ValueError("the in-process gateway needs --corpus")
        log(f"ingesting {corpus} ...")
        summary = KnowledgeBase(s.collections_dir, emb).ingest_paths(name, [check_corpus(corpus)])
        log(
            f"ingested: {summary.to_dict(with_failures=False)}; "
            f"starting the gateway (engine: {s.engine.mode}) ..."
        )
        app = create_app(s, embedder=emb)
        with serve_app(app, timeout_s=ready_timeout_s) as root:
            gw = Gateway(root, timeout_s=s.engine.request_timeout_s)
            try:
                gw.wait_ready(ready_timeout_s)
                answers = run(
                    gw, name, queries, withheld=held, options=opts, concurrency=concurrency, log=log
                )
            finally:
                gw.close()
        info = {
            "gateway": "in-process",
            "collection": name,
            "ingest": summary.to_dict(with_failures=False),
            "model": opts.get("model") or s.engine.served_model_name,
            "engine": s.engine.mode,
        }
        return write_outputs(out_dir, answers, {**info, "options": opts})


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of `ragserve eval qa`."""
    p.add_argument(
        "--corpus", type=Path, help="directory of files, or JSONL of {id, text, title?, metadata?}"
    )
    p.add_argument("--queries", type=Path, required=True, help="JSONL of {id, query, relevant, answers}")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--url", help="root of a running ragserve (without /v1); default: an in-process gateway")
    p.add_argument("--api-key", help="API key for --url (default: RAGSERVE_API_KEY)")
    p.add_argument(
        "--collection", help="use this existing collection (with --url) instead of uploading --corpus"
    )
    p.add_argument("--limit", type=int, default=0, help="ask only N queries (a seeded random sample)")
    p.add_argument(
        "--withhold", type=int, default=20, help="queries asked again with their documents withheld"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--top-k", type=int, default=0, help="passages per answer (default: the server's)")
    p.add_argument(
        "--mode", choices=["hybrid", "dense", "bm25"], help="retrieval mode (default: the server's)"
    )
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--concurrency", type=int, default=4, help="requests in flight")
    p.add_argument(
        "--model",
        help="answer with this model (e.g. a LoRA adapter) and the `rag` field; default: rag/<collection>",
    )


def cmd(args: argparse.Namespace) -> int:
    """Handler of `ragserve eval qa`."""
    import os

    queries = load_queries(args.queries)
    if args.limit and args.limit < len(queries):
        queries = sorted(random.Random(args.seed).sample(queries, args.limit), key=lambda q: q.id)
    if not any(q.answers for q in queries):
        print(
            "note: the queries carry no answers; only citation and abstention metrics apply", file=sys.stderr
        )
    doc = evaluate(
        queries=queries,
        out_dir=args.out,
        corpus=args.corpus,
        url=args.url,
        settings=getattr(args, "settings", None),
        collection=args.collection,
        withhold=args.withhold,
        seed=args.seed,
        options={"top_k": args.top_k, "mode": args.mode, "max_tokens": args.max_tokens, "model": args.model},
        concurrency=args.concurrency,
        api_key=args.api_key or os.environ.get("RAGSERVE_API_KEY"),
        log=lambda msg: print(msg, file=sys.stderr),
    )
    for k in (*QA_KEYS, "latency_ms_p50", "latency_ms_p99", "errors"):
        print(f"{k:<24} {doc[k]}")
    print(f"wrote {args.out}/metrics.json, report.md and plots")
    return 0
