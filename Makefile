# `make run`: set up .venv and run the flagship study at smoke scale.
# `make test`: set up .venv, lint, run the tests.
# `make smoke-all`: every study at smoke scale.
# The venv is (re)installed only when pyproject.toml changes (the stamp file).

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: run test lint setup clean smoke-all

run: $(STAMP)
	$(BIN)/python -m orchestrator run studies/feature_suppression.yaml --scale smoke

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

# Every study at smoke scale, one after the other (minutes each on a 2-core CPU).
smoke-all: $(STAMP)
	set -e; for study in $$(find studies -name '*.yaml' | sort); do \
		$(BIN)/python -m orchestrator run $$study --scale smoke; \
	done

lint: $(STAMP)
	$(BIN)/ruff check .

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

clean:
	rm -rf $(VENV) reports mlflow.db mlruns
