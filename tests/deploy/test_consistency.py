"""The manifests agree with the service: routes, ports, settings, metrics, and with each other."""

from __future__ import annotations

import re
import sys
from functools import cache
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml
from pydantic import BaseModel

from service.settings import Settings
from tests.deploy.conftest import REPO, Rendered, all_pod_templates

# Read by the YAML settings source, not a field of Settings.
NON_FIELD_SETTINGS = {"RAGSERVE_CONFIG"}
METRIC_RE = re.compile(r"\b(ragserve_[a-z0-9_]+|vllm:[a-z0-9_:]+)")
SUFFIXES = ("", "_total", "_created", "_bucket", "_sum", "_count", "_info")


# --------------------------------------------------------------------------- helpers


def containers(template: dict[str, Any]) -> list[dict[str, Any]]:
    spec = template["spec"]
    return list(spec.get("initContainers", [])) + list(spec["containers"])


def config_data(r: Rendered, name: str) -> dict[str, str]:
    return dict(r.get("ConfigMap", name).get("data", {}))


def container_env(r: Rendered, c: dict[str, Any]) -> dict[str, str | None]:
    """Environment of a container as Kubernetes builds it (None: from a Secret)."""
    env: dict[str, str | None] = {}
    for src in c.get("envFrom", []):
        if "configMapRef" in src:
            env.update(config_data(r, src["configMapRef"]["name"]))
    for e in c.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
        elif "configMapKeyRef" in e.get("valueFrom", {}):
            ref = e["valueFrom"]["configMapKeyRef"]
            env[e["name"]] = config_data(r, ref["name"])[ref["key"]]
        else:
            env[e["name"]] = None
    return env


def settings_field(env_name: str) -> Any:
    """The Settings field an RAGSERVE_* variable sets (pydantic-settings: prefix, `__` nesting)."""
    assert env_name.startswith("RAGSERVE_"), env_name
    model: type[BaseModel] = Settings
    parts = env_name.removeprefix("RAGSERVE_").lower().split("__")
    for i, part in enumerate(parts):
        fields = model.model_fields
        assert part in fields, f"{env_name}: {model.__name__} has no field {part!r}"
        if i < len(parts) - 1:
            ann = fields[part].annotation
            nested = [a for a in (ann, *get_args(ann)) if isinstance(a, type) and issubclass(a, BaseModel)]
            assert nested, f"{env_name}: {part!r} is not a nested settings model"
            model = nested[0]
    return fields[parts[-1]]


def gateway(r: Rendered) -> dict[str, Any]:
    dep = r.get("Deployment", "ragserve-gateway")
    return dict(next(c for c in dep["spec"]["template"]["spec"]["containers"] if c["name"] == "gateway"))


@cache
def app_routes() -> frozenset[str]:
    from service.app import create_app

    app = create_app(Settings())
    return frozenset(getattr(route, "path", "") for route in app.routes)


@cache
def vllm_source() -> str | None:
    """Text of the installed vLLM package's Python files (metrics and routes), or None."""
    import importlib.util

    spec = importlib.util.find_spec("vllm")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations)))
    texts = []
    for sub in ("v1/metrics", "entrypoints", "engine"):
        for f in (root / sub).rglob("*.py"):
            texts.append(f.read_text(encoding="utf-8", errors="replace"))
    return "\n".join(texts)


@cache
def service_metric_names() -> frozenset[str]:
    """Every sample name the gateway can expose: from its registry, and metric families that its
    collectors create at scrape time (found as string literals in service/observability/)."""
    from prometheus_client.metrics_core import Metric

    from service.observability.metrics import Metrics

    names: set[str] = set()
    families: list[Metric] = list(Metrics().registry.collect())
    for fam in families:
        names.add(fam.name)
        names.update(fam.name + s for s in SUFFIXES)
        names.update(sample.name for sample in fam.samples)
    for f in (REPO / "service" / "observability").glob("*.py"):
        for lit in re.findall(r"[\"'](ragserve_[a-z0-9_]+)[\"']", f.read_text(encoding="utf-8")):
            names.update(lit + s for s in SUFFIXES)
    return frozenset(names)


def metric_refs(r: Rendered) -> dict[str, set[str]]:
    """Metric names used by PrometheusRules, ScaledObjects and HPAs, by object."""
    refs: dict[str, set[str]] = {}
    for o in r.objects:
        key = f"{o['kind']}/{o['metadata']['name']}"
        texts: list[str] = []
        if o["kind"] == "PrometheusRule":
            texts = [str(rule["expr"]) for g in o["spec"]["groups"] for rule in g.get("rules", [])]
        elif o["kind"] == "ScaledObject":
            texts = [t["metadata"].get("query", "") for t in o["spec"]["triggers"]]
        elif o["kind"] == "HorizontalPodAutoscaler":
            for m in o["spec"].get("metrics", []):
                if m["type"] != "Resource":
                    texts.append(m[m["type"][0].lower() + m["type"][1:]]["metric"]["name"])
        found = {n for t in texts for n in METRIC_RE.findall(t)}
        if found:
            refs[key] = found
    return refs


# --------------------------------------------------------------------------- settings


def test_settings_mapping_rejects_unknown_names() -> None:
    settings_field("RAGSERVE_ENGINE__MAX_MODEL_LEN")
    for bad in ("RAGSERVE_ENGINE_MAX_MODEL_LEN", "RAGSERVE_ENGINE__MAXMODELLEN", "RAGSERVE_PORT__X"):
        with pytest.raises(AssertionError):
            settings_field(bad)


def test_env_names_are_settings(overlays: list[Rendered], rendered: dict[str, Rendered]) -> None:
    """Settings ignores unknown variables (extra="ignore"): a typo would be silently dropped."""
    names: set[str] = set()
    for r in [*overlays, rendered["base"]]:
        for cm in r.of_kind("ConfigMap"):
            names.update(k for k in cm.get("data", {}) if k.startswith("RAGSERVE_"))
        for _, t in all_pod_templates(r.objects):
            for c in containers(t):
                names.update(e["name"] for e in c.get("env", []) if e["name"].startswith("RAGSERVE_"))
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    names.update(re.findall(r"\b(RAGSERVE_[A-Z0-9_]+)=", dockerfile))
    docs = REPO / "docs" / "deploy.md"
    if docs.is_file():
        names.update(re.findall(r"\b(RAGSERVE_[A-Z][A-Z0-9_]*[A-Z0-9])\b", docs.read_text(encoding="utf-8")))
    assert len(names) > 10
    for name in sorted(names - NON_FIELD_SETTINGS):
        settings_field(name)


@pytest.mark.parametrize("overlay", ["cpu-embedded", "gpu"])
def test_config_parses_as_settings(
    rendered: dict[str, Rendered], overlay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gateway's real environment loads into Settings (types too) and matches the pod spec."""
    import os

    r = rendered[overlay]
    gw = gateway(r)
    for k in list(os.environ):
        if k.startswith("RAGSERVE_"):
            monkeypatch.delenv(k)
    for k, v in container_env(r, gw).items():
        if k.startswith("RAGSERVE_") and v is not None:
            monkeypatch.setenv(k, v)
    s = Settings()
    assert s.host == "0.0.0.0"
    assert [p["containerPort"] for p in gw["ports"] if p["name"] == "http"] == [s.port]
    mounts = {m["mountPath"]: m for m in gw["volumeMounts"]}
    assert str(s.data_dir) in mounts and not mounts[str(s.data_dir)].get("readOnly", False)
    index = mounts[str(s.collections_dir)]
    if overlay == "gpu":
        assert s.engine.mode == "remote" and s.engine.url
        assert index.get("readOnly") is True and "--no-sample-corpus" in gw["args"]
    else:
        assert s.engine.mode == "embedded"
        # The cpu image bakes the model into the image; the overlay must not point elsewhere.
        assert "RAGSERVE_ENGINE__MODEL" not in container_env(r, gw)
        assert index.get("readOnly") is False
    pod = r.get("Deployment", "ragserve-gateway")["spec"]["template"]["spec"]
    # API keys: the keys file lives on a read-only mount of a Secret volume.
    assert s.auth_keys_file is not None
    keys_mount = mounts[str(s.auth_keys_file.parent)]
    assert keys_mount.get("readOnly") is True
    vol = next(v for v in pod["volumes"] if v["name"] == keys_mount["name"])
    assert "secret" in vol and not vol["secret"].get("optional")
    grace = pod["terminationGracePeriodSeconds"]
    pre_stop = int(gw["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert grace > s.server.shutdown_grace_s + pre_stop


# --------------------------------------------------------------------------- routes and ports


def test_gateway_probes_hit_real_routes(overlays: list[Rendered]) -> None:
    routes = app_routes()
    assert {"/healthz", "/readyz", "/metrics"} <= routes
    try:
        from service.auth.gate import PUBLIC_PATHS
    except ImportError:  # pragma: no cover - before API keys existed
        PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
    # Kubelet presents no API key; Prometheus presents one with the "metrics" permission (issue 19, #12).
    assert {"/healthz", "/readyz"} <= PUBLIC_PATHS and "/metrics" not in PUBLIC_PATHS
    for r in overlays:
        gw = gateway(r)
        ports = {p["name"]: p["containerPort"] for p in gw["ports"]}
        assert gw["startupProbe"]["httpGet"]["path"] == "/healthz"
        assert gw["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert gw["readinessProbe"]["httpGet"]["path"] == "/readyz"
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert gw[probe]["httpGet"]["port"] in ports
        for sm in r.of_kind("ServiceMonitor"):
            for ep in sm["spec"]["endpoints"]:
                if sm["metadata"]["name"] == "ragserve-gateway":
                    assert ep["path"] in routes
                    cred = ep["authorization"]["credentials"]
                    assert ep["authorization"]["type"] == "Bearer" and cred["name"] and cred["key"]


def test_healthcheck_script_uses_real_route() -> None:
    script = (REPO / "deploy" / "docker" / "healthcheck.py").read_text(encoding="utf-8")
    assert "/healthz" in script and "/healthz" in app_routes()
    assert "RAGSERVE_PORT" in script


def test_vllm_probes_and_args(rendered: dict[str, Rendered]) -> None:
    r = rendered["gpu"]
    dep = r.get("Deployment", "ragserve-vllm")
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert f"--port={ports['http']}" in c["args"]
    assert c["args"][0] == "vllm"  # the image entrypoint's vLLM server command
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"] == {"path": "/health", "port": "http"}
    # Long startup: big models load for many minutes before liveness may kill them.
    sp = c["startupProbe"]
    assert sp["periodSeconds"] * sp["failureThreshold"] >= 1200
    src = vllm_source()
    if src is not None:
        assert re.search(r"""["']/health["']""", src), "vLLM's server no longer serves /health"
    # Every $(VAR) in the arguments has a value in the container's environment.
    env = container_env(r, c)
    for var in re.findall(r"\$\(([A-Z0-9_]+)\)", " ".join(c["args"])):
        assert env.get(var), f"$({var}) has no value"
    # The served name is the gateway's RAGSERVE_ENGINE__SERVED_MODEL_NAME: they cannot disagree.
    assert env["SERVED_MODEL_NAME"] == container_env(r, gateway(r))["RAGSERVE_ENGINE__SERVED_MODEL_NAME"]
    assert env["MAX_MODEL_LEN"] == container_env(r, gateway(r))["RAGSERVE_ENGINE__MAX_MODEL_LEN"]


def test_tensor_parallel_size_matches_gpus(rendered: dict[str, Rendered]) -> None:
    r = rendered["gpu"]
    tp = config_data(r, "vllm-params")["TENSOR_PARALLEL_SIZE"]
    (c,) = r.get("Deployment", "ragserve-vllm")["spec"]["template"]["spec"]["containers"]
    assert "--tensor-parallel-size=$(TENSOR_PARALLEL_SIZE)" in c["args"]
    assert c["resources"]["requests"]["nvidia.com/gpu"] == tp
    assert c["resources"]["limits"]["nvidia.com/gpu"] == tp
    vols = {v["name"]: v for v in r.get("Deployment", "ragserve-vllm")["spec"]["template"]["spec"]["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    assert vols[mounts["/dev/shm"]]["emptyDir"]["medium"] == "Memory"
    assert "persistentVolumeClaim" in vols[mounts["/models"]]


def test_gateway_reaches_vllm_service(rendered: dict[str, Rendered]) -> None:
    r = rendered["gpu"]
    url = container_env(r, gateway(r))["RAGSERVE_ENGINE__URL"]
    m = re.fullmatch(r"http://([a-z0-9-]+):(\d+)", url or "")
    assert m, url
    svc = r.get("Service", m.group(1))
    assert int(m.group(2)) in [p["port"] for p in svc["spec"]["ports"]]


def test_services_and_monitors_select_real_ports(overlays: list[Rendered]) -> None:
    for r in overlays:
        for svc in r.of_kind("Service"):
            pods = [
                t
                for _, t in all_pod_templates(r.of_kind("Deployment"))
                if svc["spec"]["selector"].items() <= t["metadata"]["labels"].items()
            ]
            assert pods, f"Service {svc['metadata']['name']} selects no pods"
            names = {p["name"] for t in pods for c in t["spec"]["containers"] for p in c.get("ports", [])}
            for p in svc["spec"]["ports"]:
                assert p["targetPort"] in names
        for sm in r.of_kind("ServiceMonitor"):
            sel = sm["spec"]["selector"]["matchLabels"].items()
            svcs = [s for s in r.of_kind("Service") if sel <= s["metadata"]["labels"].items()]
            assert len(svcs) == 1, sm["metadata"]["name"]
            svc_ports = {p["name"] for p in svcs[0]["spec"]["ports"]}
            assert {ep["port"] for ep in sm["spec"]["endpoints"]} <= svc_ports


# --------------------------------------------------------------------------- metrics


def test_metric_names_exist(overlays: list[Rendered]) -> None:
    known = service_metric_names()
    src = vllm_source()
    seen = 0
    for r in overlays:
        for obj, names in metric_refs(r).items():
            for name in names:
                seen += 1
                if name.startswith("ragserve_"):
                    assert name in known, f"{obj}: {name} is not exported by service/observability"
                elif src is not None:
                    base = re.sub(r"_(total|bucket|sum|count|created)$", "", name)
                    assert f'"{name}"' in src or f'"{base}"' in src, f"{obj}: vLLM exports no {name}"
    assert seen, "no metric names found in PrometheusRule/ScaledObject/HPA"


def test_metric_name_check_catches_typos() -> None:
    known = service_metric_names()
    assert "ragserve_http_requests_total" in known
    assert "ragserve_http_request_total" not in known


def test_scaledobject_scales_vllm_on_queue_depth(rendered: dict[str, Rendered]) -> None:
    r = rendered["gpu"]
    (so,) = r.of_kind("ScaledObject")
    target = so["spec"]["scaleTargetRef"]["name"]
    assert target in r.names("Deployment")
    assert target not in {h["spec"]["scaleTargetRef"]["name"] for h in r.of_kind("HorizontalPodAutoscaler")}
    (trigger,) = so["spec"]["triggers"]
    assert trigger["type"] == "prometheus"
    assert {"serverAddress", "query", "threshold"} <= trigger["metadata"].keys()
    assert "vllm:num_requests_waiting" in trigger["metadata"]["query"]
    assert float(trigger["metadata"]["threshold"]) > 0
    assert so["spec"]["minReplicaCount"] >= 1  # a cold GPU replica takes minutes: never scale to zero


def test_monitoring_matches_deploy(rendered: dict[str, Rendered]) -> None:
    """The PrometheusRule carries exactly the groups of deploy/prometheus/, and the dashboard
    ConfigMap exactly deploy/grafana/ragserve.json (both copied by k8s/sync_monitoring.py)."""
    sys.path.insert(0, str(REPO / "k8s"))
    try:
        import sync_monitoring as sync
    finally:
        sys.path.pop(0)
    assert sync.rule_files(), "deploy/prometheus/ has no rule files"
    assert sync.main(["--check"]) == 0, "run: python k8s/sync_monitoring.py"
    (pr,) = rendered["base"].of_kind("PrometheusRule")
    assert pr["spec"]["groups"] == sync.rule_groups()
    assert [g["name"] for g in pr["spec"]["groups"]] == [
        g["name"] for f in sync.rule_files() for g in yaml.safe_load(f.read_text(encoding="utf-8"))["groups"]
    ]
    dash = rendered["base"].get("ConfigMap", "ragserve-grafana-dashboard")
    assert dash["data"]["ragserve.json"] == (REPO / "deploy" / "grafana" / "ragserve.json").read_text(
        encoding="utf-8"
    )
    assert dash["metadata"]["labels"]["grafana_dashboard"] == "1"


# --------------------------------------------------------------------------- references and selectors


def test_references_resolve(rendered: dict[str, Rendered]) -> None:
    for name in ("cpu-embedded", "gpu"):
        r = rendered[name]
        pvcs = r.names("PersistentVolumeClaim")
        for label, t in all_pod_templates(r.objects):
            for v in t["spec"].get("volumes", []):
                if "persistentVolumeClaim" in v:
                    assert v["persistentVolumeClaim"]["claimName"] in pvcs, label
                if "configMap" in v:
                    r.get("ConfigMap", v["configMap"]["name"])
            vols = {v["name"] for v in t["spec"].get("volumes", [])}
            for c in containers(t):
                assert {m["name"] for m in c.get("volumeMounts", [])} <= vols, label
                container_env(r, c)  # raises on a missing ConfigMap or key
                for e in c.get("env", []):
                    if "secretKeyRef" in e.get("valueFrom", {}):
                        # No Secret ships with the manifests: every reference must be optional.
                        assert e["valueFrom"]["secretKeyRef"].get("optional") is True, label
    # The multi-node example reuses the gpu overlay's model volume.
    for _, t in all_pod_templates(rendered["multinode-ray"].objects):
        for v in t["spec"]["volumes"]:
            if "persistentVolumeClaim" in v:
                assert v["persistentVolumeClaim"]["claimName"] in rendered["gpu"].names(
                    "PersistentVolumeClaim"
                )


def test_selectors_match_pods(overlays: list[Rendered]) -> None:
    for r in overlays:
        labels = [t["metadata"]["labels"] for _, t in all_pod_templates(r.objects)]
        # Pods the Milvus Operator makes for a Milvus carry its instance and name labels.
        labels += [
            {"app.kubernetes.io/instance": m["metadata"]["name"], "app.kubernetes.io/name": "milvus"}
            for m in r.of_kind("Milvus")
        ]
        for kind in ("PodDisruptionBudget", "NetworkPolicy"):
            for o in r.of_kind(kind):
                sel = (o["spec"].get("selector") or o["spec"]["podSelector"])["matchLabels"].items()
                assert any(sel <= lab.items() for lab in labels), f"{kind}/{o['metadata']['name']}"
        for dep in r.of_kind("Deployment"):
            sel = dep["spec"]["selector"]["matchLabels"].items()
            assert sel <= dep["spec"]["template"]["metadata"]["labels"].items()
        for hpa in r.of_kind("HorizontalPodAutoscaler"):
            assert hpa["spec"]["scaleTargetRef"]["name"] in r.names("Deployment")


# --------------------------------------------------------------------------- pod security and resources


def dockerfile_uid() -> int:
    m = re.search(r"useradd [^\n]*--uid (\d+)", (REPO / "Dockerfile").read_text(encoding="utf-8"))
    assert m
    return int(m.group(1))


@pytest.mark.parametrize("name", ["cpu-embedded", "gpu", "multinode-ray"])
def test_pods_meet_restricted_standard(rendered: dict[str, Rendered], name: str) -> None:
    uid = dockerfile_uid()
    for label, t in all_pod_templates(rendered[name].objects):
        spec = t["spec"]
        psc = spec.get("securityContext", {})
        assert psc.get("runAsNonRoot") is True and psc.get("runAsUser") == uid, label
        assert psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", label
        assert spec.get("automountServiceAccountToken") is False, label
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            assert not spec.get(key), label
        assert not any("hostPath" in v for v in spec.get("volumes", [])), label
        vols = {v["name"]: v for v in spec.get("volumes", [])}
        for c in containers(t):
            sc = c.get("securityContext", {})
            where = f"{label}/{c['name']}"
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not sc.get("capabilities", {}).get("add"), where
            assert not sc.get("privileged"), where
            # A read-only root needs writable scratch space where Python, torch and vLLM write.
            mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
            for path in ("/tmp", "/home/ragserve/.cache"):
                assert path in mounts and "emptyDir" in vols[mounts[path]["name"]], f"{where}: {path}"


@pytest.mark.parametrize("name", ["cpu-embedded", "gpu", "multinode-ray"])
def test_resources_images_probes(rendered: dict[str, Rendered], name: str) -> None:
    for label, t in all_pod_templates(rendered[name].objects):
        for c in containers(t):
            where = f"{label}/{c['name']}"
            res = c.get("resources", {})
            assert {"cpu", "memory"} <= res.get("requests", {}).keys(), where
            assert "memory" in res.get("limits", {}), where
            image = c["image"]
            assert re.fullmatch(r"[a-z0-9./-]+:[A-Za-z0-9._-]+", image) and not image.endswith(":latest"), (
                where
            )
            if label.startswith("Deployment/") or label.endswith("/leader"):
                for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                    assert probe in c, f"{where}: no {probe}"
        for v in t["spec"].get("volumes", []):
            if "emptyDir" in v:
                assert "sizeLimit" in v["emptyDir"], f"{label}: emptyDir {v['name']} has no sizeLimit"


def test_image_tags_match_dockerfile_targets(overlays: list[Rendered]) -> None:
    targets = set(re.findall(r"^FROM \S+ AS (\S+)$", (REPO / "Dockerfile").read_text(), re.MULTILINE))
    for r in overlays:
        for label, t in all_pod_templates(r.objects):
            for c in containers(t):
                tag = c["image"].rsplit(":", 1)[1]
                assert tag.split("-")[-1] in targets, f"{label}: {c['image']}"


def test_ingestion_writes_the_index_gateways_read(overlays: list[Rendered]) -> None:
    for r in overlays:
        if r.name == "milvus":
            continue  # no index volume there: test_milvus_overlay_uses_milvus_not_a_volume
        claim = {
            m["mountPath"]: v["persistentVolumeClaim"]["claimName"]
            for label, t in all_pod_templates(r.objects)
            for v in t["spec"]["volumes"]
            if "persistentVolumeClaim" in v
            for c in containers(t)
            for m in c["volumeMounts"]
            if m["name"] == v["name"] and label.startswith(("Job/", "CronJob/"))
        }
        assert claim["/var/lib/ragserve/collections"] == "ragserve-index"
        for cj in r.of_kind("CronJob"):
            assert cj["spec"]["concurrencyPolicy"] == "Forbid"
        for job in r.of_kind("Job"):
            (c,) = job["spec"]["template"]["spec"]["containers"]
            assert c["args"][0] == "ingest" and "--collection" in c["args"]
            assert job["spec"].get("ttlSecondsAfterFinished")


def test_milvus_overlay_uses_milvus_not_a_volume(rendered: dict[str, Rendered]) -> None:
    r = rendered["milvus"]
    config = r.get("ConfigMap", "ragserve-config")["data"]
    assert config["RAGSERVE_STORE__BACKEND"] == "milvus"
    (milvus,) = r.of_kind("Milvus")
    # The gateway's URI names the operator's Service for this Milvus (<name>-milvus, port 19530).
    assert config["RAGSERVE_STORE__MILVUS__URI"] == f"http://{milvus['metadata']['name']}-milvus:19530"
    assert "ragserve-index" not in r.names("PersistentVolumeClaim")
    for label, t in all_pod_templates(r.objects):
        volumes = t["spec"].get("volumes", [])
        claims = {v["persistentVolumeClaim"]["claimName"] for v in volumes if "persistentVolumeClaim" in v}
        assert "ragserve-index" not in claims, label
        if label.endswith(("ragserve-gateway", "ragserve-ingest", "ragserve-ingest-nightly")):
            (c,) = [c for c in containers(t) if c["name"] in ("gateway", "ingest")]
            assert {e["name"] for e in c.get("env", [])} >= {"RAGSERVE_STORE__MILVUS__TOKEN"}, label
    policy = r.get("NetworkPolicy", "ragserve-to-milvus")
    assert policy["spec"]["egress"][0]["ports"][0]["port"] == 19530


def test_overlays_document_their_requirements() -> None:
    for overlay in ("cpu-embedded", "gpu", "milvus"):
        text = (REPO / "k8s" / "overlays" / overlay / "kustomization.yaml").read_text(encoding="utf-8")
        assert "kubectl apply -k k8s/overlays/" + overlay in text
    yaml.safe_load((REPO / "k8s" / "overlays" / "gpu" / "kustomization.yaml").read_text())
