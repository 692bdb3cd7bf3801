"""Offline checks of the deployment files: Dockerfile, k8s/ (kustomize), docs/deploy.md.

No cluster and no Docker engine are needed: overlays are rendered with `kubectl kustomize` (or a
standalone `kustomize`), then checked with kubernetes-validate's bundled schemas, our own CRD
schemas (schemas/), and consistency tests against the service's real routes, settings and metrics.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
OVERLAYS = ("cpu-embedded", "gpu", "milvus")
# Kustomizations that render on their own (the base is only used through overlays, but must render too).
KUSTOMIZATIONS = {
    "base": K8S / "base",
    "cpu-embedded": K8S / "overlays" / "cpu-embedded",
    "gpu": K8S / "overlays" / "gpu",
    "milvus": K8S / "overlays" / "milvus",
    "multinode-ray": K8S / "examples" / "multinode-ray",
}
BIN = Path(os.environ.get("VIRTUAL_ENV") or REPO / ".venv") / "bin"


def tool(name: str) -> str | None:
    """A tool from the venv first (pip-installed linters), then PATH."""
    cand = BIN / name
    if cand.is_file() and os.access(cand, os.X_OK):
        return str(cand)
    return shutil.which(name)


def kustomize_cmd() -> list[str]:
    """`kubectl kustomize` (kubectl is on the project's machines), else a standalone kustomize."""
    if kubectl := shutil.which("kubectl"):
        return [kubectl, "kustomize"]
    if kustomize := tool("kustomize"):
        return [kustomize, "build"]
    pytest.fail("neither kubectl nor kustomize is installed: cannot render k8s/ (see docs/deploy.md)")


def render(path: Path, *extra: str) -> str:
    proc = subprocess.run(
        [*kustomize_cmd(), str(path), *extra],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, f"kustomize failed for {path}:\n{proc.stderr}"
    return proc.stdout


@dataclass
class Rendered:
    name: str
    text: str
    objects: list[dict[str, Any]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        for o in self.objects:
            if o["kind"] == kind and (o["metadata"]["name"] == name or _generated(o, name)):
                return o
        raise KeyError(f"{kind}/{name} not in {self.name}")

    def names(self, kind: str) -> set[str]:
        return {o["metadata"]["name"] for o in self.of_kind(kind)}


def _generated(obj: dict[str, Any], name: str) -> bool:
    """ConfigMaps from generators carry a `-<hash>` suffix."""
    actual: str = obj["metadata"]["name"]
    return obj["kind"] in ("ConfigMap", "Secret") and actual.rsplit("-", 1)[0] == name


@pytest.fixture(scope="session")
def rendered() -> dict[str, Rendered]:
    out = {}
    for name, path in KUSTOMIZATIONS.items():
        text = render(path)
        objects = [o for o in yaml.safe_load_all(text) if o]
        out[name] = Rendered(name, text, objects)
    return out


@pytest.fixture(scope="session")
def overlays(rendered: dict[str, Rendered]) -> list[Rendered]:
    return [rendered[o] for o in OVERLAYS]


def pod_templates(obj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(label, pod template) of every workload kind used in k8s/."""
    kind, name = obj["kind"], obj["metadata"]["name"]
    spec = obj.get("spec", {})
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        yield f"{kind}/{name}", spec["template"]
    elif kind == "CronJob":
        yield f"{kind}/{name}", spec["jobTemplate"]["spec"]["template"]
    elif kind == "LeaderWorkerSet":
        lwt = spec["leaderWorkerTemplate"]
        if "leaderTemplate" in lwt:
            yield f"{kind}/{name}/leader", lwt["leaderTemplate"]
        yield f"{kind}/{name}/worker", lwt["workerTemplate"]


def all_pod_templates(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [pt for o in objects for pt in pod_templates(o)]
