"""Answer quality on the default model (issue 17): real vLLM serving DEFAULT_MODEL, the sample corpus.

A handful of grounded questions with known answers in deploy/sample_corpus: the right fact with a
citation of the passage that holds it (English), an answer in the question's language that states
nothing the passages do not hold (Chinese), "I don't know" when the documents lack the fact, and a
follow-up question that searches with its conversation.
Temperature 0; the facts are checked, not the wording. The broader figures (held-out question sets,
CMRC) are `ragserve eval qa` runs in docs/benchmarks.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from service.rag.prompt import ABSTENTIONS
from service.rag.support import unsupported
from service.settings import DEFAULT_MODEL
from tests.e2e.conftest import LiveServer, launch_live_server

pytestmark = pytest.mark.engine

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def default_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with launch_live_server(tmp_path_factory.mktemp("default-model"), model=DEFAULT_MODEL) as server:
        yield server


def ask(server: LiveServer, question: str, **extra: Any) -> dict[str, Any]:
    body = {
        "model": "rag/default",
        "messages": [{"role": "user", "content": question}],
        "max_tokens": 96,
        "temperature": 0,
        **extra,
    }
    r = httpx.post(server.v1 + "/chat/completions", json=body, timeout=300)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def answer_text(out: dict[str, Any]) -> str:
    return str(out["choices"][0]["message"]["content"])


def test_the_default_model_is_served(default_server: LiveServer) -> None:
    ids = {m["id"] for m in httpx.get(default_server.v1 + "/models", timeout=30).json()["data"]}
    assert DEFAULT_MODEL in ids


@pytest.mark.parametrize(
    ("question", "fact", "evidence"),
    [
        ("What does a 503 from a proxy or load balancer mean?", "healthy backend", "no healthy backend"),
        ("Which command removes unused container images?", "crictl rmi --prune", "crictl rmi --prune"),
        # Two runbooks state this one (OOMKilled, CrashLooping's diagnosis): either is a right citation.
        ("What does exit code 137 mean for a pod?", "memory", "137"),
    ],
)
def test_english_questions_get_the_fact_with_its_citation(
    default_server: LiveServer, question: str, fact: str, evidence: str
) -> None:
    out = ask(default_server, question)
    text = answer_text(out)
    assert fact in text.lower(), text
    cited = [c["text"] for c in out["citations"] if c["cited"]]
    assert any(evidence in t for t in cited), (text, out["citations"])  # cites a passage holding it
    assert not unsupported(text, [c["text"] for c in out["citations"]], question), text


def test_a_chinese_question_gets_a_chinese_answer_that_invents_nothing(default_server: LiveServer) -> None:
    question = "接口错误率过高时，如果是最近一次发布引起的，应该怎么处理？"
    out = ask(default_server, question)
    text = answer_text(out)
    assert CJK.search(text), text  # the question's language
    assert out["citations"][0]["document_id"].startswith("runbooks/high-error-rate"), out["citations"]
    assert not unsupported(text, [c["text"] for c in out["citations"]], question), text
    assert "回滚" in text or "rollout undo" in text or "我不知道" in text, text  # the fact, or honest


def test_a_fact_the_documents_lack_is_never_invented(default_server: LiveServer) -> None:
    """The sample corpus names no phone number and no football result: the answer says so plainly
    (the relevance gate, or the support check when the model made a number up), never a number."""
    for question in (
        "What is the phone number of the on-call DBA?",
        "Who won the football world cup in 2018?",
    ):
        out = ask(default_server, question)
        assert answer_text(out) == ABSTENTIONS[0] + ".", out
        assert out["grounding"]["action"] == "abstained", out
    out = ask(default_server, "值班 DBA 的电话号码是多少？")
    text = answer_text(out)
    assert not re.search(r"\d{3}[-. ]?\d{3,4}", text), out  # no invented phone number
    assert not unsupported(text, [c["text"] for c in out["citations"]], "值班 DBA 的电话号码是多少？"), out


def test_a_follow_up_question_searches_with_the_conversation(default_server: LiveServer) -> None:
    messages = [
        {"role": "user", "content": "What does KubePodCrashLooping mean?"},
        {
            "role": "assistant",
            "content": "A container in the pod keeps crashing and Kubernetes keeps restarting it [1].",
        },
        {"role": "user", "content": "How do I find out why?"},
    ]
    out = ask(default_server, "", messages=messages)
    assert out["retrieval_query"] == "What does KubePodCrashLooping mean?\nHow do I find out why?"
    assert out["citations"][0]["document_id"] == "runbooks/kube-pod-crashlooping.md", out["citations"]
    assert "grounding" not in out, out  # answered, not gated: the conversation is about the runbook
