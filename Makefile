# Two commands do all the set-up on a fresh machine: `make run` (the chat on the default corpus)
# and `make test` (the whole test suite, slow and browser tests included).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run ask test test-fast lint format clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The CPU build of torch where it is on disk (this workplace); elsewhere PyPI as usual.
	$(BIN)/pip install --quiet torch==2.13.0 || $(BIN)/pip install --quiet torch
	$(BIN)/pip install --quiet -e '.[ui,crosslingual,dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/ludao serve

ask: install
	$(BIN)/ludao ask "2024年厦门全社会研发投入强度是多少？"

test: install
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow and not browser"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache artifacts
