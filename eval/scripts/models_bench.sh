#!/usr/bin/env bash
# Issue 10's trade-offs, one run on one machine: base vs LoRA adapter vs quantized checkpoints, each on
# vLLM's own server with the arguments the supervisor uses. Per variant: tokens/s and TTFT at
# concurrency 1 and 32 (`ragserve bench serve`, --ignore-eos), resident memory of the vLLM process tree
# after the load, perplexity on the sample corpus (`ragserve eval perplexity`), and for the adapter the
# held-out format evaluation (`ragserve eval lora`).
# Usage (under the engine lock, on an otherwise quiet machine):
#   flock /tmp/ragserve-engine.lock eval/scripts/models_bench.sh [OUT_DIR] [VARIANTS]
# VARIANTS: comma-separated from base,lora,w8a8,w4a16,fp8 (default: all; fp8 only checks that it serves). Needs `make lora` and
# `ragserve model quantize --scheme w8a8|w4a16` first (the script makes what is missing).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-var/bench/models-$(date -u +%Y%m%dT%H%M%SZ)}
VARIANTS=${2:-base,lora,w8a8,w4a16,fp8}
DTYPE=${DTYPE:-$(.venv/bin/python -c 'from service.engine.cpu import choose_dtype; print(choose_dtype("auto"))')}
BASE=$(.venv/bin/ragserve model prepare 2>/dev/null | tail -n 1)
ADAPTER=${ADAPTER:-var/lora/ops-format}
TOK=${MAX_TOKENS:-64}; N1=${REQUESTS_C1:-12}; N32=${REQUESTS_C32:-64}
export HF_HUB_OFFLINE=1 VLLM_CPU_KVCACHE_SPACE=2 VLLM_ALLOW_RUNTIME_LORA_UPDATING=True
mkdir -p "$OUT"
echo "out=$OUT dtype=$DTYPE base=$BASE variants=$VARIANTS load: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$OUT/run.txt"
PORT=18031
URL="http://127.0.0.1:$PORT"

wait_ready() {  # [PID]: also gives up when that process has exited
  for _ in $(seq 1 300); do
    curl -sf "$URL/health" >/dev/null && return 0
    [ -n "${1:-}" ] && ! kill -0 "$1" 2>/dev/null && return 1
    sleep 1
  done; return 1
}

try_fp8() {  # online FP8 of the base model: does this CPU's vLLM build serve it at all?
  local dir="$OUT/fp8"; mkdir -p "$dir"
  .venv/bin/python -m vllm.entrypoints.openai.api_server --host 127.0.0.1 --port $PORT --model "$BASE" \
    --served-model-name smollm2-135m-instruct --dtype "$DTYPE" --max-model-len 2048 --enforce-eager \
    --quantization fp8 > "$dir/vllm.log" 2>&1 &
  local pid=$!
  if wait_ready $pid; then
    curl -s "$URL/v1/chat/completions" -H 'Content-Type: application/json' -d '{"model": "smollm2-135m-instruct",
      "messages": [{"role": "user", "content": "What is the capital of France?"}], "max_tokens": 16,
      "temperature": 0}' > "$dir/answer.json"
    echo "fp8: serves; answer: $(head -c 400 "$dir/answer.json")" | tee -a "$OUT/run.txt"
    kill -TERM $pid; wait $pid || true
  else
    echo "fp8: does not start: $(grep -E 'Error|error' "$dir/vllm.log" | tail -n 2 | cut -c1-300)" | tee -a "$OUT/run.txt"
    kill -TERM $pid 2>/dev/null || true; wait $pid || true
  fi
}

rss_mib() {  # resident memory of a process and its children (the API server and the engine core)
  .venv/bin/python - "$1" <<'PY'
import sys, psutil
p = psutil.Process(int(sys.argv[1]))
print(round(sum(q.memory_info().rss for q in [p, *p.children(recursive=True)]) / 2**20))
PY
}

run_variant() {  # NAME MODEL_DIR MODEL_ID [extra vLLM args...]
  local name=$1 model=$2 id=$3; shift 3
  local dir="$OUT/$name"; mkdir -p "$dir"
  local t0=$SECONDS
  .venv/bin/python -m vllm.entrypoints.openai.api_server --host 127.0.0.1 --port $PORT --model "$model" \
    --served-model-name smollm2-135m-instruct --dtype "$DTYPE" --max-model-len 2048 --max-num-seqs 64 \
    --enforce-eager --disable-uvicorn-access-log --uvicorn-log-level warning "$@" > "$dir/vllm.log" 2>&1 &
  local pid=$!
  wait_ready $pid || { echo "$name: did not start (see $dir/vllm.log)" | tee -a "$OUT/run.txt"; return 0; }
  echo "$name: ready in $((SECONDS - t0)) s, idle RSS $(rss_mib $pid) MiB" | tee -a "$OUT/run.txt"
  for m in $id; do
    .venv/bin/ragserve bench serve --url "$URL" --model "$m" --concurrency 1 --requests "$N1" \
      --max-tokens "$TOK" --ignore-eos --out "$dir/bench-$m-c1" > /dev/null
    .venv/bin/ragserve bench serve --url "$URL" --model "$m" --concurrency 32 --requests "$N32" \
      --max-tokens "$TOK" --ignore-eos --out "$dir/bench-$m-c32" > /dev/null
  done
  echo "$name: RSS after load $(rss_mib $pid) MiB" | tee -a "$OUT/run.txt"
  echo "{\"rss_mib\": $(rss_mib $pid)}" > "$dir/rss.json"
  .venv/bin/ragserve eval perplexity --url "$URL" --models "${id// /,}" --out "$dir/perplexity" > /dev/null
  if [ "$name" = lora ]; then
    .venv/bin/ragserve eval lora --url "$URL" --adapter ops-format --base smollm2-135m-instruct \
      --out "$dir/lora-eval" | tee -a "$OUT/run.txt"
  fi
  kill -TERM $pid; wait $pid || true
}

for v in ${VARIANTS//,/ }; do
  case $v in
    base) run_variant base "$BASE" smollm2-135m-instruct ;;
    lora)
      [ -f "$ADAPTER/adapter_config.json" ] || .venv/bin/ragserve lora train
      run_variant lora "$BASE" "smollm2-135m-instruct ops-format" --enable-lora --max-loras 2 \
        --max-lora-rank 16 --lora-modules "ops-format=$ADAPTER" ;;
    w8a8|w4a16)
      Q=$(.venv/bin/ragserve model quantize --scheme "$v" 2>/dev/null | tail -n 1)
      run_variant "$v" "$Q" smollm2-135m-instruct ;;
    fp8) try_fp8 ;;
  esac
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/run.txt"
.venv/bin/python -m eval.scripts.summarize_models "$OUT" | tee "$OUT/summary.md"
