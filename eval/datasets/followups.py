"""Follow-up questions in a conversation over the sample corpus (issue 17 item 6), hand-written.

    .venv/bin/python -m eval.datasets.followups --out DIR

writes `conversations.jsonl` (all), `conversations_tune.jsonl` and `conversations_heldout.jsonl`:
each a short chat (an operator's question, the assistant's answer, then a follow-up that only makes
sense with what came before: "and how do I fix it?", "那第二步呢？") with the document of
deploy/sample_corpus that answers the follow-up. `python -m eval.condense` measures how well each
way of turning the conversation into a search query finds that document.

The split is by conversation id hash (`tune_split`), fixed before any measurement; the method and
its settings are chosen on the tuning half, and only the held-out half is reported.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from eval.data import write_jsonl
from eval.datasets.runbooks import tune_split

# (document answering the follow-up, language, first question, the assistant's answer, follow-up)
CONVERSATIONS: tuple[tuple[str, str, str, str, str], ...] = (
    (
        "runbooks/kube-pod-crashlooping.md",
        "en",
        "What does KubePodCrashLooping mean?",
        "A container in the pod keeps crashing and Kubernetes keeps restarting it (CrashLoopBackOff) [1].",
        "How do I find out why?",
    ),
    (
        "runbooks/kube-pod-crashlooping.md",
        "en",
        "How do I diagnose a pod in CrashLoopBackOff?",
        "Start with `kubectl describe pod POD -n NAMESPACE` and look at the last state and exit code [1].",
        "And the second step?",
    ),
    (
        "runbooks/kube-pod-crashlooping.md",
        "zh",
        "Pod 一直 CrashLoopBackOff 是什么意思？",
        "容器不断崩溃，Kubernetes 一直在重启它，重启间隔越来越长 [1]。",
        "那怎么处理？",
    ),
    (
        "runbooks/pod-oomkilled.md",
        "en",
        "A pod was OOMKilled. What happened?",
        "The container exceeded its memory limit and the kernel killed it with exit code 137 [1].",
        "Which metric shows its memory usage?",
    ),
    (
        "runbooks/pod-oomkilled.md",
        "zh",
        "容器被 OOMKilled 是什么原因？",
        "容器超过了内存限制，被内核杀掉，退出码是 137 [1]。",
        "那应该怎么缓解？",
    ),
    (
        "runbooks/pod-oomkilled.md",
        "en",
        "Why do containers get exit code 137?",
        "Exit code 137 means the kernel killed the container for exceeding its memory limit [1].",
        "How do I compare the usage with the limit?",
    ),
    (
        "runbooks/node-disk-pressure.md",
        "en",
        "What does NodeFilesystemSpaceFillingUp mean?",
        "A node's filesystem is predicted to run out of space soon [1].",
        "What should I clean up first?",
    ),
    (
        "runbooks/node-disk-pressure.md",
        "zh",
        "节点磁盘快满了会有什么影响？",
        "Pod 可能被驱逐，新的 Pod 无法调度到该节点 [1]。",
        "第一步要做什么？",
    ),
    (
        "runbooks/node-disk-pressure.md",
        "en",
        "How do I find what is filling a node's disk?",
        "Look for large directories under /var/lib/containerd and /var/log on the node [1].",
        "And how do I stop the logs from growing again?",
    ),
    (
        "runbooks/high-error-rate.md",
        "en",
        "When does the HighErrorRate alert fire?",
        "When more than 5% of a service's HTTP requests return 5xx over the last 5 minutes [1].",
        "What is the impact on users?",
    ),
    (
        "runbooks/high-error-rate.md",
        "en",
        "How do I diagnose a high error rate?",
        "Break the errors down by route with the PromQL query of the runbook [1].",
        "What if a deploy caused it?",
    ),
    (
        "runbooks/high-error-rate-zh.md",
        "zh",
        "接口错误率过高告警是什么意思？",
        "服务在过去五分钟内返回 5xx 错误的比例超过百分之五 [1]。",
        "那应该怎么处理？",
    ),
    (
        "runbooks/ragserve/RagserveQueueSaturated.md",
        "en",
        "What does RagserveQueueSaturated mean?",
        "More than 4 requests have waited in the vLLM scheduler queue on average for 10 minutes [1].",
        "How do I fix it?",
    ),
    (
        "runbooks/ragserve/RagserveQueueSaturated.md",
        "zh",
        "RagserveQueueSaturated 告警是什么意思？",
        "vLLM 调度队列里平均有超过 4 个请求等待了 10 分钟 [1]。",
        "怎么缓解？",
    ),
    (
        "runbooks/ragserve/RagserveEngineDown.md",
        "en",
        "What does the RagserveEngineDown alert mean?",
        "The gateway cannot reach its vLLM engine [1].",
        "What do I check first?",
    ),
    (
        "runbooks/ragserve/RagserveEngineDown.md",
        "zh",
        "RagserveEngineDown 告警代表什么？",
        "网关连不上它的 vLLM 引擎 [1]。",
        "影响是什么？",
    ),
    (
        "runbooks/ragserve/RagserveIndexStale.md",
        "en",
        "What does RagserveIndexStale mean?",
        "A collection's index has not been updated for longer than expected [1].",
        "How do I diagnose it?",
    ),
    (
        "runbooks/ragserve/RagserveIngestionFailures.md",
        "en",
        "What is the RagserveIngestionFailures alert?",
        "Ingestion jobs or files are failing [1].",
        "What are the usual causes?",
    ),
    (
        "runbooks/ragserve/RagserveIngestionFailures.md",
        "zh",
        "RagserveIngestionFailures 告警是什么？",
        "文档导入任务或文件失败了 [1]。",
        "怎么排查？",
    ),
    (
        "runbooks/ragserve/RagserveTTFTSLOBurn.md",
        "en",
        "What does RagserveTTFTSLOBurn mean?",
        "The time to first token is burning through its SLO error budget [1].",
        "And how do I mitigate it?",
    ),
    (
        "runbooks/ragserve/RagserveHighErrorRate.md",
        "en",
        "When does RagserveHighErrorRate fire?",
        "When too many of the gateway's requests end in a server error [1].",
        "Where do I look first?",
    ),
    (
        "postmortems/2026-03-payment-outage.md",
        "en",
        "What happened in the March 2026 payment outage?",
        "The payment API returned errors for 38% of requests for about 40 minutes [1].",
        "What was the root cause?",
    ),
    (
        "postmortems/2026-03-payment-outage.md",
        "zh",
        "2026 年 3 月支付接口故障是怎么回事？",
        "支付接口约 38% 的请求返回错误，持续了大约 40 分钟 [1]。",
        "后续的改进措施有哪些？",
    ),
    (
        "guide/ingesting-documents.md",
        "en",
        "How do I add my own documents to ragserve?",
        "Run `ragserve ingest PATH` or upload them through the API [1].",
        "And how do I remove the ones I deleted?",
    ),
)


def conversation_rows() -> list[dict[str, Any]]:
    rows = []
    for i, (doc, lang, first, answer, follow_up) in enumerate(CONVERSATIONS):
        rows.append(
            {
                "id": f"followup-{i:03d}",
                "language": lang,
                "messages": [
                    {"role": "user", "content": first},
                    {"role": "assistant", "content": answer},
                    {"role": "user", "content": follow_up},
                ],
                "relevant": [doc],
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.datasets.followups", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    rows = conversation_rows()
    tune = [r for r in rows if tune_split(r["id"])]
    held = [r for r in rows if not tune_split(r["id"])]
    args.out.mkdir(parents=True, exist_ok=True)
    for name, part in (
        ("conversations", rows),
        ("conversations_tune", tune),
        ("conversations_heldout", held),
    ):
        write_jsonl(args.out / f"{name}.jsonl", part)
        print(f"{args.out / name}.jsonl: {len(part)} conversations", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
