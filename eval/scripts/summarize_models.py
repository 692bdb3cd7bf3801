"""Print issue 10's table (base vs LoRA vs quantized) from a `models_bench.sh` output directory."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _load(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def main(out: Path) -> None:
    print(
        "| variant | model | tok/s c=1 | tok/s c=32 | TTFT p50 c=1 ms | TTFT p50/p99 c=32 ms "
        "| RSS MiB | perplexity |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for variant in ("base", "lora", "w8a8", "w4a16"):
        d = out / variant
        if not d.is_dir():
            continue
        rss = (_load(d / "rss.json") or {}).get("rss_mib")
        ppl = {
            r["model"]: r["perplexity"]
            for r in (_load(d / "perplexity" / "metrics.json") or {}).get("results", [])
        }
        for bench in sorted(d.glob("bench-*-c1")):
            model = bench.name[len("bench-") : -len("-c1")]
            c1 = (_load(bench / "metrics.json") or [{}])[0]
            c32 = (_load(d / f"bench-{model}-c32" / "metrics.json") or [{}])[0]
            print(
                f"| {variant} | {model} | {c1.get('output_throughput_tok_s', 0):.1f} "
                f"| {c32.get('output_throughput_tok_s', 0):.1f} | {c1.get('ttft_ms_p50', 0):.0f} "
                f"| {c32.get('ttft_ms_p50', 0):.0f} / {c32.get('ttft_ms_p99', 0):.0f} "
                f"| {rss} | {ppl.get(model)} |"
            )
    lora = _load(out / "lora" / "lora-eval" / "metrics.json")
    if lora:
        keys = ("format_ok", "sources_correct", "cites_right_passage", "answer_f1", "idk_correct")
        print("\n| model (held-out ops-format) | n | " + " | ".join(keys) + " |")
        print("|---|---:|" + "---:|" * len(keys))
        for model, s in lora["summary"].items():
            print(f"| {model} | {s['examples']} | " + " | ".join(str(s[k]) for k in keys) + " |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
