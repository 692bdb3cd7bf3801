"""Bring deploy/'s monitoring files into k8s/: one source of truth, kustomize-loadable copies.

- k8s/base/prometheusrule.yaml: a PrometheusRule carrying the groups of the plain Prometheus rule
  files in deploy/prometheus/ (`groups:` at the top; `promtool check rules` and non-operator
  Prometheus use those directly).
- k8s/components/grafana-dashboard/ragserve.json: a copy of deploy/grafana/ragserve.json, which
  kustomize cannot load from outside the kustomization directory.

    python k8s/sync_monitoring.py           # rewrite both
    python k8s/sync_monitoring.py --check   # exit 1 when either is out of date (tests/deploy does this)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
RULES_DIR = ROOT / "deploy" / "prometheus"
TARGET = ROOT / "k8s" / "base" / "prometheusrule.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "ragserve.json"
DASHBOARD_COPY = ROOT / "k8s" / "components" / "grafana-dashboard" / "ragserve.json"

HEADER = """\
# GENERATED from deploy/prometheus/{sources} by k8s/sync_monitoring.py: do not edit here.
# Edit the rule files, then run `python k8s/sync_monitoring.py`; tests/deploy checks the two agree.
# kube-prometheus-stack selects rules by its release label by default: add `release: <name>` to the
# labels, or set ruleSelectorNilUsesHelmValues=false.
"""


def rule_files(rules_dir: Path = RULES_DIR) -> list[Path]:
    """Rule files (YAML with a top-level `groups` list), by name."""
    files = sorted([*rules_dir.glob("*.yml"), *rules_dir.glob("*.yaml")]) if rules_dir.is_dir() else []
    out = []
    for f in files:
        data = yaml.safe_load(f.read_text(encoding="utf-8"))
        if isinstance(data, dict) and isinstance(data.get("groups"), list):
            out.append(f)
    return out


def rule_groups(rules_dir: Path = RULES_DIR) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = []
    for f in rule_files(rules_dir):
        groups.extend(yaml.safe_load(f.read_text(encoding="utf-8"))["groups"])
    names = [g["name"] for g in groups]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SystemExit(f"rule group names must be unique across deploy/prometheus/: {dupes}")
    return groups


def render(rules_dir: Path = RULES_DIR) -> str:
    files = rule_files(rules_dir)
    if not files:
        raise SystemExit(f"no Prometheus rule files (with `groups:`) in {rules_dir}")
    obj = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "ragserve",
            "labels": {"app.kubernetes.io/name": "ragserve", "app.kubernetes.io/component": "monitoring"},
        },
        "spec": {"groups": rule_groups(rules_dir)},
    }
    body = yaml.safe_dump(obj, sort_keys=False, allow_unicode=True, width=110)
    return HEADER.format(sources=", ".join(f.name for f in files)) + body


def outputs() -> dict[Path, str]:
    out = {TARGET: render()}
    if DASHBOARD.is_file():
        out[DASHBOARD_COPY] = DASHBOARD.read_text(encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a copy is out of date")
    args = parser.parse_args(argv)
    stale = 0
    for path, text in outputs().items():
        current = path.read_text(encoding="utf-8") if path.is_file() else ""
        if current == text:
            continue
        if args.check:
            print(f"{path.relative_to(ROOT)} is out of date: run python k8s/sync_monitoring.py")
            stale += 1
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
