# Every target sets up what it needs: a fresh clone with Python 3.11 and git is enough.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint schemas bench clean clis

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or make PYTHON=/path/to/python3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/maestro demo

# Lint and types first (fast), then every test; pytest fails when it collects nothing.
test: $(STAMP)
	$(BIN)/ruff check maestro_mcp tests bench examples
	$(BIN)/mypy
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check maestro_mcp tests bench examples
	$(BIN)/ruff format --check maestro_mcp tests bench examples
	$(BIN)/mypy

schemas: $(STAMP)
	$(BIN)/maestro schemas

bench: $(STAMP)
	$(BIN)/python bench/mail.py

# The agent CLIs (pinned in package.json / package-lock.json) into node_modules/, for tests/cli.
clis:
	@command -v npm >/dev/null 2>&1 || { echo "need npm (Node.js) on PATH to install the agent CLIs"; exit 1; }
	npm ci --no-audit --no-fund

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
