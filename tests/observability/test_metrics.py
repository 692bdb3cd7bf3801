"""After real traffic through the gateway, every metric family of issue 6 is on /metrics."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from service.observability.classify import failure_reason, is_dont_know
from service.observability.engine_stats import parse_engine_metrics
from service.settings import DEFAULT_EMBEDDER
from tests.observability.conftest import DASHBOARD, RULES, Gateway
from tests.utils.fake_vllm import MODEL

# Families (as the parser names them: counters without `_total`) that real traffic must produce.
FAMILIES = {
    # HTTP
    "ragserve_http_requests", "ragserve_http_request_duration_seconds", "ragserve_http_requests_in_flight",
    # generation
    "ragserve_time_to_first_token_seconds", "ragserve_inter_token_latency_seconds",
    "ragserve_prompt_tokens", "ragserve_generation_tokens", "ragserve_requests_in_flight",
    "ragserve_requests_awaiting_first_token", "ragserve_admission_queue_depth", "ragserve_finish_reason",
    # engine, ours and vLLM's re-exported
    "ragserve_engine_up", "ragserve_engine_restarts", "ragserve_engine_metrics_up",
    "ragserve_engine_metrics_scrape_duration_seconds", "ragserve_engine_requests_running",
    "ragserve_engine_requests_waiting", "ragserve_engine_kv_cache_usage_ratio", "ragserve_engine_preemptions",
    "ragserve_engine_prompt_tokens", "ragserve_engine_generation_tokens",
    "ragserve_engine_prefix_cache_queries", "ragserve_engine_prefix_cache_hits",
    "ragserve_engine_request_queue_time_seconds", "ragserve_engine_time_to_first_token_seconds",
    # retrieval and index
    "ragserve_retrieval_duration_seconds", "ragserve_retrieval_request_duration_seconds",
    "ragserve_retrieval_hits", "ragserve_retrieval_empty_results", "ragserve_index_chunks",
    "ragserve_index_documents", "ragserve_index_version", "ragserve_index_last_update_timestamp_seconds",
    "ragserve_index_age_seconds",
    # answer quality and safety
    "ragserve_rag_citations", "ragserve_rag_uncited_answers", "ragserve_rag_dont_know_answers",
    "ragserve_safety_blocks",
    # ingestion
    "ragserve_ingest_jobs", "ragserve_ingest_documents", "ragserve_ingest_chunks",
    "ragserve_ingest_failures", "ragserve_ingest_job_duration_seconds",
    # build
    "ragserve_build_info",
}  # fmt: skip


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def value(smp: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    return sum(v for lab, v in smp.get(name, []) if all(lab.get(k) == x for k, x in labels.items()))


def chat(gw: Gateway, body: dict[str, Any], **headers: str) -> httpx.Response:
    r = httpx.post(gw.v1 + "/chat/completions", json=body, headers=headers, timeout=60)
    assert r.status_code == 200, r.text
    return r


Samples = dict[str, list[tuple[dict[str, str], float]]]


@pytest.fixture(scope="module")
def traffic(obs_gateway: Gateway) -> tuple[Samples, Samples]:
    """One of everything (plain, streamed and grounded chat, a completion, retrievals, an upload):
    /metrics before and after, since other tests share the gateway."""
    gw, fake = obs_gateway, obs_gateway.fake
    before = samples(httpx.get(gw.url + "/metrics").text)
    msgs = [{"role": "user", "content": "What does exit code 137 mean?"}]
    fake.script("Plain answer.")
    chat(gw, {"model": MODEL, "messages": msgs})
    fake.script("It was OOMKilled [1].")
    with httpx.stream(
        "POST", gw.v1 + "/chat/completions", timeout=60,
        json={"model": "rag/default", "messages": msgs, "stream": True},
    ) as r:  # fmt: skip
        assert r.status_code == 200
        assert "[DONE]" in "".join(r.iter_text())
    fake.script("I don't know based on the provided documents.")
    chat(
        gw, {"model": "rag/default", "messages": [{"role": "user", "content": "Who won the 1998 World Cup?"}]}
    )
    fake.script("Some words")
    r = httpx.post(gw.v1 + "/completions", json={"model": MODEL, "prompt": "Hello"}, timeout=60)
    assert r.status_code == 200
    r = httpx.post(
        gw.v1 + "/retrieve",
        json={"query": "exit code 137", "collection": "default", "filters": {"document_id": "nope.md"}},
    )
    assert r.status_code == 200 and r.json()["results"] == []
    for mode in ("dense", "bm25"):
        assert httpx.post(
            gw.v1 + "/retrieve", json={"query": "disk", "collection": "default", "mode": mode}
        ).json()["results"]
    files = [
        ("file", ("net.md", b"# Network\n\nCheck the CNI plugin pods first.\n", "text/markdown")),
        ("file", ("tool.exe", b"MZ\x90\x00", "application/octet-stream")),
    ]
    r = httpx.post(gw.v1 + "/collections/default/documents", files=files, timeout=60)
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    deadline = time.monotonic() + 60
    while (job := httpx.get(f"{gw.v1}/jobs/{job_id}").json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert job["status"] == "succeeded", job
    assert httpx.get(gw.url + "/nope").status_code == 404
    return before, samples(httpx.get(gw.url + "/metrics").text)


def test_metrics_endpoint_speaks_prometheus_text(obs_gateway: Gateway) -> None:
    r = httpx.get(obs_gateway.url + "/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")


def test_every_metric_family_appears_after_traffic(
    traffic: tuple[Samples, Samples], obs_gateway: Gateway
) -> None:
    text = httpx.get(obs_gateway.url + "/metrics").text
    present = {f.name for f in text_string_to_metric_families(text) if f.samples}
    assert FAMILIES - present == set()
    assert all(
        name.startswith("ragserve_") for name in present if not name.startswith(("process_", "python_"))
    )


def test_values_tell_the_story(traffic: tuple[Samples, Samples]) -> None:
    before, s = traffic

    def delta(name: str, **labels: str) -> float:
        return value(s, name, **labels) - value(before, name, **labels)

    assert (
        delta("ragserve_http_requests_total", route="/v1/chat/completions", method="POST", status="200") == 3
    )
    assert delta("ragserve_http_requests_total", route="unmatched", status="404") == 1
    assert delta("ragserve_generation_tokens_total", model=MODEL) == 2 + 2  # chat + completion
    assert delta("ragserve_generation_tokens_total", model="rag/default") == 4 + 8
    assert delta("ragserve_inter_token_latency_seconds_count", model="rag/default") == 1
    assert delta("ragserve_finish_reason_total", reason="stop") == 3
    assert value(s, "ragserve_requests_in_flight") == value(s, "ragserve_requests_awaiting_first_token") == 0
    # vLLM's statistics, summed over its labels and renamed
    assert value(s, "ragserve_engine_metrics_up") == 1
    assert value(s, "ragserve_engine_requests_waiting") == 2
    assert value(s, "ragserve_engine_kv_cache_usage_ratio") == 0.25
    assert value(s, "ragserve_engine_prefix_cache_hits_total") == 40
    assert "ragserve_engine_sleep_state" not in s
    # retrieval stages: the two hybrid RAG queries ran all four; dense and bm25 ran alone once each
    for stage, n in (("embed", 3), ("dense", 3), ("bm25", 3), ("fuse", 2)):
        assert delta("ragserve_retrieval_duration_seconds_count", stage=stage) == n, stage
    assert delta("ragserve_retrieval_empty_results_total", collection="default") == 1
    assert delta("ragserve_retrieval_dense_weight_count", collection="default") == 2  # the hybrid ones
    assert 0 < delta("ragserve_retrieval_dense_weight_sum", collection="default") <= 2
    assert value(s, "ragserve_index_documents", collection="default") == 3
    assert 0 <= value(s, "ragserve_index_age_seconds", collection="default") < 3600
    # answer quality: one cited answer, one "don't know" (which cites nothing)
    assert delta("ragserve_rag_citations_count", collection="default") == 2
    assert delta("ragserve_rag_uncited_answers_total", collection="default") == 1
    assert delta("ragserve_rag_dont_know_answers_total", collection="default") == 1
    # ingestion: one document in, one unsupported file out
    assert delta("ragserve_ingest_documents_total", outcome="added") == 1
    assert delta("ragserve_ingest_failures_total", reason="unsupported_type") == 1
    assert delta("ragserve_ingest_chunks_total") >= 1
    assert delta("ragserve_ingest_jobs_total", status="succeeded") == 1
    assert value(s, "ragserve_build_info", model=MODEL, embedder=DEFAULT_EMBEDDER) == 1


def test_labels_stay_bounded(obs_gateway: Gateway) -> None:
    httpx.request("BREW", obs_gateway.url + "/v1/models")
    for i in range(3):
        httpx.get(f"{obs_gateway.url}/v1/collections/no-such-{i}/documents")
    s = samples(httpx.get(obs_gateway.url + "/metrics").text)
    methods = {lab["method"] for lab, _ in s["ragserve_http_requests_total"]}
    routes = {lab["route"] for lab, _ in s["ragserve_http_requests_total"]}
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}
    assert not any("no-such" in r for r in routes)
    assert "/v1/collections/{name}/documents" in routes


def test_engine_series_are_absent_when_the_engine_metrics_are_unreachable() -> None:
    import asyncio

    from prometheus_client import CollectorRegistry, generate_latest

    from service.observability.engine_stats import EngineStats
    from tests.utils.servers import free_port

    registry = CollectorRegistry()
    stats = EngineStats(registry)
    stats.attach(f"http://127.0.0.1:{free_port()}", timeout_s=0.5)
    asyncio.run(stats.refresh())
    s = samples(generate_latest(registry).decode())
    assert value(s, "ragserve_engine_metrics_up") == 0
    assert "ragserve_engine_requests_running" not in s
    asyncio.run(stats.aclose())


def test_vllm_text_is_parsed_and_summed_over_engines() -> None:
    text = (
        "# TYPE vllm:num_requests_waiting gauge\n"
        'vllm:num_requests_waiting{engine="0",model_name="m"} 3.0\n'
        'vllm:num_requests_waiting{engine="1",model_name="m"} 4.0\n'
        "# TYPE vllm:num_preemptions counter\n"
        'vllm:num_preemptions_total{engine="0",model_name="m"} 7.0\n'
        'vllm:num_preemptions_created{engine="0",model_name="m"} 1.7e9\n'
        "# TYPE vllm:request_queue_time_seconds histogram\n"
        'vllm:request_queue_time_seconds_bucket{engine="0",le="0.3",model_name="m"} 1.0\n'
        'vllm:request_queue_time_seconds_bucket{engine="0",le="+Inf",model_name="m"} 2.0\n'
        'vllm:request_queue_time_seconds_count{engine="0",model_name="m"} 2.0\n'
        'vllm:request_queue_time_seconds_sum{engine="0",model_name="m"} 1.5\n'
    )
    snap = parse_engine_metrics(text)
    assert snap.values == {"ragserve_engine_requests_waiting": 7.0, "ragserve_engine_preemptions": 7.0}
    h = snap.histograms["ragserve_engine_request_queue_time_seconds"]
    assert h.buckets == {0.3: 1.0, float("inf"): 2.0} and h.sum == 1.5


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("I don't know based on the provided documents.", True),
        ("I don’t know based on the provided documents", True),
        ("根据提供的文档，我不知道。", True),
        ("I do not know.", True),
        ("Restart the pod [1]. If you don't know the name, list pods first [2].", False),
        ("", False),
    ],
)
def test_dont_know_detection(answer: str, expected: bool) -> None:
    assert is_dont_know(answer) is expected


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("a.exe: unsupported file type '.exe'", "unsupported_type"),
        ("big.pdf: 99 bytes is over the per-file limit of 10", "too_large"),
        ("x.pdf: no extractable text (scanned or image-only PDF? run OCR first)", "no_text"),
        ("x.pdf: PDF parser crashed (exit code -9)", "parse_error"),
        ("d.jsonl:3: invalid JSON (Expecting value)", "invalid_format"),
        ("something new", "other"),
    ],
)
def test_failure_reasons_are_classes(message: str, reason: str) -> None:
    assert failure_reason(message) == reason


# -- the dashboard and the rules only name series that exist ---------------------------------

_NAME = re.compile(r"\bragserve(?::[a-z0-9_]+)+|\bragserve_[a-z0-9_]+")


def _rule_exprs() -> tuple[list[str], set[str]]:
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    exprs, recorded = [], set()
    for group in doc["groups"]:
        for rule in group["rules"]:
            exprs.append(rule["expr"])
            if "record" in rule:
                recorded.add(rule["record"])
    return exprs, recorded


def _dashboard_exprs() -> list[str]:
    exprs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("expr", "definition") and isinstance(v, str):
                    exprs.append(v)
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(json.loads(DASHBOARD.read_text(encoding="utf-8")))
    return exprs


def test_every_series_in_dashboard_and_rules_exists(traffic: tuple[Samples, Samples]) -> None:
    after = traffic[1]
    rule_exprs, recorded = _rule_exprs()
    dash = _dashboard_exprs()
    assert len(dash) > 30 and len(rule_exprs) > 20
    named = {n for e in rule_exprs + dash for n in _NAME.findall(e)}
    missing = {n for n in named if n not in after and n not in recorded}
    assert not missing, f"named in the dashboard or rules but not on /metrics: {sorted(missing)}"
    # and every recording rule the dashboard uses is defined
    assert {n for e in dash for n in _NAME.findall(e) if ":" in n} <= recorded


def test_alerts_have_summary_description_and_a_runbook() -> None:
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    alerts = [r for g in doc["groups"] for r in g["rules"] if "alert" in r]
    names = {a["alert"] for a in alerts}
    assert names >= {
        "RagserveHighErrorRate", "RagserveTTFTSLOBurn", "RagserveEngineDown",
        "RagserveQueueSaturated", "RagserveIndexStale", "RagserveIngestionFailures",
    }  # fmt: skip
    repo = RULES.parents[2]
    corpus = repo / "deploy" / "sample_corpus" / "runbooks" / "ragserve"
    for a in alerts:
        ann = a["annotations"]
        assert ann["summary"] and ann["description"] and a["labels"]["severity"] in ("critical", "warning")
        assert ann["runbook_url"] == f"docs/runbooks/{a['alert']}.md"
        runbook = repo / ann["runbook_url"]
        assert runbook.is_file(), runbook
        text = runbook.read_text(encoding="utf-8")
        assert text.startswith(f"# {a['alert']}") and "## Diagnosis" in text and "## Mitigation" in text
        shipped = corpus / f"{a['alert']}.md"
        assert shipped.read_text(encoding="utf-8") == text, "the sample corpus carries the same runbook"


def test_dashboard_json_is_generated() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "build_dashboard", DASHBOARD.with_name("build_dashboard.py")
    )
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.render() == DASHBOARD.read_text(encoding="utf-8"), "run deploy/grafana/build_dashboard.py"
