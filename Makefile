# SpendTrackr: `make run` serves the API on the embedded defaults; `make test` runs the suite.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "$(HOME)/.local/bin/uv")
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint format bench setup migrate help

help:
	@echo "make run    - install, migrate the SQLite default database, serve on http://$(HOST):$(PORT) (docs at /docs)"
	@echo "make test   - the whole test suite (TEST_DATABASE_URL / TEST_REDIS_URL select real servers)"
	@echo "make lint   - ruff, ruff format --check, mypy, import-linter"
	@echo "make bench  - load benchmark against MariaDB + Redis (see bench/README.md)"

# Bytecode is compiled at install, as in the Docker image (UV_COMPILE_BYTECODE): where
# PYTHONDONTWRITEBYTECODE is set, every process would otherwise compile each library it imports
# at every start (a server worker: 10 MB more memory, and a slower start).
setup:
	@command -v uv >/dev/null 2>&1 || [ -x "$(UV)" ] || python3 -m pip install --quiet --user uv || python3 -m pip install --quiet uv
	@$(UV) sync --frozen --quiet --compile-bytecode

migrate: setup
	$(UV) run spendtrackr migrate

run: migrate
	$(UV) run spendtrackr serve --host $(HOST) --port $(PORT)

test: setup
	$(UV) run pytest $(PYTEST_ARGS)

lint: setup
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy src
	$(UV) run lint-imports

format: setup
	$(UV) run ruff format .
	$(UV) run ruff check --fix .

bench: setup
	$(UV) run python -m bench.run $(BENCH_ARGS)
