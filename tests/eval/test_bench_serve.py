"""`bench serve` end to end against a scripted streaming server over real loopback HTTP."""

from __future__ import annotations

import argparse
import io
import json
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from eval import cli as eval_cli
from eval.bench import METRIC_KEYS, main

if TYPE_CHECKING:  # the fixture's type; conftest modules are not imported by name at run time
    from conftest import FakeOpenAIServer


def _run(server_url: str, out: Path, *extra: str) -> tuple[int, str]:
    err = io.StringIO()
    argv = [
        "--url",
        server_url,
        "--concurrency",
        "1,4",
        "--requests",
        "6",
        "--max-tokens",
        "5",
        "--out",
        str(out),
    ]
    rc = main([*argv, *extra], progress=err)
    return rc, err.getvalue()


def _metrics(out: Path) -> list[dict[str, Any]]:
    rows = json.loads((out / "metrics.json").read_text())
    assert isinstance(rows, list)
    return rows


def test_bench_serve_writes_metrics_report_and_plot(fake_openai: FakeOpenAIServer, tmp_path: Path) -> None:
    out = tmp_path / "bench"
    rc, log = _run(fake_openai.url, out, "--ignore-eos")
    assert rc == 0, log
    rows = _metrics(out)
    assert [r["concurrency"] for r in rows] == [1, 4]
    for row in rows:
        assert set(METRIC_KEYS) <= set(row)
        assert row["requests"] == 6 and row["errors"] == 0
        assert row["output_tokens_total"] == 6 * 5
        assert row["output_throughput_tok_s"] > 0 and row["request_throughput_s"] > 0
        assert 0 < row["ttft_ms_p50"] <= row["ttft_ms_p99"] < row["e2e_ms_p99"]
        assert 0 < row["itl_ms_p50"] <= row["itl_ms_p99"]
        assert row["tokens_per_chunk_mean"] == pytest.approx(1.0)
        assert row["usage_missing"] == 0
    # one progress line per level (plus warm-up and the final summary)
    assert sum(line.startswith("bench: concurrency=") for line in log.splitlines()) == 2
    report = (out / "report.md").read_text()
    assert "| concurrency |" in report and "bench_serve.png" in report
    assert (out / "bench_serve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len((out / "requests.jsonl").read_text().splitlines()) == 12

    # what went over the wire: warm-up + 12 requests, all as the contract says
    bodies = fake_openai.script.bodies
    assert len(bodies) == 13
    for body in bodies:
        assert body["model"] == "fake-model"  # first id that is not rag/...
        assert body["stream"] is True
        assert body["stream_options"] == {"include_usage": True}
        assert body["temperature"] == 0
        assert body["ignore_eos"] is True
        assert body["messages"][-1]["role"] == "user"
    assert [b["max_tokens"] for b in bodies[1:]] == [5] * 12


def test_multi_token_chunks_keep_itl_per_token(fake_openai: FakeOpenAIServer, tmp_path: Path) -> None:
    fake_openai.script.tokens_per_chunk = 3
    fake_openai.script.delay_s = 0.02
    out = tmp_path / "b"
    rc, log = _run(fake_openai.url, out, "--ignore-eos", "--max-tokens", "12", "--concurrency", "1")
    assert rc == 0, log
    (row,) = _metrics(out)
    assert row["tokens_per_chunk_mean"] == pytest.approx(3.0)
    # 4 chunks ~20 ms apart carry 12 tokens: per-token ITL ~ 60/11 ms, chunk gaps ~ 20 ms
    assert row["itl_ms_p50"] < row["chunk_itl_ms_p50"]
    assert row["chunk_itl_ms_p50"] >= 15


def test_errors_are_counted_not_fatal(fake_openai: FakeOpenAIServer, tmp_path: Path) -> None:
    fake_openai.script.fail_every = 3  # warm-up is request 1, so it succeeds
    fake_openai.script.truncate_every = 5
    out = tmp_path / "b"
    rc, log = _run(fake_openai.url, out, "--concurrency", "2")
    assert rc == 0, log
    (row,) = _metrics(out)
    # requests 2..7 of the server: 3 and 6 fail with 500, 5 is truncated
    assert row["errors"] == 3
    assert row["error_kinds"] == {"HTTP 500": 2, "truncated": 1}
    records = [json.loads(line) for line in (out / "requests.jsonl").read_text().splitlines()]
    assert any("engine exploded" in (r["error"] or "") for r in records)


def test_rag_model_and_explicit_model(fake_openai: FakeOpenAIServer, tmp_path: Path) -> None:
    rc, log = _run(fake_openai.url, tmp_path / "a", "--rag", "docs", "--concurrency", "1", "--requests", "2")
    assert rc == 0, log
    assert {b["model"] for b in fake_openai.script.bodies} == {"rag/docs"}
    assert all("ignore_eos" not in b for b in fake_openai.script.bodies)
    fake_openai.script.bodies.clear()
    rc, log = _run(
        fake_openai.url + "/v1", tmp_path / "b", "--model", "m2", "--rag", "docs", "--concurrency", "1"
    )
    assert rc == 0, log
    assert {b["model"] for b in fake_openai.script.bodies} == {"m2"}
    assert all(b["rag"] == {"collection": "docs"} for b in fake_openai.script.bodies)


def test_missing_usage_falls_back_to_chunks(fake_openai: FakeOpenAIServer, tmp_path: Path) -> None:
    fake_openai.script.send_usage = False
    out = tmp_path / "b"
    rc, _ = _run(fake_openai.url, out, "--concurrency", "1", "--requests", "2")
    assert rc == 0
    (row,) = _metrics(out)
    assert row["usage_missing"] == 2 and row["output_tokens_total"] == 10


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_server_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    rc, _ = _run(url, tmp_path / "b")
    assert rc != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot reach" in err[0]
    assert not (tmp_path / "b" / "metrics.json").exists()


def test_register_adds_bench_and_eval(fake_openai: FakeOpenAIServer, tmp_path: Path) -> None:
    parser = argparse.ArgumentParser(prog="ragserve")
    sub = parser.add_subparsers(dest="command")
    eval_cli.register(sub)
    out = tmp_path / "b"
    args = parser.parse_args(
        [
            "bench",
            "serve",
            "--url",
            fake_openai.url,
            "--concurrency",
            "2",
            "--requests",
            "2",
            "--max-tokens",
            "3",
            "--out",
            str(out),
        ]
    )
    args.settings, args.data_dir = None, tmp_path
    assert args.func(args) == 0
    assert _metrics(out)[0]["concurrency"] == 2
    assert {"bench", "eval"} <= set(sub.choices)
