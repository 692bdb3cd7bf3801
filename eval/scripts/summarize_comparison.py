"""Print issue 2's ratios from a `compare_serving.sh` output directory."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(out: Path) -> None:
    tf = json.loads((out / "transformers.json").read_text())["output_throughput_tok_s"]
    off = json.loads((out / "vllm-offline.json").read_text())["output_throughput_tok_s"]
    print(f"transformers generate (batch 32): {tf:.1f} tok/s")
    print(f"vLLM offline LLM.chat (batch 32): {off:.1f} tok/s")
    rows = {}
    for name in ("vllm-server", "gateway"):
        rows[name] = {r["concurrency"]: r for r in json.loads((out / name / "metrics.json").read_text())}
    print("| server | conc | tok/s | TTFT p50/p99 ms | ITL p50/p99 ms | errors |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, by_c in rows.items():
        for c, r in sorted(by_c.items()):
            print(
                f"| {name} | {c} | {r['output_throughput_tok_s']:.1f} "
                f"| {r['ttft_ms_p50']:.0f} / {r['ttft_ms_p99']:.0f} "
                f"| {r['itl_ms_p50']:.1f} / {r['itl_ms_p99']:.1f} | {r['errors']} |"
            )
    gw = rows["gateway"].get(32)
    vs = rows["vllm-server"].get(32)
    if gw:
        g = gw["output_throughput_tok_s"]
        print(f"gateway@32 / transformers = {g / tf:.2f} (target >= 1.3)")
        print(f"gateway@32 / vLLM offline = {g / off:.2f} (target >= 0.9)")
        if vs:
            print(f"gateway@32 / vLLM server  = {g / vs['output_throughput_tok_s']:.2f}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
