"""Shared pieces of evaluation reports: metrics.json, Markdown tables, matplotlib (Agg) plots."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def machine() -> dict[str, Any]:
    """Where and when a run happened (the load matters on shared machines)."""
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = []
    return {
        "date": _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "loadavg": load,
    }


def write_json(path: Path, doc: Mapping[str, Any]) -> None:
    """Pretty JSON, UTF-8, non-ASCII kept."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def fmt(value: Any) -> str:
    """A table cell: floats with 3 decimals."""
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(md_cell(fmt(c)) for c in row) + " |")
    return "\n".join(lines)


def md_cell(text: str, limit: int = 160) -> str:
    """Table-safe text: one line, pipes escaped, shortened."""
    t = " ".join(str(text).split()).replace("|", "\\|")
    return t if len(t) <= limit else t[: limit - 1] + "…"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(
    path: Path, curves: Mapping[str, Sequence[float]], *, title: str, xlabel: str, ylabel: str
) -> None:
    """One line per series over x = 1..n (e.g. hit@k for k = 1..10)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, ys in curves.items():
        ax.plot(range(1, len(ys) + 1), ys, marker="o", label=name)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_histograms(path: Path, samples: Mapping[str, Sequence[float]], *, title: str, xlabel: str) -> None:
    """Overlaid histograms of one quantity per series (e.g. latency per mode)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, xs in samples.items():
        if xs:
            ax.hist(list(xs), bins=30, alpha=0.5, label=name)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    ax.grid(alpha=0.3)
    if any(samples.values()):
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_bars(
    path: Path, groups: Mapping[str, Mapping[str, float]], metrics: Sequence[str], *, title: str
) -> None:
    """Grouped bars: one group per metric, one bar per series (e.g. per mode)."""
    plt = _pyplot()
    names = list(groups)
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(metrics) + 2), 4))
    width = 0.8 / max(1, len(names))
    for i, name in enumerate(names):
        xs = [j + i * width for j in range(len(metrics))]
        ax.bar(xs, [float(groups[name].get(m, 0.0)) for m in metrics], width=width, label=name)
    ax.set_xticks([j + width * (len(names) - 1) / 2 for j in range(len(metrics))])
    ax.set_xticklabels(metrics)
    ax.set_ylim(0, 1.05)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
