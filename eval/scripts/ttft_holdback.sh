#!/usr/bin/env bash
# Single-stream TTFT through the gateway with the streaming output guard's two hold-back modes
# (safety.stream_holdback = adaptive | fixed), same engine settings, one after the other.
# Usage: eval/scripts/ttft_holdback.sh [OUT_DIR]    (run alone: every vLLM engine binds core 0)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-var/bench/ttft-holdback-$(date -u +%Y%m%dT%H%M%SZ)}
N=${REQUESTS:-16}; TOK=${MAX_TOKENS:-64}
export HF_HUB_OFFLINE=1
mkdir -p "$OUT"
echo "out=$OUT load: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$OUT/run.txt"
wait_ready() { for _ in $(seq 1 300); do curl -sf "$1" >/dev/null && return 0; sleep 1; done; return 1; }
GPORT=${PORT:-18031}
for MODE in adaptive fixed; do
  RAGSERVE_PORT=$GPORT RAGSERVE_DATA_DIR="$OUT/data" RAGSERVE_SAFETY__STREAM_HOLDBACK=$MODE \
    .venv/bin/ragserve serve > "$OUT/gateway-$MODE.log" 2>&1 &
  GPID=$!
  wait_ready "http://127.0.0.1:$GPORT/readyz"
  .venv/bin/ragserve bench serve --url "http://127.0.0.1:$GPORT" --concurrency 1 --requests "$N" \
    --max-tokens "$TOK" --ignore-eos --out "$OUT/$MODE"
  kill -TERM $GPID; wait $GPID || true
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/run.txt"
