# Everyday commands. `make run` starts the whole product; `make test` proves it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint format run demo bench soak lock clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: install lint
	$(BIN)/pytest

# The targets-file JSON Schema, generated from its declaration (publishing/target_schema.py).
.PHONY: schema
schema: install
	$(BIN)/python -m publishing.target_schema > deploy/targets.schema.json

# `make run` needs the runtime dependencies only; the dev toolchain is for `make test`.
RUN_STAMP := $(VENV)/.installed-run

$(RUN_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $(RUN_STAMP)

run: $(RUN_STAMP)
	$(BIN)/python deploy/local/run.py

demo: $(RUN_STAMP)
	$(BIN)/python deploy/local/run.py --demo

# Long fault scenarios (minutes each), kept out of `make test`.
soak: install
	$(BIN)/pytest -m soak -s

bench: install
	$(BIN)/python -c 'import matplotlib' 2>/dev/null && test -x $(BIN)/py-spy \
		|| $(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m bench $(BENCH_ARGS)

# The image's dependencies (pyproject.toml's [project] dependencies, nothing of the extras),
# each pinned with the hashes of every file PyPI has for it, for any Linux and CPU.
lock: install
	test -x $(BIN)/uv || $(BIN)/pip install --quiet 'uv>=0.5'
	$(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes \
		--no-header --upgrade --quiet -o deploy/requirements.lock

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
