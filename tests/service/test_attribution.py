"""Citations the model forgot (service/rag/attribution.py): unit cases, then through the gateway."""

from __future__ import annotations

import json

import httpx
import pytest

from service.rag.attribution import Attributor, StreamAttributor
from service.rag.prompt import ABSTENTIONS
from tests.service.conftest import Gateway

PASSAGES = [
    "Run `kubectl describe pod POD -n NAMESPACE` and look for Reason: OOMKilled and exit code 137.",
    "Remove unused images with `crictl rmi --prune`. Configure log rotation (`containerLogMaxSize`).",
    "服务在过去五分钟内返回 5xx 错误的比例超过百分之五时，应先检查最近一次发布，然后回滚。",
]


@pytest.fixture
def attributor() -> Attributor:
    return Attributor(PASSAGES, abstentions=ABSTENTIONS)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            "Exit code 137 means OOMKilled. Remove unused images with crictl rmi --prune.",
            "Exit code 137 means OOMKilled [1]. Remove unused images with crictl rmi --prune [2].",
        ),
        ("Exit code 137 means OOMKilled [1].", "Exit code 137 means OOMKilled [1]."),  # the model's own stays
        ("I don't know based on the provided documents.", "I don't know based on the provided documents."),
        ("The moon orbits the earth every month.", "The moon orbits the earth every month."),  # no support
        ("应先检查最近一次发布，然后回滚。", "应先检查最近一次发布，然后回滚 [3]。"),
        ("Exit code 137 means OOMKilled", "Exit code 137 means OOMKilled [1]"),  # no final punctuation
        (
            "Exit code 137 and version 1.5 mean OOMKilled.",
            "Exit code 137 and version 1.5 mean OOMKilled [1].",
        ),
    ],
)
def test_sentences_get_the_passage_that_supports_them(
    attributor: Attributor, answer: str, expected: str
) -> None:
    assert attributor.attribute(answer) == expected


@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_a_stream_gets_the_same_markers_in_any_piece_size(attributor: Attributor, size: int) -> None:
    answer = (
        "Exit code 137 means OOMKilled. The fix is 1.5 GiB more.\n"  # a line break alone ends nothing
        "Remove unused images with crictl rmi --prune. "
        "应先检查最近一次发布，然后回滚。"
    )
    stream = StreamAttributor(attributor)
    pieces = [answer[i : i + size] for i in range(0, len(answer), size)]
    assert "".join(stream.feed(p) for p in pieces) + stream.finish() == attributor.attribute(answer)


def test_the_gateway_marks_an_uncited_answer_whole_and_streamed(gateway: Gateway) -> None:
    body = {
        "model": "rag/default",
        "messages": [{"role": "user", "content": "What does exit code 137 mean?"}],
        "rag": {"top_k": 3},
    }
    gateway.fake.script("The kernel killed the container for exceeding its memory limit with exit code 137.")
    r = httpx.post(gateway.v1 + "/chat/completions", json=body, timeout=30)
    assert r.status_code == 200, r.text
    out = r.json()
    oom = next(c["index"] for c in out["citations"] if c["document_id"] == "runbooks/oom.md")
    assert out["choices"][0]["message"]["content"].endswith(f"exit code 137 [{oom}].")
    assert [c["cited"] for c in out["citations"]] == [c["index"] == oom for c in out["citations"]]

    gateway.fake.script("The kernel killed the container for exceeding its memory limit with exit code 137.")
    r = httpx.post(gateway.v1 + "/chat/completions", json={**body, "stream": True}, timeout=30)
    events = [json.loads(b[6:]) for b in r.text.split("\n\n") if b.startswith("data: {")]
    text = "".join((e["choices"][0]["delta"].get("content") or "") for e in events if e.get("choices"))
    assert text.endswith(f"exit code 137 [{oom}].")
    assert any(c["cited"] for c in events[-1]["citations"])


def test_attribution_can_be_turned_off(gateway: Gateway) -> None:
    gateway.settings.rag.attribute_citations = False
    try:
        gateway.fake.script("The kernel killed the container with exit code 137.")
        r = httpx.post(
            gateway.v1 + "/chat/completions",
            json={"model": "rag/default", "messages": [{"role": "user", "content": "exit code 137?"}]},
            timeout=30,
        )
    finally:
        gateway.settings.rag.attribute_citations = True
    assert (
        r.json()["choices"][0]["message"]["content"] == "The kernel killed the container with exit code 137."
    )


# -- specifics no passage holds (service/rag/support.py) ------------------------------------------


@pytest.mark.parametrize(
    ("answer", "missing"),
    [
        ("Call the on-call DBA at 123-456-7890.", ["123-456-7890"]),
        ("Exit code 137 means OOMKilled [1].", []),  # [1] is a citation, 137 is in passage 1
        ("Run `kubectl describe pod` and check the reason.", []),  # part of a quoted command
        ("Run `kubectl delete namespace prod` now.", ["kubectl delete namespace prod"]),
        ("The pool was reduced to 100 connections.", ["100"]),
        ("超过百分之五时应先检查最近一次发布。", []),  # no digits, no code
        ("Exit code 137 happened at 09:52.", ["09:52"]),
        ("The DBA's extension is 37.", ["37"]),  # a part of 137 is not 137
        ("服务返回5xx错误的比例超过百分之五时回滚。", []),  # unspaced Chinese: the number alone is checked
        ("服务在2019年回滚了137次。", ["2019"]),
    ],
)
def test_numbers_and_code_must_come_from_the_passages(answer: str, missing: list[str]) -> None:
    from service.rag.support import unsupported

    assert unsupported(answer, PASSAGES, question="What does exit code 137 mean?") == missing


def test_an_invented_number_becomes_an_abstention_and_a_stream_is_flagged(gateway: Gateway) -> None:
    body = {
        "model": "rag/default",
        "messages": [{"role": "user", "content": "What is the phone number of the on-call DBA?"}],
    }
    gateway.fake.script("Call the on-call DBA at 123-456-7890.")
    out = httpx.post(gateway.v1 + "/chat/completions", json=body, timeout=30).json()
    assert out["choices"][0]["message"]["content"] == "I don't know based on the provided documents."
    assert out["grounding"]["unsupported"] == ["123-456-7890"] and out["grounding"]["action"] == "abstained"
    assert not any(c["cited"] for c in out["citations"])

    gateway.fake.script("Call the on-call DBA at 123-456-7890.")
    r = httpx.post(gateway.v1 + "/chat/completions", json={**body, "stream": True}, timeout=30)
    events = [json.loads(b[6:]) for b in r.text.split("\n\n") if b.startswith("data: {")]
    assert events[-1]["grounding"]["unsupported"] == ["123-456-7890"]
    assert events[-1]["grounding"]["action"] == "flagged"
    metrics = httpx.get(gateway.url + "/metrics", timeout=10).text
    assert 'ragserve_rag_unsupported_answers_total{action="abstained",collection="default"} 1.0' in metrics


def test_an_answer_of_citation_markers_only_is_an_abstention(gateway: Gateway) -> None:
    gateway.fake.script("[1] [2] [3]")
    body = {"model": "rag/default", "messages": [{"role": "user", "content": "容器退出码 137 是什么意思？"}]}
    out = httpx.post(gateway.v1 + "/chat/completions", json=body, timeout=30).json()
    assert out["choices"][0]["message"]["content"] == "根据提供的文档，我不知道。"
    assert out["grounding"]["action"] == "abstained" and out["grounding"]["unsupported"] == []


def test_an_invented_number_the_output_guard_redacted_still_makes_an_abstention(gateway: Gateway) -> None:
    """The support check reads the model's text before redaction: "[REDACTED:PHONE]" holds no digit,
    the invented number behind it does. The report counts it without repeating it."""
    body = {"model": "rag/default", "messages": [{"role": "user", "content": "值班 DBA 的电话号码是多少？"}]}
    gateway.fake.script("值班 DBA 的电话号码是 13812345678。")
    out = httpx.post(gateway.v1 + "/chat/completions", json=body, timeout=30).json()
    assert out["choices"][0]["message"]["content"] == "根据提供的文档，我不知道。"
    assert out["grounding"]["action"] == "abstained"
    assert out["grounding"]["unsupported"] == [] and out["grounding"]["redacted"] == 1
    assert "13812345678" not in json.dumps(out)

    gateway.fake.script("值班 DBA 的电话号码是 13812345678。")
    r = httpx.post(gateway.v1 + "/chat/completions", json={**body, "stream": True}, timeout=30)
    assert "13812345678" not in r.text
    events = [json.loads(b[6:]) for b in r.text.split("\n\n") if b.startswith("data: {")]
    assert events[-1]["grounding"]["action"] == "flagged" and events[-1]["grounding"]["redacted"] == 1
