# Every target sets up what it needs: a fresh clone with Python 3.11 and git is enough.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck-tests schemas bench clean clis

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
	@$(MAKE) --no-print-directory typecheck-tests
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check maestro_mcp tests bench examples
	$(BIN)/ruff format --check maestro_mcp tests bench examples
	$(BIN)/mypy
	@$(MAKE) --no-print-directory typecheck-tests

# The tests, strictly typed too. pytest puts each test folder on sys.path (so `import harness` works)
# and every folder has its own conftest.py: mypy checks one folder at a time, with all of them on its path.
TEST_DIRS := $(sort $(patsubst %/,%,$(dir $(wildcard tests/*.py tests/*/*.py tests/*/*/*.py))))
empty :=
space := $(empty) $(empty)
typecheck-tests: $(STAMP)
	@for d in $(TEST_DIRS); do \
		MYPYPATH=$(subst $(space),:,$(TEST_DIRS)) $(BIN)/mypy --strict --python-version 3.11 --no-error-summary $$d/*.py \
			|| { echo "mypy: type errors in $$d"; exit 1; }; \
	done; echo "mypy: tests typed ($(words $(TEST_DIRS)) folders)"

schemas: $(STAMP)
	$(BIN)/maestro schemas

bench: $(STAMP)
	$(BIN)/python bench/mail.py
	$(BIN)/python bench/surface.py
	$(BIN)/python bench/dashboard.py

# The agent CLIs, MCP Inspector and the MCP conformance suite (pinned in package.json /
# package-lock.json) into node_modules/, for tests/cli and tests/surface.
clis:
	@command -v npm >/dev/null 2>&1 || { echo "need npm (Node.js) on PATH to install the agent CLIs"; exit 1; }
	npm ci --no-audit --no-fund

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
