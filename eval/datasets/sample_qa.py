"""Question answering over the project's own sample corpus (issue 17), hand-written.

    .venv/bin/python -m eval.datasets.sample_qa --out DIR

writes into DIR `queries.jsonl` (all), `queries_tune.jsonl` and `queries_heldout.jsonl`: questions an
operator would ask about deploy/sample_corpus (the documents `make serve` ingests), each with the
document that answers it and short gold answers copied from that document (a command, a number, a
name), for `ragserve eval qa --corpus deploy/sample_corpus --queries DIR/queries_heldout.jsonl`.
Most questions are English; the `zh` ones are Chinese questions about English runbooks (the users'
common case), answerable with a language-neutral span (a number, a command, a metric name).

The split is by document (`tune_split`, a hash of the document id, as for the other hand-written
sets), fixed before any measurement: prompts and decoding are chosen on the tuning half, and only
the held-out half is reported.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from eval.data import write_jsonl
from eval.datasets.runbooks import tune_split

# (document id relative to deploy/sample_corpus, language, question, gold answers)
QA: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    (
        "runbooks/pod-oomkilled.md",
        "en",
        "What exit code does a container killed for exceeding its memory limit show?",
        ("137",),
    ),
    (
        "runbooks/pod-oomkilled.md",
        "en",
        "Which Prometheus metric shows a container's memory usage when investigating an OOM kill?",
        ("container_memory_working_set_bytes",),
    ),
    (
        "runbooks/pod-oomkilled.md",
        "en",
        "What does a steady climb in memory before each OOM kill point to?",
        ("a memory leak",),
    ),
    ("runbooks/pod-oomkilled.md", "zh", "容器因为超出内存限制被杀掉时，退出码是多少？", ("137",)),
    (
        "runbooks/node-disk-pressure.md",
        "en",
        "Which command removes unused container images on a node?",
        ("crictl rmi --prune",),
    ),
    (
        "runbooks/node-disk-pressure.md",
        "en",
        "Which kubelet setting configures container log rotation?",
        ("containerLogMaxSize",),
    ),
    (
        "runbooks/node-disk-pressure.md",
        "zh",
        "节点磁盘快满了，用什么命令清理不用的镜像？",
        ("crictl rmi --prune",),
    ),
    (
        "runbooks/high-error-rate.md",
        "en",
        "What share of 5xx responses makes the HighErrorRate alert fire?",
        ("more than 5%", "5%"),
    ),
    (
        "runbooks/high-error-rate.md",
        "en",
        "What does a 503 from a proxy or load balancer mean?",
        ("no healthy backend",),
    ),
    (
        "runbooks/high-error-rate.md",
        "en",
        "What is the most common cause of a rising error rate?",
        ("a release that coincides with the start", "a release"),
    ),
    (
        "runbooks/kube-pod-crashlooping.md",
        "en",
        "Which command shows the logs of the previous, crashed run of a pod?",
        ("kubectl logs POD -n NAMESPACE --previous",),
    ),
    (
        "runbooks/kube-pod-crashlooping.md",
        "en",
        "What is the longest wait between restarts of a crash-looping container?",
        ("5 minutes",),
    ),
    (
        "runbooks/kube-pod-crashlooping.md",
        "en",
        "What should I add if the application starts slower than the liveness probe allows?",
        ("startupProbe",),
    ),
    (
        "runbooks/kube-pod-crashlooping.md",
        "zh",
        "Pod 一直 CrashLoopBackOff，怎么看上一次崩溃的日志？",
        ("kubectl logs POD -n NAMESPACE --previous",),
    ),
    (
        "runbooks/kube-pod-crashlooping.md",
        "zh",
        "如果是最近一次发布导致容器反复崩溃，用什么命令回滚？",
        ("kubectl rollout undo deployment/NAME -n NAMESPACE", "kubectl rollout undo"),
    ),
    (
        "postmortems/2026-03-payment-outage.md",
        "en",
        "What share of payment API requests failed during the March 2026 outage?",
        ("38%",),
    ),
    (
        "postmortems/2026-03-payment-outage.md",
        "en",
        "What was the database connection pool reduced to in the payment outage?",
        ("5 connections", "5"),
    ),
    (
        "postmortems/2026-03-payment-outage.md",
        "en",
        "At what time was the configuration change rolled back during the payment outage?",
        ("09:52",),
    ),
    ("postmortems/2026-03-payment-outage.md", "zh", "支付接口故障期间，连接池被错误地配置成了多少？", ("5",)),
    (
        "guide/ingesting-documents.md",
        "en",
        "Which flag of ragserve ingest removes documents whose files were deleted?",
        ("--prune",),
    ),
    (
        "guide/ingesting-documents.md",
        "en",
        "What status code does the server answer to a document upload?",
        ("202 Accepted", "202"),
    ),
    ("guide/ingesting-documents.md", "en", "Which form field carries the file in an upload?", ("file",)),
    (
        "guide/asking-questions.md",
        "en",
        "Which endpoint returns passages without generating an answer?",
        ("POST /v1/retrieve", "/v1/retrieve"),
    ),
    (
        "guide/asking-questions.md",
        "en",
        "Which model name gives grounded answers from the default collection?",
        ("rag/default",),
    ),
    (
        "guide/asking-questions.md",
        "zh",
        "只想检索段落、不生成回答，应该调用哪个接口？",
        ("POST /v1/retrieve", "/v1/retrieve"),
    ),
    (
        "runbooks/ragserve/RagserveEngineDown.md",
        "en",
        "How long must ragserve_engine_up be 0 before RagserveEngineDown fires?",
        ("3 minutes",),
    ),
    (
        "runbooks/ragserve/RagserveEngineDown.md",
        "en",
        "How long does a normal embedded engine start take on CPU without graph compilation?",
        ("about 45 s", "45 s"),
    ),
    (
        "runbooks/ragserve/RagserveEngineDown.md",
        "zh",
        "RagserveEngineDown 告警触发后，用哪个接口查看引擎状态？",
        ("/readyz", "curl -s localhost:8000/readyz"),
    ),
    (
        "runbooks/ragserve/RagserveHighErrorRate.md",
        "en",
        "Which response header carries the request id a client can quote?",
        ("X-Request-ID",),
    ),
    (
        "runbooks/ragserve/RagserveHighErrorRate.md",
        "en",
        "What does a 504 from the gateway mean?",
        ("vLLM did not answer",),
    ),
    (
        "runbooks/ragserve/RagserveIndexStale.md",
        "en",
        "After how many days does RagserveIndexStale fire?",
        ("7 days", "7"),
    ),
    ("runbooks/ragserve/RagserveIndexStale.md", "zh", "索引过期告警是在索引版本超过多少天时触发？", ("7",)),
    (
        "runbooks/ragserve/RagserveIngestionFailures.md",
        "en",
        "Which failure reason means a scanned PDF without a text layer?",
        ("no_text",),
    ),
    (
        "runbooks/ragserve/RagserveIngestionFailures.md",
        "en",
        "Which option of ragserve ingest excludes files such as images?",
        ("--exclude", "ragserve ingest --exclude '*.png'"),
    ),
    (
        "runbooks/ragserve/RagserveQueueSaturated.md",
        "en",
        "How many waiting requests on average make RagserveQueueSaturated fire?",
        ("more than 4", "4"),
    ),
    (
        "runbooks/ragserve/RagserveQueueSaturated.md",
        "en",
        "What is the default max_num_seqs batch limit?",
        ("64",),
    ),
    (
        "runbooks/ragserve/RagserveQueueSaturated.md",
        "zh",
        "vLLM 调度队列长期堵塞时，在 CPU 上应该调大哪个配置来增加 KV cache？",
        ("RAGSERVE_ENGINE__KV_CACHE_SPACE_GIB",),
    ),
    (
        "runbooks/ragserve/RagserveTTFTSLOBurn.md",
        "en",
        "What is the time-to-first-token SLO?",
        ("95% of first tokens within 2.5 s", "2.5 s"),
    ),
    (
        "runbooks/ragserve/RagserveTTFTSLOBurn.md",
        "en",
        "What burn rate makes the critical TTFT SLO alert fire?",
        ("14.4x",),
    ),
    (
        "runbooks/high-error-rate-zh.md",
        "en",
        "In the Chinese HighErrorRate runbook, what command rolls back a bad release?",
        ("kubectl rollout undo",),
    ),
    (
        "runbooks/high-error-rate-zh.md",
        "zh",
        "接口错误率过高时，如果是数据库连接池耗尽应该怎么处理？",
        ("临时调大连接池并联系数据库值班人员", "临时调大连接池"),
    ),
)


def records() -> list[dict[str, Any]]:
    """All questions as `ragserve eval qa` query records, in table order."""
    return [
        {"id": f"sample-{i:03d}", "query": q, "relevant": [doc], "answers": list(answers), "language": lang}
        for i, (doc, lang, q, answers) in enumerate(QA)
    ]


def split(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(tuning half, held-out half) by a hash of each question's document id."""
    tune = [r for r in rows if tune_split(str(r["relevant"][0]))]
    return tune, [r for r in rows if not tune_split(str(r["relevant"][0]))]


def check(corpus: Path) -> None:
    """Every question's document exists and holds each gold answer verbatim (ValueError otherwise)."""
    for doc, _lang, q, answers in QA:
        path = corpus / doc
        if not path.is_file():
            raise ValueError(f"{doc}: not in {corpus} (question {q!r})")
        text = " ".join(path.read_text(encoding="utf-8").split())  # line breaks are spaces
        missing = [a for a in answers if a not in text]
        if missing:
            raise ValueError(f"{doc}: answers {missing} do not occur in the document (question {q!r})")


def default_corpus() -> Path:
    return Path(__file__).resolve().parents[2] / "deploy" / "sample_corpus"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.datasets.sample_qa", description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="output directory")
    args = ap.parse_args(argv)
    try:
        check(default_corpus())
    except ValueError as exc:
        print(f"eval.datasets.sample_qa: error: {exc}", file=sys.stderr)
        return 1
    rows = records()
    tune, heldout = split(rows)
    for name, part in (("queries", rows), ("queries_tune", tune), ("queries_heldout", heldout)):
        path = args.out / f"{name}.jsonl"
        print(f"{path}: {write_jsonl(path, part)} queries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
