#!/usr/bin/env bash
# Issue 2's serving comparison, in one run on one machine, same model, prompts and settings:
#   transformers `generate` (static batch) | vLLM offline `LLM.chat` | vLLM's own server | the ragserve gateway
# Usage: eval/scripts/compare_serving.sh [OUT_DIR] [DTYPE]
# Run it on an otherwise idle machine: every vLLM engine binds its compute threads to core 0.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-var/bench/compare-$(date -u +%Y%m%dT%H%M%SZ)}
DTYPE=${2:-$(.venv/bin/python -c 'from service.engine.cpu import choose_dtype; print(choose_dtype("auto"))')}
MODEL=$(.venv/bin/ragserve model prepare 2>/dev/null | tail -n 1)
N=${REQUESTS:-64}; TOK=${MAX_TOKENS:-64}; CONC=${CONCURRENCY:-1,8,32}
export HF_HUB_OFFLINE=1 VLLM_CPU_KVCACHE_SPACE=2
mkdir -p "$OUT"
echo "out=$OUT dtype=$DTYPE model=$MODEL load: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$OUT/run.txt"

wait_ready() {  # URL PATH
  for _ in $(seq 1 300); do curl -sf "$1$2" >/dev/null && return 0; sleep 1; done; return 1
}

.venv/bin/python -m eval.baselines transformers --model "$MODEL" --batch 32 --max-tokens "$TOK" \
  --repeats 2 --dtype "$DTYPE" --out "$OUT/transformers.json"
.venv/bin/python -m eval.baselines vllm-offline --model "$MODEL" --batch 32 --max-tokens "$TOK" \
  --repeats 2 --dtype "$DTYPE" --out "$OUT/vllm-offline.json"

# vLLM's own server with the arguments the gateway's supervisor uses.
PORT=18021
.venv/bin/python -m vllm.entrypoints.openai.api_server --host 127.0.0.1 --port $PORT --model "$MODEL" \
  --served-model-name smollm2-135m-instruct --dtype "$DTYPE" --max-model-len 2048 --max-num-seqs 64 \
  --enforce-eager --disable-uvicorn-access-log --uvicorn-log-level warning > "$OUT/vllm-server.log" 2>&1 &
VPID=$!
wait_ready "http://127.0.0.1:$PORT" /health
.venv/bin/ragserve bench serve --url "http://127.0.0.1:$PORT" --concurrency "$CONC" --requests "$N" \
  --max-tokens "$TOK" --ignore-eos --baseline "$OUT/transformers.json" --baseline "$OUT/vllm-offline.json" \
  --out "$OUT/vllm-server"
kill -TERM $VPID; wait $VPID || true

# The gateway with its supervised engine (the embedded default).
GPORT=18000
RAGSERVE_PORT=$GPORT RAGSERVE_DATA_DIR="$OUT/data" RAGSERVE_ENGINE__DTYPE="$DTYPE" \
  RAGSERVE_ENGINE__MODEL="$MODEL" .venv/bin/ragserve serve > "$OUT/gateway.log" 2>&1 &
GPID=$!
wait_ready "http://127.0.0.1:$GPORT" /readyz
.venv/bin/ragserve bench serve --url "http://127.0.0.1:$GPORT" --concurrency "$CONC" --requests "$N" \
  --max-tokens "$TOK" --ignore-eos --baseline "$OUT/transformers.json" --baseline "$OUT/vllm-offline.json" \
  --out "$OUT/gateway"
kill -TERM $GPID; wait $GPID || true
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/run.txt"
.venv/bin/python -m eval.scripts.summarize_comparison "$OUT"
