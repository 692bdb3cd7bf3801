"""Prompts shared by the load benchmark and the offline baselines.

The built-in set is 64 short, varied operations questions (the product's audience), so that
`bench serve` and `eval.baselines` send exactly the same conversations and their
throughputs can be compared. A JSONL file can replace it: one record per line, either a
string, `{"messages": [...]}` (OpenAI chat messages) or an object with one of the fields
`prompt`, `query`, `question` or `text`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

Message = dict[str, str]
Conversation = list[Message]

BUILTIN_PROMPTS: tuple[str, ...] = (
    "How do I find which process is listening on port 8080 on a Linux host?",
    "What does the Kubernetes pod status CrashLoopBackOff mean, and what should I check first?",
    "Explain the difference between a liveness probe and a readiness probe.",
    "A disk is 95% full on a database server. List safe first steps to free space.",
    "How can I see the last 100 lines of a systemd service's logs?",
    "What is a reasonable alert threshold for HTTP 5xx error rate on a public API?",
    "How do I roll back a Kubernetes deployment to its previous revision?",
    "Why might DNS resolution inside a container fail while it works on the host?",
    "Give three common causes of high load average with low CPU usage.",
    "How do I check TLS certificate expiry dates from the command line?",
    "What is the purpose of a PodDisruptionBudget?",
    "Describe how to drain a Kubernetes node for maintenance.",
    "What does the Linux OOM killer do, and how do I find which process it killed?",
    "How should I rotate logs for an application that writes to a single file?",
    "Explain what p99 latency means to a non-technical manager.",
    "A Java service has long garbage collection pauses. What metrics should I look at?",
    "How do I find the largest directories under /var?",
    "What is the difference between a Deployment and a StatefulSet?",
    "How do I test whether a remote TCP port is reachable without telnet?",
    "What should a good incident post-mortem contain?",
    "Why could a Prometheus target show as down even though the service is running?",
    "How do I safely restart an nginx server after changing its configuration?",
    "What is an error budget in site reliability engineering?",
    "List steps to investigate a sudden increase in API latency.",
    "How do I see which Kubernetes events happened in a namespace recently?",
    "What is the difference between horizontal and vertical scaling?",
    "How can I limit the memory a Docker container may use?",
    "What causes a 'too many open files' error, and how is it fixed?",
    "How do I check replication lag on a PostgreSQL replica?",
    "Explain blue-green deployment in two or three sentences.",
    "How do I find out why a pod is stuck in Pending?",
    "What is the role of an ingress controller in Kubernetes?",
    "A cron job did not run last night. Where should I look?",
    "How do I compare the configuration of two servers quickly?",
    "What are the four golden signals of monitoring?",
    "How do I renew a Let's Encrypt certificate manually?",
    "Why would an etcd cluster lose quorum, and how do you recover?",
    "How can I see network connections per process on Linux?",
    "What is a canary release and when is it useful?",
    "How do I check free memory and swap usage on a Linux server?",
    "Describe how to write a runbook entry for a recurring alert.",
    "What does the HTTP status code 503 usually indicate behind a load balancer?",
    "How do I scale a Kubernetes deployment to five replicas?",
    "What should be checked when an OpenShift route returns 'Application is not available'?",
    "Explain the difference between RPO and RTO.",
    "How do I find which package owns a file on a Debian system?",
    "What is the safest way to change a production database schema?",
    "How can I trace a slow request across several microservices?",
    "Why might a Kafka consumer group keep rebalancing?",
    "How do I check the status of all failed systemd units?",
    "What information should an on-call handover note include?",
    "How do I find which container in a pod is using the most CPU?",
    "Explain what a circuit breaker does in a distributed system.",
    "How do I check if NTP time synchronisation is working?",
    "What are common reasons for a persistent volume claim to stay unbound?",
    "How do I limit the rate of requests to an API behind nginx?",
    "What is the difference between a soft and a hard limit in ulimit?",
    "How can I reproduce a production incident safely in staging?",
    "What does 'ImagePullBackOff' mean and how do I fix it?",
    "How do I inspect the environment variables of a running process?",
    "Why would a health check pass while users still see errors?",
    "How do I back up and restore an etcd snapshot?",
    "Give a short checklist before running a major version upgrade of a cluster.",
    "How do I measure disk I/O latency on a Linux machine?",
)


def as_conversation(prompt: str) -> Conversation:
    """One user turn, no system prompt: the model's own chat template does the rest."""
    return [{"role": "user", "content": prompt}]


def builtin_conversations() -> list[Conversation]:
    return [as_conversation(p) for p in BUILTIN_PROMPTS]


def _record_to_conversation(record: Any, where: str) -> Conversation:
    if isinstance(record, str):
        return as_conversation(record)
    if isinstance(record, dict):
        messages = record.get("messages")
        if isinstance(messages, list) and messages:
            conv: Conversation = []
            for m in messages:
                if not (isinstance(m, dict) and isinstance(m.get("role"), str)):
                    raise ValueError(f"{where}: each message needs a string 'role'")
                conv.append({"role": m["role"], "content": str(m.get("content") or "")})
            return conv
        for key in ("prompt", "query", "question", "text"):
            value = record.get(key)
            if isinstance(value, str) and value.strip():
                return as_conversation(value)
    raise ValueError(f"{where}: expected a string, 'messages' or one of prompt/query/question/text")


def load_conversations(path: str | Path | None) -> list[Conversation]:
    """The built-in prompts when `path` is None, else the records of a JSONL file."""
    if path is None:
        return builtin_conversations()
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"prompts file not found: {p}")
    out: list[Conversation] = []
    with p.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{p}:{lineno}: invalid JSON ({exc.msg})") from None
            out.append(_record_to_conversation(record, f"{p}:{lineno}"))
    if not out:
        raise ValueError(f"{p}: no prompts")
    return out
