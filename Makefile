# The two entry points of the README: `make run` (main job) and `make test`.
# Both build .venv on a fresh machine when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.unigen-installed

.PHONY: run test lint venv clean evidence evidence-quick

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml constraints-ci.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints-ci.txt -e '.[dev]'
	touch $(STAMP)

# `quickstart` is the config shipped in unigen_sb3/configs/experiments/ (unigen-sb3 configs).
run: $(STAMP)
	$(BIN)/unigen-sb3 train quickstart --out runs/quickstart --overwrite
	$(BIN)/python examples/compare_baselines.py runs/quickstart
	@echo "make run: results in runs/quickstart/ (eval.json, baselines.json, model.zip);" \
		"picture: runs/quickstart/before_after.png; curves: tensorboard --logdir runs/quickstart/tb"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/mypy benchmarks

# About 9 minutes on 2 CPU cores (tests/test_docs.py, every README/docs code block, about
# a minute of it).
test: $(STAMP) lint
	$(BIN)/python -m pytest -q

# The evidence suite (docs/evidence.md): every config of configs/evidence/ over 5 seeds, the
# baselines, then docs/results.md. About 2 hours on 2 CPU cores; running it again finishes
# what is missing. evidence-quick: the same plan at smoke size, a few minutes (not evidence).
evidence: $(STAMP)
	$(BIN)/python benchmarks/evidence.py --out runs/evidence
	$(BIN)/unigen-sb3 report runs/evidence --out docs

evidence-quick: $(STAMP)
	$(BIN)/python benchmarks/evidence.py --quick --out runs/evidence_quick
	$(BIN)/unigen-sb3 report runs/evidence_quick --out runs/evidence_quick/report

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
