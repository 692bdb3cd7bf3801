"""`ragserve eval rca`: root-cause analyses of labeled alerts through a running gateway.

Three alert sets, each alert labeled with the runbook document it should be grounded in (or none):
- `sample`: written for this project over deploy/sample_corpus (collection `default`, seeded by
  `ragserve serve`); realistic alerts with names, annotations and some caller evidence, plus
  alerts that have no runbook there (the analysis must then cite none). Always available.
- `openshift`: one alert per OpenShift runbook in ../shared/data/runbooks-openshift that has a
  "Meaning" section: that section, with the alert's name removed, is the alert's summary and the
  alertname label is a neutral placeholder, so only the alert text can find the runbook. The
  runbooks must be ingested into a collection first (`ragserve ingest DIR --collection openshift`);
  skipped cleanly when the data is absent. Near-verbatim runbook text: an easy set.
- `openshift-paraphrased`: the same corpus, alerts whose summary is a hand-written description of
  the problem in other words (the 40 held-out questions of eval/datasets/runbooks.py); harder.

Reported per set: runbook hit@1 / hit@3 among the analysis' `runbooks` (distinct documents, in
order), abstention on alerts without a runbook, schema validity of every response (including
502 `invalid_analysis` answers as invalid), evidence-reference validity checked here against what
was sent and retrieved (and how many refs the server had to drop), latency p50/p95.

    ragserve eval rca --url http://127.0.0.1:8000 --set sample --out DIR
    ragserve eval rca --url ... --set openshift --collection openshift --limit 25 --out DIR
    ragserve eval rca --url ... --set openshift-paraphrased --collection openshift --limit 20 --out DIR

`--retrieval-only` needs no gateway and no model: the analysis' retrieval step (`RunbookFinder`:
hybrid search, context guard, relevance threshold, more passages of the best runbook) runs in this
process over the data dir's collections with the configured embedder and store, and the runbooks an
analysis would cite are scored as above, with each alert's best relevance score (the dense cosine
the threshold `rca.min_dense_score` applies to) so the threshold can be checked per embedder:

    ragserve --data-dir DIR eval rca --retrieval-only --set sample --out OUT
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from pydantic import ValidationError

from eval import report
from eval.datasets.runbooks import PARAPHRASED_HELDOUT, meaning_query, tune_split
from eval.metrics import degenerate, percentile
from service.rca.models import RcaResponse

DEFAULT_OPENSHIFT = Path(__file__).resolve().parents[2] / "shared" / "data" / "runbooks-openshift"
_DROPPED = re.compile(r"(\d+) evidence references named items that were not supplied")

CRASH_LOGS = [
    "2026-11-23T09:58:41Z cart starting version 2.3.1",
    "2026-11-23T09:58:42Z cart FATAL: config key PAYMENT_URL is not set",
    "2026-11-23T09:58:42Z cart exited with code 1",
]


def _a(name: str, summary: str, description: str = "", **labels: str) -> dict[str, Any]:
    ann = {"summary": summary}
    if description:
        ann["description"] = description
    return {
        "status": "firing",
        "labels": {"alertname": name, **labels},
        "annotations": ann,
        "startsAt": "2026-11-23T10:00:00Z",
    }


# (id, alert, evidence, expected runbook document id or None when the corpus has none)
SAMPLE: list[tuple[str, dict[str, Any], dict[str, Any], str | None]] = [
    ("crashloop", _a("KubePodCrashLooping", "Pod shop/cart-7d9f is crash looping",
                     "Pod shop/cart-7d9f (container cart) is restarting 5 times / 10 minutes.",
                     namespace="shop", pod="cart-7d9f", severity="warning"),
     {"logs": [{"text": t, "source": "cart-7d9f"} for t in CRASH_LOGS],
      "changes": [{"description": "cart v2.3.1 rolled out", "kind": "deploy", "id": "CH-42"}]},
     "runbooks/kube-pod-crashlooping.md"),
    ("crashloop-bare", _a("KubePodCrashLooping", "Pod payments/api-5c6 is in CrashLoopBackOff",
                          namespace="payments", severity="warning"), {}, "runbooks/kube-pod-crashlooping.md"),
    ("errors", _a("HighErrorRate", "checkout returns 5xx for 7% of requests",
                  "More than 5% of requests to checkout failed over 5 minutes.", service="checkout",
                  severity="critical"),
     {"logs": [{"text": "ERROR db: too many connections (pool exhausted, 50/50)"}],
      "metrics": [{"name": "http_requests_total", "labels": {"service": "checkout", "status": "500"},
                   "samples": [{"timestamp": "2026-11-23T09:55:00Z", "value": 0.2},
                               {"timestamp": "2026-11-23T10:00:00Z", "value": 7.5}]}]},
     "runbooks/high-error-rate.md"),
    ("oom", _a("KubePodOOMKilled", "Container worker in batch/etl-1 was OOMKilled",
               "Exit code 137, memory limit 512Mi.", namespace="batch", severity="warning"),
     {"logs": [{"text": "Last State: Terminated Reason: OOMKilled Exit Code: 137"}]},
     "runbooks/pod-oomkilled.md"),
    ("disk", _a("NodeFilesystemSpaceFillingUp", "Filesystem / on node-3 will be full within 24 hours",
                instance="node-3", severity="warning"), {}, "runbooks/node-disk-pressure.md"),
    ("engine-down", _a("RagserveEngineDown", "ragserve gateway cannot reach its vLLM engine",
                       severity="critical"), {}, "runbooks/ragserve/RagserveEngineDown.md"),
    ("queue", _a("RagserveQueueSaturated", "requests wait in the vLLM scheduler queue",
                 severity="warning"), {}, "runbooks/ragserve/RagserveQueueSaturated.md"),
    ("index-stale", _a("RagserveIndexStale", "collection default index is 9 days old", severity="warning"),
     {}, "runbooks/ragserve/RagserveIndexStale.md"),
    ("ingest", _a("RagserveIngestionFailures", "ingestion failures in the last hour (reason parse_error)",
                  severity="warning"), {}, "runbooks/ragserve/RagserveIngestionFailures.md"),
    ("ttft", _a("RagserveTTFTSLOBurn", "time to first token SLO burning its error budget",
                severity="critical"), {}, "runbooks/ragserve/RagserveTTFTSLOBurn.md"),
    ("etcd", _a("EtcdNoLeader", "etcd cluster member has no leader", "for 1 minute", severity="critical"),
     {}, None),
    ("cert", _a("CertificateExpiringSoon", "TLS certificate for api.example.com expires in 7 days",
                severity="warning"), {}, None),
    ("kafka", _a("KafkaConsumerLagHigh", "consumer group orders lags 120k messages behind",
                 severity="warning"), {}, None),
]  # fmt: skip

OPENSHIFT_PLACEHOLDER = "OpenShiftAlert"


def sample_cases() -> list[dict[str, Any]]:
    return [
        {"id": cid, "alert": alert, "evidence": evidence, "expected": expected}
        for cid, alert, evidence, expected in SAMPLE
    ]


def openshift_cases(data: Path, *, limit: int | None = None) -> list[dict[str, Any]]:
    """One nameless alert per runbook "Meaning" section, from the report half of the fixed split
    (`tune_split` False), so these alerts share no runbook with the set used to tune fusion."""
    cases: list[dict[str, Any]] = []
    for p in sorted(data.rglob("*.md")):
        rel = p.relative_to(data).as_posix()
        if tune_split(rel):
            continue
        q = meaning_query(p.read_text(encoding="utf-8"), p.stem)
        if not q:
            continue
        alert = {
            "status": "firing",
            "labels": {"alertname": OPENSHIFT_PLACEHOLDER, "severity": "warning"},
            "annotations": {"summary": q},
        }
        cases.append({"id": f"os-{len(cases):03d}", "alert": alert, "evidence": {}, "expected": rel})
    if limit and len(cases) > limit:
        step = len(cases) / limit  # spread over the whole set, deterministic
        cases = [cases[int(i * step)] for i in range(limit)]
    return cases


def paraphrased_cases(data: Path, *, limit: int | None = None) -> list[dict[str, Any]]:
    """Nameless alerts whose summary is a hand-written operator's description of the problem (the
    held-out set of eval/datasets/runbooks.py, never used to tune retrieval): harder than "Meaning"."""
    cases = [
        {
            "id": f"para-{i:03d}",
            "alert": {
                "status": "firing",
                "labels": {"alertname": OPENSHIFT_PLACEHOLDER, "severity": "warning"},
                "annotations": {"summary": question},
            },
            "evidence": {},
            "expected": rel,
        }
        for i, (rel, question) in enumerate(PARAPHRASED_HELDOUT)
        if (data / rel).is_file()
    ]
    if limit and len(cases) > limit:
        step = len(cases) / limit
        cases = [cases[int(i * step)] for i in range(limit)]
    return cases


def supplied_ids(evidence: dict[str, Any]) -> set[str]:
    kinds = {"logs": "log", "metrics": "metric", "traces": "trace", "changes": "change"}
    return {f"{kind}:{i}" for key, kind in kinds.items() for i in range(len(evidence.get(key) or []))}


def check_response(case: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """Schema validity and reference validity of one response, checked independently of the server."""
    row: dict[str, Any] = {}
    try:
        out = RcaResponse.model_validate(body)
    except ValidationError as exc:
        row.update(schema_valid=False, schema_error=str(exc.errors()[0]))
        return row
    row["schema_valid"] = True
    runbook_text = {c.ref: c.text for c in out.runbooks}
    valid = (
        supplied_ids(case["evidence"]) | set(runbook_text) | {t.ref for t in out.tool_calls if t.ok and t.ref}
    )
    refs = [e for h in out.hypotheses for e in h.evidence]
    bad = [e.ref for e in refs if e.ref not in valid or e.kind != e.ref.split(":")[0]]
    bad += [
        e.ref
        for e in refs
        if e.kind == "runbook" and e.ref in runbook_text and not _same(e.excerpt, runbook_text[e.ref])
    ]
    docs: list[str] = []
    for c in out.runbooks:
        if c.document_id not in docs:
            docs.append(c.document_id)
    dropped = sum(int(m.group(1)) for note in out.missing_data if (m := _DROPPED.search(note)))
    texts = [out.summary] + [
        t for h in out.hypotheses for t in (h.title, h.reasoning, h.remediation, *h.checks)
    ]
    row.update(
        degenerate_strings=sum(degenerate(t) for t in texts),
        refs=len(refs),
        refs_invalid=len(bad),
        refs_dropped_by_server=dropped,
        runbook_docs=docs[:5],
        hypotheses=len(out.hypotheses),
        hypotheses_citing_runbook=sum(any(e.kind == "runbook" for e in h.evidence) for h in out.hypotheses),
        severity=out.severity,
        summary=out.summary,
        completion_tokens=out.usage.completion_tokens if out.usage else None,
    )
    expected = case["expected"]
    if expected is None:
        row["abstained"] = not docs
    else:
        row["hit@1"] = float(docs[:1] == [expected])
        row["hit@3"] = float(expected in docs[:3])
    return row


def _same(excerpt: str, text: str) -> bool:
    head = excerpt.rstrip("…").strip()
    return text.strip().startswith(head)


def run(
    url: str,
    cases: list[dict[str, Any]],
    *,
    collection: str,
    timeout_s: float,
    options: dict[str, Any],
    log: Callable[[str], None],
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with httpx.Client(timeout=timeout_s) as http:
        for case in cases:
            body = {
                "alert": case["alert"],
                "evidence": case["evidence"],
                "collection": collection,
                "options": options,
            }
            t0 = time.perf_counter()
            r = http.post(url + "/v1/rca", json=body)
            seconds = time.perf_counter() - t0
            row: dict[str, Any] = {"id": case["id"], "expected": case["expected"], "seconds": seconds,
                                   "status": r.status_code}  # fmt: skip
            if r.status_code == 200:
                row.update(check_response(case, r.json()))
            else:
                err = (r.json().get("error") or {}) if "json" in r.headers.get("content-type", "") else {}
                row.update(schema_valid=False, error=err.get("code") or r.text[:200])
            rows.append(row)
            log(
                f"{case['id']:16s} {r.status_code} {seconds:6.1f}s valid={row.get('schema_valid')} "
                f"hit@3={row.get('hit@3', '-')} refs={row.get('refs', '-')} "
                f"bad={row.get('refs_invalid', '-')}"
            )
    return rows


def run_retrieval(
    settings: Any, cases: list[dict[str, Any]], *, collection: str, log: Callable[[str], None]
) -> list[dict[str, Any]]:
    """The runbooks each analysis would cite, found in-process exactly as `POST /v1/rca` finds them."""
    import asyncio
    import tempfile

    from ingest.embedding import Embedder
    from ingest.knowledge_base import KnowledgeBase
    from ingest.store.factory import backend_from_settings
    from service.knowledge import KnowledgeService
    from service.observability.metrics import Metrics
    from service.rca.models import Alert
    from service.rca.runbooks import RunbookFinder, relevance_score
    from service.safety import GuardPipeline

    def load(model: str) -> Embedder:
        return Embedder.load(model, settings.embedding.device, settings.embedding.batch_size)

    backend = backend_from_settings(settings)
    kb = KnowledgeBase(
        settings.collections_dir, load(settings.embedding.model), load_embedder=load, backend=backend
    )
    if not kb.exists(collection):
        backend.close()
        raise ValueError(
            f"collection {collection!r} does not exist under {settings.data_dir}; ingest it first"
        )
    metrics = Metrics()
    mode = settings.rca.default_mode
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="ragserve-eval-rca-") as tmp:
        knowledge = KnowledgeService(kb, metrics, Path(tmp) / "jobs")
        finder = RunbookFinder(
            knowledge=knowledge, settings=settings, guard=GuardPipeline(settings.safety, metrics)
        )
        try:
            for case in cases:
                alert = Alert.model_validate(case["alert"])
                t0 = time.perf_counter()
                hits, relevant = asyncio.run(
                    finder.find(collection, alert, mode=mode, top_k=None, min_score=None)
                )
                seconds = time.perf_counter() - t0
                docs = list(dict.fromkeys(h.document_id for h in relevant))
                top = hits[0] if hits else None
                row: dict[str, Any] = {
                    "id": case["id"],
                    "expected": case["expected"],
                    "seconds": seconds,
                    "status": 200,
                    "runbook_docs": docs[:5],
                    "top_document": top.document_id if top else None,
                    "top_relevance": round(relevance_score(top, mode), 4) if top else None,
                }
                if case["expected"] is None:
                    row["abstained"] = not docs
                else:
                    row["hit@1"] = float(docs[:1] == [case["expected"]])
                    row["hit@3"] = float(case["expected"] in docs[:3])
                rows.append(row)
                log(
                    f"{case['id']:16s} {1000 * seconds:7.1f} ms top={row['top_document']} "
                    f"relevance={row['top_relevance']} cited={','.join(docs[:3]) or '-'}"
                )
        finally:
            backend.close()
    return rows


def summarize_retrieval(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Retrieval-only figures: hit rates, abstention, relevance scores either side of the threshold."""
    full = summarize(rows)
    keep = ("alerts", "runbook_hit@1", "runbook_hit@3", "abstention_on_no_runbook")
    out: dict[str, Any] = {k: full[k] for k in keep}
    with_rb = [
        r["top_relevance"] for r in rows if r["expected"] is not None and r["top_relevance"] is not None
    ]
    without = [r["top_relevance"] for r in rows if r["expected"] is None and r["top_relevance"] is not None]
    out["top_relevance_with_runbook_min_max"] = [min(with_rb), max(with_rb)] if with_rb else None
    out["top_relevance_without_runbook_min_max"] = [min(without), max(without)] if without else None
    lat = [1000 * r["seconds"] for r in rows]
    out["retrieval_ms_p50"] = percentile(lat, 50) if lat else None
    out["retrieval_ms_p95"] = percentile(lat, 95) if lat else None
    return out


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    labeled = [r for r in rows if r["expected"] is not None and "hit@1" in r]
    negatives = [r for r in rows if r["expected"] is None and "abstained" in r]
    ok = [r for r in rows if r["status"] == 200]
    refs = sum(r.get("refs", 0) for r in ok)
    lat = [r["seconds"] for r in rows]
    n_pos = sum(r["expected"] is not None for r in rows)
    hyps = sum(r.get("hypotheses", 0) for r in ok)
    return {
        "alerts": len(rows),
        "errors": sum(r["status"] != 200 for r in rows),
        "schema_validity": sum(bool(r.get("schema_valid")) for r in rows) / len(rows) if rows else None,
        # Hit rates over every alert with a runbook, failed analyses counting as misses.
        "runbook_hit@1": sum(r.get("hit@1", 0.0) for r in labeled) / n_pos if n_pos else None,
        "runbook_hit@3": sum(r.get("hit@3", 0.0) for r in labeled) / n_pos if n_pos else None,
        "abstention_on_no_runbook": (
            sum(r["abstained"] for r in negatives) / len(negatives) if negatives else None
        ),
        "evidence_refs": refs,
        "evidence_ref_validity": (1 - sum(r.get("refs_invalid", 0) for r in ok) / refs) if refs else None,
        "refs_dropped_by_server": sum(r.get("refs_dropped_by_server", 0) for r in ok),
        "hypotheses_mean": hyps / len(ok) if ok else None,
        # Analyses with a model-written string that loops (a word or 2-3 words 4 times in a row, "1.1.1.1").
        "degenerate_analyses": sum(r.get("degenerate_strings", 0) > 0 for r in ok) / len(ok) if ok else None,
        "hypotheses_citing_runbook": sum(r.get("hypotheses_citing_runbook", 0) for r in ok) / hyps
        if hyps
        else None,
        "latency_s_p50": percentile(lat, 50) if lat else None,
        "latency_s_p95": percentile(lat, 95) if lat else None,
        "completion_tokens_mean": (
            sum(r["completion_tokens"] for r in ok if r.get("completion_tokens")) / len(ok) if ok else None
        ),
    }


def write_outputs(out: Path, doc: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    report.write_json(out / "metrics.json", doc)
    s = doc["summary"]
    lines = [
        f"# RCA evaluation: set `{doc['set']}`, collection `{doc['collection']}`",
        "",
        f"Gateway {doc['url']}, {s['alerts']} alerts, options {json.dumps(doc['options'])}.",
        "",
        report.md_table(["metric", "value"], [[k, report.fmt(v)] for k, v in s.items()]),
        "",
        "## Alerts",
        "",
    ]
    if doc.get("retrieval_only"):
        lines.append(
            report.md_table(
                ["id", "ms", "expected", "top passage's document", "its relevance", "runbooks cited"],
                [
                    [
                        r["id"],
                        f"{1000 * r['seconds']:.1f}",
                        r["expected"] or "(none)",
                        r["top_document"] or "-",
                        report.fmt(r["top_relevance"]),
                        report.md_cell(", ".join(r["runbook_docs"]) or "-"),
                    ]
                    for r in doc["rows"]
                ],
            )
        )
        (out / "report.md").write_text("\n".join([*lines, ""]), encoding="utf-8")
        return
    lines += [
        report.md_table(
            ["id", "status", "s", "expected", "runbooks (documents)", "refs", "invalid", "dropped"],
            [
                [
                    r["id"],
                    r["status"],
                    f"{r['seconds']:.1f}",
                    r["expected"] or "(none)",
                    report.md_cell(", ".join(r.get("runbook_docs") or []) or "-"),
                    r.get("refs", "-"),
                    r.get("refs_invalid", "-"),
                    r.get("refs_dropped_by_server", "-"),
                ]
                for r in doc["rows"]
            ],
        ),
        "",
    ]
    (out / "report.md").write_text("\n".join(lines), encoding="utf-8")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of `ragserve eval rca`."""
    p.add_argument("--url", default="http://127.0.0.1:8000", help="gateway root (without /v1)")
    p.add_argument(
        "--set", choices=["sample", "openshift", "openshift-paraphrased"], default="sample", dest="alert_set"
    )
    p.add_argument("--collection", help="collection to analyse against (default: default / openshift)")
    p.add_argument("--data", type=Path, default=DEFAULT_OPENSHIFT, help="OpenShift runbooks directory")
    p.add_argument("--limit", type=int, help="at most N alerts (spread over the set)")
    p.add_argument("--max-tokens", type=int, help="options.max_tokens for each analysis")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per request")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument(
        "--retrieval-only",
        action="store_true",
        help="no gateway or model: run the analysis' runbook retrieval in-process over the data dir",
    )


def cmd(args: argparse.Namespace) -> int:
    """Handler of `ragserve eval rca`."""
    if args.alert_set.startswith("openshift"):
        if not args.data.is_dir():
            print(f"skipped: OpenShift runbooks not found at {args.data}", file=sys.stderr)
            return 0
        build = paraphrased_cases if args.alert_set == "openshift-paraphrased" else openshift_cases
        cases = build(args.data, limit=args.limit)
        collection = args.collection or "openshift"
    else:
        cases = sample_cases()[: args.limit] if args.limit else sample_cases()
        collection = args.collection or "default"
    if args.retrieval_only:
        from service.settings import load_settings

        settings = getattr(args, "settings", None) or load_settings()
        rows = run_retrieval(settings, cases, collection=collection, log=lambda m: print(m, file=sys.stderr))
        doc = {
            "set": args.alert_set,
            "collection": collection,
            "url": f"none (retrieval only, in-process: {settings.data_dir}, {settings.store.backend})",
            "options": {
                "mode": settings.rca.default_mode,
                "top_k": settings.rca.default_top_k,
                "expand_chunks": settings.rca.expand_chunks,
                "min_dense_score": settings.rca.min_dense_score,
            },
            "retrieval_only": True,
            "embedding_model": settings.embedding.model,
            "machine": report.machine(),
            "summary": summarize_retrieval(rows),
            "rows": rows,
        }
        write_outputs(args.out, doc)
        print(json.dumps(doc["summary"], indent=1))
        print(f"wrote {args.out}/metrics.json and report.md")
        return 0
    options: dict[str, Any] = {"prometheus": False}
    if args.max_tokens:
        options["max_tokens"] = args.max_tokens
    url = args.url.rstrip("/")
    rows = run(url, cases, collection=collection, timeout_s=args.timeout, options=options,
               log=lambda m: print(m, file=sys.stderr))  # fmt: skip
    doc = {
        "set": args.alert_set,
        "collection": collection,
        "url": url,
        "options": options,
        "machine": report.machine(),
        "summary": summarize(rows),
        "rows": rows,
    }
    write_outputs(args.out, doc)
    print(json.dumps(doc["summary"], indent=1))
    print(f"wrote {args.out}/metrics.json and report.md")
    return 0
