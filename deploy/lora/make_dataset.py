"""The instruction set for the `ops-format` adapter: answer from numbered passages in a fixed format.

    python -m deploy.lora.make_dataset --out var/lora/data      # train.jsonl, test.jsonl, meta.json

Each example is a chat exactly as the gateway sends a grounded request (the gateway's own system
and user templates, passages numbered `[n] \"\"\"text\"\"\"`), and the target answer is sectioned:

    Answer: <one sentence from the right passage> [n]
    Sources: [n]

or, when no passage holds the answer, `Answer: I don't know based on the provided documents.` and
`Sources: none`. Passages come from two places the project owns: templated operations facts
(made-up services, alerts, checks, mitigations, owners) and the sections of the sample corpus
(deploy/sample_corpus, English documents). Deterministic (a fixed seed), and the held-out split
shares nothing with training: its services and its corpus documents never appear in train.jsonl.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SEED = 20261123
CORPUS = Path(__file__).resolve().parent.parent / "sample_corpus"
IDK = "I don't know based on the provided documents."

SERVICES = [
    "checkout-api", "payments-gateway", "ledger-db", "search-indexer", "auth-service", "billing-worker",
    "inventory-api", "notification-hub", "image-resizer", "session-cache", "order-queue", "report-builder",
    "geo-router", "audit-logger", "feature-flags", "pricing-engine", "email-relay", "metrics-gateway",
    "user-profile", "cart-service", "shipping-tracker", "fraud-scorer", "config-store", "webhook-dispatcher",
    "kafka-bridge", "dns-resolver", "cdn-edge", "backup-runner", "ml-scorer", "log-shipper",
]  # fmt: skip
ALERTS = [
    ("HighLatency", "the p99 latency panel in Grafana", "scale the deployment to six replicas"),
    ("ErrorBudgetBurn", "the error logs of the last 15 minutes", "roll back to the previous release"),
    ("DiskAlmostFull", "free space on /var/lib/data with df -h", "delete rotated logs older than seven days"),
    ("ConnectionPoolExhausted", "the connection count on the primary database",
     "restart the connection pooler"),
    ("QueueBacklog", "the consumer lag of the main topic", "add two consumers to the consumer group"),
    ("CertificateExpiring", "the expiry date with openssl s_client",
     "renew the certificate with cert-manager"),
    ("ReplicaLag", "the replication delay on the replica", "fail over to the standby replica"),
    ("MemoryPressure", "the container working set against its limit", "raise the memory limit by 25 percent"),
    ("CPUThrottling", "the CPU throttling seconds in cAdvisor", "raise the CPU limit to two cores"),
    ("PodRestarting", "the termination reason with kubectl describe pod",
     "drain the node and reschedule the pods"),
]  # fmt: skip
OWNERS = ["the payments team", "the platform team", "the data team", "the identity team", "the search team",
          "the SRE on call", "the storage team", "the networking team"]  # fmt: skip
HELD_OUT_SERVICES = 6  # the last ones after a seeded shuffle
HELD_OUT_DOCS = {"runbooks/node-disk-pressure.md", "runbooks/ragserve/RagserveQueueSaturated.md",
                 "runbooks/ragserve/RagserveIndexStale.md"}  # fmt: skip


@dataclass(frozen=True)
class Fact:
    passage: str
    questions: list[tuple[str, str]]  # (question, answer sentence)
    group: str  # service or document: hard negatives come from the same group


def _sentence(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    m = re.match(r"(.+?[.!?])(\s|$)", text)
    return (m.group(1) if m else text).strip()


def ops_facts(services: list[str], rng: random.Random) -> list[Fact]:
    facts = []
    for service in services:
        for alert, check, action in rng.sample(ALERTS, 4):
            owner = rng.choice(OWNERS)
            minutes = rng.choice([10, 15, 20, 30, 45])
            passage = (
                f"When {service} raises {alert}, first check {check}. If that confirms the problem, "
                f"{action}. Escalate to {owner} if it is not resolved within {minutes} minutes."
            )
            facts.append(Fact(passage, [
                (f"What should I check first when {service} raises {alert}?", f"First check {check}."),
                (f"How do I fix {alert} on {service}?", f"{action[0].upper()}{action[1:]}."),
                (f"Who do I escalate {alert} on {service} to, and when?",
                 f"Escalate to {owner} if it is not resolved within {minutes} minutes."),
            ], group=service))  # fmt: skip
    return facts


def corpus_facts(docs: list[Path]) -> list[Fact]:
    """One fact per section with prose: the question names the document and the heading."""
    facts = []
    for path in docs:
        text = path.read_text(encoding="utf-8")
        title_m = re.search(r"^# (.+)$", text, re.M)
        title = (title_m.group(1) if title_m else path.stem).replace("Runbook: ", "").strip()
        rel = path.relative_to(CORPUS).as_posix()
        for m in re.finditer(r"^#{2,3} (.+)\n+((?:(?!#).+\n?)+)", text, re.M):
            heading, body = m.group(1).strip(), m.group(2).strip()
            if body.startswith(("```", "|", "-")) or len(body) < 60:
                continue
            passage = re.sub(r"\s+", " ", body)[:420]
            facts.append(Fact(passage, [
                (f"What does the {title} document say about {heading.lower()}?", _sentence(body)),
            ], group=rel))  # fmt: skip
    return facts


def english_docs() -> list[Path]:
    return sorted(p for p in CORPUS.rglob("*.md") if not p.stem.endswith("-zh"))


def _target(answer: str, n: int | None) -> str:
    if n is None:
        return f"Answer: {IDK}\nSources: none"
    return f"Answer: {answer.rstrip('.')} [{n}].\nSources: [{n}]"


def build_examples(facts: list[Fact], *, rng: random.Random, n_passages: int = 3,
                   idk_share: float = 0.1) -> list[dict[str, Any]]:  # fmt: skip
    from service.rag.prompt import PromptTemplates

    tpl = PromptTemplates.load("en")
    out = []
    for i, fact in enumerate(facts):
        for question, answer in fact.questions:
            same = [f for f in facts if f.group == fact.group and f is not fact]
            other = [f for f in facts if f.group != fact.group]
            negatives = rng.sample(same, min(1, len(same))) if same else []
            negatives += rng.sample(other, n_passages - 1 - len(negatives))
            unanswerable = rng.random() < idk_share
            chosen = [*negatives, rng.choice(other)] if unanswerable else [*negatives, fact]
            rng.shuffle(chosen)
            n = None if unanswerable else chosen.index(fact) + 1
            passages = "\n\n".join(f'[{k + 1}] """{f.passage}"""' for k, f in enumerate(chosen))
            messages = [
                {"role": "system", "content": tpl.system},
                {"role": "user", "content": tpl.user.format(passages=passages, question=question)},
            ]
            out.append({
                "id": hashlib.sha1(f"{i}:{question}".encode()).hexdigest()[:12],
                "messages": messages,
                "target": _target(answer, n),
                "answer": IDK if n is None else answer,
                "source_index": n,
                "group": fact.group,
            })  # fmt: skip
    return out


def make(out_dir: Path, *, train_size: int = 240, test_size: int = 60, seed: int = SEED) -> dict[str, Any]:
    rng = random.Random(seed)
    services = SERVICES[:]
    rng.shuffle(services)
    train_services, test_services = services[:-HELD_OUT_SERVICES], services[-HELD_OUT_SERVICES:]
    docs = english_docs()
    train_docs = [d for d in docs if d.relative_to(CORPUS).as_posix() not in HELD_OUT_DOCS]
    test_docs = [d for d in docs if d.relative_to(CORPUS).as_posix() in HELD_OUT_DOCS]
    train = build_examples(ops_facts(train_services, rng) + corpus_facts(train_docs), rng=rng)
    test = build_examples(ops_facts(test_services, rng) + corpus_facts(test_docs), rng=rng)
    rng.shuffle(train)
    rng.shuffle(test)
    train, test = train[:train_size], test[:test_size]
    assert not {e["group"] for e in train} & {e["group"] for e in test}, "held-out split leaked"
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train", train), ("test", test)):
        with (out_dir / f"{name}.jsonl").open("w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    meta = {
        "seed": seed, "train": len(train), "test": len(test),
        "test_services": sorted(test_services), "test_documents": sorted(HELD_OUT_DOCS),
        "unanswerable_test": sum(1 for e in test if e["source_index"] is None),
    }  # fmt: skip
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return meta


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Write the ops-format instruction set (train/test JSONL).")
    p.add_argument("--out", default="var/lora/data")
    p.add_argument("--train-size", type=int, default=240)
    p.add_argument("--test-size", type=int, default=60)
    p.add_argument("--seed", type=int, default=SEED)
    a = p.parse_args(argv)
    print(
        json.dumps(make(Path(a.out), train_size=a.train_size, test_size=a.test_size, seed=a.seed), indent=2)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
