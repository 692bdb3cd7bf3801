"""Percentiles, per-level aggregation, SSE line parsing and prompt loading."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from eval.bench import DONE, METRIC_KEYS, RequestResult, parse_sse_line, percentile, summarize_level
from eval.prompts import BUILTIN_PROMPTS, load_conversations


@pytest.mark.parametrize("q", [0, 1, 10, 50, 90, 99, 100])
@pytest.mark.parametrize("values", [[3.0], [1.0, 2.0], [5.0, 1.0, 4.0, 2.0, 3.0], list(range(100))])
def test_percentile_matches_numpy_linear(values: list[float], q: float) -> None:
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_empty_and_bounds() -> None:
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def _ok(i: int, ttft: float, e2e: float, tokens: int, gaps: list[float]) -> RequestResult:
    return RequestResult(
        index=i,
        ok=True,
        ttft_s=ttft,
        e2e_s=e2e,
        output_tokens=tokens,
        prompt_tokens=10,
        content_chunks=len(gaps) + 1,
        usage_reported=True,
        chunk_gaps_s=gaps,
    )


def test_itl_is_token_normalised() -> None:
    r = _ok(0, ttft=0.1, e2e=1.1, tokens=11, gaps=[0.2] * 5)  # 5 gaps of 2 tokens each
    assert r.itl_s == pytest.approx(0.1)
    assert _ok(0, 0.1, 0.2, 1, []).itl_s is None
    assert RequestResult(index=0, ok=False, ttft_s=0.1, e2e_s=1.0, output_tokens=5).itl_s is None


def test_summarize_level_row() -> None:
    results = [
        _ok(0, ttft=0.1, e2e=1.1, tokens=11, gaps=[0.1] * 10),
        _ok(1, ttft=0.3, e2e=2.3, tokens=11, gaps=[0.2] * 10),
        RequestResult(index=2, ok=False, error="HTTP 500: boom", e2e_s=0.01),
        RequestResult(index=3, ok=False, error="truncated: stream ended before [DONE]", e2e_s=0.5),
    ]
    row = summarize_level(results, concurrency=4, duration_s=2.0, slo_ttft_ms=200)
    assert list(row)[: len(METRIC_KEYS)] == list(METRIC_KEYS)
    assert row["concurrency"] == 4
    assert row["requests"] == 4
    assert row["errors"] == 2
    assert row["output_throughput_tok_s"] == pytest.approx(11.0)
    assert row["request_throughput_s"] == pytest.approx(1.0)
    assert row["ttft_ms_p50"] == pytest.approx(200.0)
    assert row["ttft_ms_p99"] == pytest.approx(100 + 200 * 0.99)
    assert row["itl_ms_p50"] == pytest.approx(150.0)
    assert row["e2e_ms_p50"] == pytest.approx(1700.0)
    assert row["chunk_itl_ms_p50"] == pytest.approx(150.0)
    assert row["tokens_per_chunk_mean"] == pytest.approx(1.0)
    assert row["error_kinds"] == {"HTTP 500": 1, "truncated": 1}
    assert row["goodput_req_s"] == pytest.approx(0.5)  # only the first meets TTFT <= 200 ms
    json.dumps(row)


def test_summarize_level_all_failed_has_nulls() -> None:
    row = summarize_level([RequestResult(index=0, ok=False, error="x")], concurrency=1, duration_s=0.1)
    assert row["errors"] == 1
    assert row["output_throughput_tok_s"] == 0
    assert row["ttft_ms_p50"] is None and row["itl_ms_p99"] is None and row["e2e_ms_p99"] is None


def test_parse_sse_line() -> None:
    assert parse_sse_line("") is None
    assert parse_sse_line(": comment") is None
    assert parse_sse_line("event: message") is None
    assert parse_sse_line("data: [DONE]") is DONE
    assert parse_sse_line('data: {"a": 1}\r\n') == {"a": 1}
    assert parse_sse_line('data:{"a": 2}') == {"a": 2}
    with pytest.raises(ValueError):
        parse_sse_line("data: {not json")
    with pytest.raises(ValueError):
        parse_sse_line("data: [1, 2]")


def test_builtin_prompts() -> None:
    assert 60 <= len(BUILTIN_PROMPTS) <= 70
    assert len(set(BUILTIN_PROMPTS)) == len(BUILTIN_PROMPTS)
    convs = load_conversations(None)
    assert convs[0] == [{"role": "user", "content": BUILTIN_PROMPTS[0]}]


def test_load_conversations_jsonl(tmp_path: Path) -> None:
    f = tmp_path / "p.jsonl"
    lines = [
        json.dumps("plain string"),
        json.dumps({"prompt": "a prompt"}),
        json.dumps({"id": "q1", "query": "a query", "relevant": ["d1"]}),
        "",
        json.dumps({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]}),
    ]
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    convs = load_conversations(f)
    assert [c[-1]["content"] for c in convs] == ["plain string", "a prompt", "a query", "u"]
    assert convs[3][0] == {"role": "system", "content": "s"}
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"nothing": 1}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.jsonl:1"):
        load_conversations(bad)
    with pytest.raises(FileNotFoundError):
        load_conversations(tmp_path / "missing.jsonl")
