"""`ragserve eval rca` against the fake-engine gateway: the sample set, its metrics and report."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from eval import rca as eval_rca
from tests.rca.conftest import RcaGateway, model_reply


def _args(gw: RcaGateway, out: Path, **kw: object) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    eval_rca.add_arguments(p)
    argv = ["--url", gw.url, "--out", str(out)]
    for k, v in kw.items():
        argv += [f"--{k.replace('_', '-')}", str(v)]
    return p.parse_args(argv)


def test_sample_set_metrics(gw: RcaGateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = eval_rca.sample_cases()
    for _ in cases:
        gw.fake.script(model_reply("runbook:1", "log:0"))
    assert eval_rca.cmd(_args(gw, tmp_path)) == 0
    doc = json.loads((tmp_path / "metrics.json").read_text())
    s = doc["summary"]
    assert s["alerts"] == len(cases) and s["errors"] == 0 and s["schema_validity"] == 1.0
    # Refs the model wrote to items that were not there (log:0 without logs, runbook:1 without a
    # runbook) were dropped by the server; what is left is all valid.
    assert s["evidence_ref_validity"] == 1.0 and s["refs_dropped_by_server"] > 0
    assert s["runbook_hit@3"] == 1.0 and s["runbook_hit@1"] >= 0.8
    assert s["abstention_on_no_runbook"] == 1.0
    report = (tmp_path / "report.md").read_text()
    assert "runbook_hit@1" in report and "runbooks/kube-pod-crashlooping.md" in report
    rows = {r["id"]: r for r in doc["rows"]}
    assert rows["crashloop"]["runbook_docs"][0] == "runbooks/kube-pod-crashlooping.md"


def test_openshift_set_skips_without_data(gw: RcaGateway, tmp_path: Path) -> None:
    args = _args(gw, tmp_path / "out", set="openshift", data=tmp_path / "absent")
    assert eval_rca.cmd(args) == 0
    assert not (tmp_path / "out").exists()


def test_openshift_cases_hide_the_alert_name(tmp_path: Path) -> None:
    d = tmp_path / "op"
    (d / "team").mkdir(parents=True)
    for i in range(6):
        (d / "team" / f"FooBarDown{i}.md").write_text(
            f"# FooBarDown{i}\n\n## Meaning\n\nThe FooBarDown{i} alert fires when foo bar service {i} "
            "has been down for ten minutes.\n",
            encoding="utf-8",
        )
    cases = eval_rca.openshift_cases(d)
    assert cases and all(c["alert"]["labels"]["alertname"] == eval_rca.OPENSHIFT_PLACEHOLDER for c in cases)
    for c in cases:
        assert "FooBarDown" not in json.dumps(c["alert"]) and c["expected"].startswith("team/FooBarDown")
    assert len(eval_rca.openshift_cases(d, limit=1)) == 1


def test_paraphrased_cases_use_the_held_out_questions(tmp_path: Path) -> None:
    from eval.datasets.runbooks import PARAPHRASED_HELDOUT

    rel, question = PARAPHRASED_HELDOUT[0]
    (tmp_path / rel).parent.mkdir(parents=True)
    (tmp_path / rel).write_text("# x\n", encoding="utf-8")
    (case,) = eval_rca.paraphrased_cases(tmp_path)  # only runbooks present on disk
    assert case["expected"] == rel and case["alert"]["annotations"]["summary"] == question
    assert case["alert"]["labels"]["alertname"] == eval_rca.OPENSHIFT_PLACEHOLDER


def test_retrieval_only_needs_no_gateway(tmp_path: Path) -> None:
    """`--retrieval-only`: the analysis' runbook retrieval in-process over the data dir (real embedder,
    real store), scored like a gateway's answers, with the relevance either side of the threshold."""
    from ingest.embedding import Embedder
    from ingest.knowledge_base import KnowledgeBase
    from service.serve_cmd import sample_corpus_dir
    from service.settings import Settings

    settings = Settings(data_dir=tmp_path / "data")
    p = argparse.ArgumentParser()
    eval_rca.add_arguments(p)
    args = p.parse_args(["--retrieval-only", "--out", str(tmp_path / "out")])
    args.settings = settings
    with pytest.raises(ValueError, match="collection 'default' does not exist"):
        eval_rca.cmd(args)
    kb = KnowledgeBase(settings.collections_dir, Embedder.load(settings.embedding.model, device="cpu"))
    kb.ingest_paths("default", [sample_corpus_dir()])
    assert eval_rca.cmd(args) == 0
    doc = json.loads((tmp_path / "out" / "metrics.json").read_text())
    s = doc["summary"]
    assert doc["retrieval_only"] and s["alerts"] == len(eval_rca.sample_cases())
    assert s["runbook_hit@3"] == 1.0 and s["runbook_hit@1"] >= 0.8 and s["abstention_on_no_runbook"] == 1.0
    # the threshold separates the alerts that have a runbook from those that have none
    threshold = settings.rca.min_dense_score
    assert (
        s["top_relevance_without_runbook_min_max"][1]
        < threshold
        <= s["top_relevance_with_runbook_min_max"][0]
    )
    report = (tmp_path / "out" / "report.md").read_text()
    assert "runbooks/kube-pod-crashlooping.md" in report and "its relevance" in report
