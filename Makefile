# The two entry points of the README: `make run` (main job) and `make test`.
# Both build .venv on a fresh machine when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.unigen-installed

.PHONY: run test lint venv clean

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml constraints-ci.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints-ci.txt -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/unigen-sb3 train configs/quickstart.yaml --out runs/quickstart --overwrite
	$(BIN)/python examples/compare_baselines.py runs/quickstart

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: $(STAMP) lint
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
