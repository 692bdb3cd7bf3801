"""Render every kustomization and validate the output offline.

Core kinds: `kubernetes-validate --strict` (PyPI; bundled OpenAPI-derived schemas, unknown fields
rejected) against the oldest and the newest Kubernetes minor we support. Custom resources, which it
skips with a warning: our own bundled schemas in schemas/ (ServiceMonitor, PrometheusRule,
ScaledObject, LeaderWorkerSet), and the Kubernetes types embedded in them (pod templates, HPA
behavior) through kubernetes-validate's core schemas.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy.conftest import KUSTOMIZATIONS, REPO, Rendered, render, tool

# Oldest supported (CronJob timeZone, PSA labels, autoscaling/v2 are all GA there) and newest bundled.
KUBE_VERSIONS = ("1.30.0", "1.37.0")
SCHEMAS = Path(__file__).parent / "schemas"
CRD_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet"),
    ("milvus.io/v1beta1", "Milvus"),
}


def kubernetes_validate(path: Path, version: str) -> subprocess.CompletedProcess[str]:
    exe = tool("kubernetes-validate")
    if exe is None:
        pytest.fail("kubernetes-validate is not installed (pip install -c constraints.txt -e .[dev])")
    return subprocess.run(
        [exe, "--strict", "-k", version, str(path)], capture_output=True, text=True, timeout=60, check=False
    )


def crd_schema(obj: dict[str, Any]) -> dict[str, Any]:
    group, version = obj["apiVersion"].split("/")
    path = SCHEMAS / f"{obj['kind'].lower()}-{group.split('.')[0]}-{version}.json"
    return dict(json.loads(path.read_text(encoding="utf-8")))


@pytest.mark.parametrize("name", sorted(KUSTOMIZATIONS))
def test_renders_namespaced(rendered: dict[str, Rendered], name: str) -> None:
    r = rendered[name]
    assert r.objects, f"{name} rendered nothing"
    for o in r.objects:
        if o["kind"] != "Namespace":
            assert o["metadata"].get("namespace") == "ragserve", f"{o['kind']}/{o['metadata']['name']}"
        assert o["metadata"]["labels"].get("app.kubernetes.io/part-of") == "ragserve"


@pytest.mark.parametrize("version", KUBE_VERSIONS)
@pytest.mark.parametrize("name", sorted(KUSTOMIZATIONS))
def test_kubernetes_validate_strict(
    rendered: dict[str, Rendered], name: str, version: str, tmp_path: Path
) -> None:
    out = tmp_path / f"{name}.yaml"
    out.write_text(rendered[name].text, encoding="utf-8")
    proc = kubernetes_validate(out, version)
    lines = proc.stdout.splitlines()
    errors = [line for line in lines if not line.startswith(("INFO", "WARN"))]
    assert proc.returncode == 0 and not errors, proc.stdout + proc.stderr
    # Only the custom resources may lack a bundled schema; they are checked below.
    crd_kinds = {kind for _, kind in CRD_KINDS}
    for line in lines:
        if line.startswith("WARN"):
            m = re.search(r"for kind (\w+) with api version (\S+)", line)
            assert m and m.group(1) in crd_kinds, line
    passed = sum(1 for line in lines if line.startswith("INFO"))
    core = sum(1 for o in rendered[name].objects if (o["apiVersion"], o["kind"]) not in CRD_KINDS)
    assert passed == core, proc.stdout


def test_strict_validation_rejects_unknown_fields(rendered: dict[str, Rendered], tmp_path: Path) -> None:
    """Negative control: a misplaced field in a pod spec must fail, or the checks above prove nothing."""
    dep = copy.deepcopy(rendered["gpu"].get("Deployment", "ragserve-vllm"))
    dep["spec"]["template"]["spec"]["containers"][0]["startupprobe"] = {"httpGet": {"path": "/health"}}
    out = tmp_path / "bad.yaml"
    out.write_text(yaml.safe_dump(dep), encoding="utf-8")
    proc = kubernetes_validate(out, KUBE_VERSIONS[-1])
    assert proc.returncode != 0 and "ERROR" in proc.stdout, proc.stdout


@pytest.mark.parametrize("name", sorted(KUSTOMIZATIONS))
def test_custom_resources_match_bundled_schemas(rendered: dict[str, Rendered], name: str) -> None:
    for o in rendered[name].objects:
        if (o["apiVersion"], o["kind"]) in CRD_KINDS:
            jsonschema.Draft202012Validator(crd_schema(o)).validate(o)


def test_bundled_schemas_reject_mistakes(rendered: dict[str, Rendered]) -> None:
    sm = copy.deepcopy(rendered["gpu"].get("ServiceMonitor", "ragserve-vllm"))
    sm["spec"]["endpoints"][0]["intervall"] = "15s"
    so = copy.deepcopy(rendered["gpu"].get("ScaledObject", "ragserve-vllm"))
    so["spec"]["triggers"][0]["metadata"]["threshold"] = 4  # KEDA metadata values are strings
    pr = copy.deepcopy(rendered["gpu"].get("PrometheusRule", "ragserve"))
    rule = pr["spec"]["groups"][0]["rules"][0]
    rule.update({"alert": "Both", "record": "both:alert_and_record"})  # exactly one of the two
    for bad in (sm, so, pr):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.Draft202012Validator(crd_schema(bad)).validate(bad)


def test_embedded_kubernetes_types(rendered: dict[str, Rendered], tmp_path: Path) -> None:
    """Pod templates inside a LeaderWorkerSet and HPA behavior inside a ScaledObject, strictly."""
    docs: list[dict[str, Any]] = []
    lws = rendered["multinode-ray"].get("LeaderWorkerSet", "ragserve-vllm")["spec"]["leaderWorkerTemplate"]
    for role in ("leaderTemplate", "workerTemplate"):
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "PodTemplate",
                "metadata": {"name": f"lws-{role.lower()}"},
                "template": lws[role],
            }
        )
    so = rendered["gpu"].get("ScaledObject", "ragserve-vllm")
    docs.append(
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "keda-behavior"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"},
                "maxReplicas": so["spec"]["maxReplicaCount"],
                "behavior": so["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"],
            },
        }
    )
    out = tmp_path / "embedded.yaml"
    out.write_text(yaml.safe_dump_all(docs), encoding="utf-8")
    proc = kubernetes_validate(out, KUBE_VERSIONS[-1])
    assert proc.returncode == 0 and proc.stdout.count("INFO") == len(docs), proc.stdout


def test_without_monitoring_component(tmp_path: Path) -> None:
    """Clusters without the Prometheus Operator: the component removes only the operator's kinds."""
    k = tmp_path / "kind"
    k.mkdir()
    rel = lambda p: os.path.relpath(p, k)  # noqa: E731 - kustomize wants relative paths
    (k / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources:\n  - {rel(KUSTOMIZATIONS['cpu-embedded'])}\n"
        f"components:\n  - {rel(REPO / 'k8s' / 'components' / 'without-monitoring')}\n",
        encoding="utf-8",
    )
    full = [o for o in yaml.safe_load_all(render(KUSTOMIZATIONS["cpu-embedded"])) if o]
    trimmed = [o for o in yaml.safe_load_all(render(k)) if o]
    dropped = {(o["kind"], o["metadata"]["name"]) for o in full} - {
        (o["kind"], o["metadata"]["name"]) for o in trimmed
    }
    assert dropped == {("ServiceMonitor", "ragserve-gateway"), ("PrometheusRule", "ragserve")}
    assert not {o["apiVersion"] for o in trimmed} & {"monitoring.coreos.com/v1"}
