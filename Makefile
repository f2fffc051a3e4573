# One entry point for people and CI. `make run` and `make test` work on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export PATH := $(HOME)/.local/bin:$(PATH)
UV ?= uv
UV_RUN := $(UV) run --frozen
APT_PACKAGES := ffmpeg espeak-ng wrk jq
PYTEST_ARGS ?=

.PHONY: help setup run test lint format contract contract-check switch-check bench test-deep soak clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-15s %s\n", $$1, $$2}'

setup: ## install uv, system packages and the locked Python environment (idempotent)
	@command -v $(UV) >/dev/null 2>&1 || python3 -m pip install --user --quiet uv
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing system packages: $$missing"; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
	@command -v kubectl >/dev/null 2>&1 || bash compose/install-kubectl.sh
	@[ -x .venv/bin/python ] && .venv/bin/python -c 'import importlib.util as u, sys; sys.exit(u.find_spec("llama_cpp") is None)' 2>/dev/null || \
		echo "installing llama-cpp-python: built from source with -DGGML_NATIVE=ON the first time on a machine (12-18 min on 2 cores; uv caches the wheel)"
	@$(UV) sync --frozen --python python3.11 --quiet
	@[ -f .env ] || cp .env.example .env

run: setup ## start Postgres, Redis, the selected backend and the gateway; Ctrl-C stops all
	$(UV_RUN) python -m devinfra run

lint: ## ruff (lint + format check) and mypy (strict)
	$(UV_RUN) ruff check .
	$(UV_RUN) ruff format --check .
	$(UV_RUN) mypy .

format: ## apply ruff's fixes and formatting
	$(UV_RUN) ruff check --fix .
	$(UV_RUN) ruff format .

test: setup lint ## the whole suite: lint, unit, engine, contract conformance, e2e
	$(UV_RUN) pytest $(PYTEST_ARGS)

contract: ## regenerate contract/openapi.json from shared_schemas
	$(UV_RUN) python -m contract generate

contract-check: ## fail when contract/openapi.json is stale
	$(UV_RUN) python -m contract generate --check

switch-check: ## may ML_SERVICE_BACKEND switch to TO=<backend>? shadow results + contract check
	$(UV_RUN) python -m gateway switch-check --to $${TO:?usage: make switch-check TO=django}

test-deep: setup ## slow suites, not in make test: 200 cases per operation via the gateway (reports in .data/test-deep/)
	$(UV_RUN) pytest -m slow -s $(PYTEST_ARGS)

soak: setup ## 60 s mixed traffic through the gateway: errors, RSS growth, rows reconciled
	$(UV_RUN) python -m devinfra soak --backend $${ML_SERVICE_BACKEND:-fastapi}

bench: setup ## benchmark reports under bench/reports/ (then each backend vs its bare framework)
	$(UV_RUN) python -m bench
	$(UV_RUN) python -m bench.framework

clean: ## remove local data (databases, model cache) and caches
	rm -rf .data .pytest_cache .mypy_cache .ruff_cache
