# The front door. Every target bootstraps what it needs on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
PY_OK  := $(VENV)/.installed
JS_OK  := node_modules/.installed

export WRANGLER_SEND_METRICS := false
export WRANGLER_SEND_ERROR_REPORTS := false
export CLOUDFLARE_CF_FETCH_ENABLED := false
export NO_UPDATE_NOTIFIER := 1

.PHONY: help validate generate check schema test test-fast fuzz lint bench demo clean

help:
	@echo "make generate   write generated/ from jobs.yaml"
	@echo "make check      fail if generated/ is stale"
	@echo "make schema     write engine/queries/schema.sql from a fresh migrate"
	@echo "make validate   check jobs.yaml and print every problem"
	@echo "make test       the whole suite (real Postgres, S3 servers and wrangler)"
	@echo "make fuzz       the fuzz tests with a large example budget (HYPOTHESIS_PROFILE=fuzz)"
	@echo "make lint       ruff + mypy + the layer check (import-linter)"
	@echo "make bench      benchmarks (ratios against baselines measured in the same run;"
	@echo "                bench.latency runs serve on the real clock: about 5 minutes)"
	@echo "make demo       a simulated day: scheduler -> Postgres queue -> consumers, with faults"

$(PY_OK): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

$(JS_OK): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

validate: $(PY_OK)
	$(BIN)/cronwright validate

generate: $(PY_OK)
	$(BIN)/cronwright generate

check: $(PY_OK)
	$(BIN)/cronwright check

schema: $(PY_OK)
	$(BIN)/python -m devtools.schema_snapshot

test: $(PY_OK) $(JS_OK)
	$(BIN)/pytest

test-fast: $(PY_OK)
	$(BIN)/pytest tests/unit tests/property

fuzz: $(PY_OK) $(JS_OK)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest -m fuzz -q

lint: $(PY_OK)
	$(BIN)/ruff check engine devtools tests bench demo
	$(BIN)/ruff format --check engine devtools tests bench demo
	$(BIN)/mypy
	$(BIN)/lint-imports

$(VENV)/.bench-installed: $(PY_OK)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $@

bench: $(PY_OK) $(JS_OK) $(VENV)/.bench-installed
	$(BIN)/python bench/hourly.py
	$(BIN)/python bench/hourly.py --events 10000000
	$(BIN)/python -m bench.queue_throughput
	$(BIN)/python -m bench.settle
	$(BIN)/python -m bench.settle --events 10000000
	$(BIN)/python -m bench.backfill
	$(BIN)/python -m bench.executor_overhead
	$(BIN)/python -m bench.timestamptz_codec
	$(BIN)/python bench/warmup_reset.py
	$(BIN)/python -m bench.reconcile
	@echo "bench.latency: real serve runs on the real clock, about 5 minutes"
	$(BIN)/python -m bench.latency
	$(BIN)/python bench/fold.py
	$(BIN)/python -m bench.worker_cpu
	$(BIN)/python -m bench.manifest_scale

demo: $(PY_OK)
	$(BIN)/python demo/demo.py

clean:
	rm -rf $(VENV) node_modules .pytest_cache .hypothesis .mypy_cache .ruff_cache
