# Everyday commands. `make run` starts the whole product; `make test` proves it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint format run demo bench lock clean

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

run: install
	$(BIN)/python deploy/local/run.py

demo: install
	$(BIN)/python deploy/local/run.py --demo

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
