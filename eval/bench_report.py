"""`ragserve bench serve`'s outputs: metrics.json, run.json, requests.jsonl, report.md and the plot."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PLOT_NAME = "bench_serve.png"


def _fmt(v: Any, nd: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def render_report(
    rows: Sequence[dict[str, Any]], meta: dict[str, Any], baselines: Sequence[dict[str, Any]] = ()
) -> str:
    lines = [
        "# ragserve bench serve",
        "",
        f"- date: {meta.get('date')}, host: {meta.get('host')}, "
        f"load average before/after: {meta.get('loadavg_before')} / {meta.get('loadavg_after')}",
        f"- server: `{meta.get('url')}`, model: `{meta.get('model')}`"
        + (f", rag collection: `{meta['rag']}`" if meta.get("rag") else ""),
        f"- requests per level: {meta.get('requests_per_level')}, max tokens: {meta.get('max_tokens')}, "
        f"ignore_eos: {meta.get('ignore_eos')}, prompts: {meta.get('prompts')}",
        "",
        "| concurrency | requests | errors | output tok/s | req/s | TTFT p50 ms | TTFT p99 ms "
        "| ITL p50 ms | ITL p99 ms | E2E p50 ms | E2E p99 ms | chunk gap p99 ms |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['concurrency']} | {r['requests']} | {r['errors']} | {_fmt(r['output_throughput_tok_s'])} "
            f"| {_fmt(r['request_throughput_s'], 3)} | {_fmt(r['ttft_ms_p50'])} | {_fmt(r['ttft_ms_p99'])} "
            f"| {_fmt(r['itl_ms_p50'])} | {_fmt(r['itl_ms_p99'])} | {_fmt(r['e2e_ms_p50'])} "
            f"| {_fmt(r['e2e_ms_p99'])} | {_fmt(r.get('chunk_itl_ms_p99'))} |"
        )
    if baselines:
        lines += ["", "## Against offline baselines (same prompts, same max tokens)", ""]
        lines.append(
            "| concurrency | output tok/s | "
            + " | ".join(
                f"x {b.get('backend', '?')} ({_fmt(b['output_throughput_tok_s'])} tok/s)" for b in baselines
            )
            + " |"
        )
        lines.append("|---:|---:|" + "---:|" * len(baselines))
        for r in rows:
            ratios = []
            for b in baselines:
                tp = r["output_throughput_tok_s"]
                base = b["output_throughput_tok_s"]
                ratios.append(_fmt(tp / base, 2) if tp is not None and base else "-")
            lines.append(
                f"| {r['concurrency']} | {_fmt(r['output_throughput_tok_s'])} | " + " | ".join(ratios) + " |"
            )
    errors = {k: v for r in rows for k, v in (r.get("error_kinds") or {}).items()}
    if errors:
        lines += ["", f"Error kinds: {json.dumps(errors)} (details in requests.jsonl)"]
    lines += [
        "",
        "Definitions: TTFT = request sent to first content chunk; ITL = (E2E - TTFT) / (output tokens - 1) "
        "per request (vLLM's TPOT, independent of how many tokens a chunk carries); chunk gap = time "
        "between consecutive content chunks (vLLM's ITL); E2E = request sent to `[DONE]`; output tokens "
        "from the usage chunk; throughput over each level's wall time.",
        "",
        f"![throughput and latency vs concurrency]({PLOT_NAME})",
        "",
    ]
    return "\n".join(lines)


def plot_rows(rows: Sequence[dict[str, Any]], path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [r["concurrency"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    ax1.plot(xs, [r["output_throughput_tok_s"] or 0 for r in rows], "o-", label="output tok/s")
    ax1.set_xlabel("concurrency")
    ax1.set_ylabel("output tokens / s")
    ax1.set_title("Throughput")
    ax1b = ax1.twinx()
    ax1b.plot(xs, [r["request_throughput_s"] or 0 for r in rows], "s--", color="tab:orange", label="req/s")
    ax1b.set_ylabel("requests / s")
    h1, l1 = ax1.get_legend_handles_labels()
    h2, l2 = ax1b.get_legend_handles_labels()
    ax1.legend(h1 + h2, l1 + l2, loc="upper left")
    series = [
        ("ttft_ms_p50", "TTFT p50", "o-"),
        ("ttft_ms_p99", "TTFT p99", "o:"),
        ("itl_ms_p50", "ITL p50", "s-"),
        ("itl_ms_p99", "ITL p99", "s:"),
        ("e2e_ms_p50", "E2E p50", "^-"),
    ]
    for key, label, style in series:
        pts = [(x, r[key]) for x, r in zip(xs, rows, strict=True) if r.get(key)]
        if pts:
            ax2.plot([p[0] for p in pts], [p[1] for p in pts], style, label=label)
    ax2.set_yscale("log")
    ax2.set_xlabel("concurrency")
    ax2.set_ylabel("ms (log)")
    ax2.set_title("Latency")
    ax2.legend(loc="upper left", fontsize="small")
    for ax in (ax1, ax2):
        if len(xs) > 1 and min(xs) > 0:
            ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [str(x) for x in xs])
        ax.grid(True, alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(
    out: Path,
    rows: Sequence[dict[str, Any]],
    meta: dict[str, Any],
    records: Sequence[dict[str, Any]] = (),
    baselines: Sequence[dict[str, Any]] = (),
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(list(rows), indent=2) + "\n", encoding="utf-8")
    (out / "run.json").write_text(
        json.dumps({**meta, "baselines": list(baselines)}, indent=2) + "\n", encoding="utf-8"
    )
    with (out / "requests.jsonl").open("w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec) + "\n")
    (out / "report.md").write_text(render_report(rows, meta, baselines), encoding="utf-8")
    plot_rows(rows, out / PLOT_NAME, title=f"{meta.get('model')} @ {meta.get('url')}")
