# explodegrad: two commands on a fresh machine with Python 3.10+
#   make lab    create .venv, install, start JupyterLab on notebooks/
#   make test   create .venv, install, run every check (ruff check and format, the import
#               contract, unit tests, nbval, browser test)
#
# Variables (override on the command line, e.g. `make test CONSTRAINTS=.ci/constraints.txt`):
#   PYTHON           interpreter that creates the venv (default python3, must be >= 3.10)
#   VENV             where the venv lives (default .venv)
#   CONSTRAINTS      a pip constraints file passed to every install (CI pins torch with it)
#   TORCH_INDEX_URL  an extra index for the torch wheel, e.g. https://download.pytorch.org/whl/cpu
#   LAB_ARGS         extra arguments for `jupyter lab`
# Nothing is installed or registered outside $(VENV): the notebook kernel is the venv's Python.

PYTHON ?= python3
VENV ?= .venv
CONSTRAINTS ?=
TORCH_INDEX_URL ?=
LAB_ARGS ?=

BIN := $(VENV)/bin
VPY := $(BIN)/python
STAMP := $(VENV)/.explodegrad-installed
PIP_CONSTRAINTS := $(if $(CONSTRAINTS),-c $(CONSTRAINTS))
PIP_TORCH_INDEX := $(if $(TORCH_INDEX_URL),--extra-index-url $(TORCH_INDEX_URL))
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)
NBVAL_FLAGS := --nbval-lax --nbval-current-env --nbval-sanitize-with .ci/nbval_sanitize.cfg \
               --nbval-cell-timeout=600

.DEFAULT_GOAL := help
.PHONY: help venv lab test lint unit nbval browser notebooks clean distclean

help:
	@echo "make lab        set up .venv and start JupyterLab on notebooks/"
	@echo "make test       set up .venv and run all checks: lint, unit, nbval, browser"
	@echo "make notebooks  re-execute every notebook in place (stored outputs, CPU, quick scale)"
	@echo "make lint | unit | nbval | browser   one group of checks"
	@echo "make clean      remove caches and test artifacts; make distclean also removes .venv"

# The venv is (re)built only when pyproject.toml (or the constraints) changed since the last
# install: a second `make test` starts testing at once. torch goes in first so that its
# wheel choice (and a pin from CONSTRAINTS) is settled before anything else asks for it.
$(STAMP): pyproject.toml $(CONSTRAINTS)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "explodegrad needs Python >= 3.10, $(PYTHON) is " + sys.version.split()[0])'
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install $(PIP_TORCH_INDEX) $(PIP_CONSTRAINTS) torch
	$(VPY) -m pip install $(PIP_CONSTRAINTS) -e ".[test]"
	touch $@

venv: $(STAMP)

lab: $(STAMP)
	$(BIN)/jupyter lab --ServerApp.root_dir=notebooks $(ALLOW_ROOT) $(LAB_ARGS)

test: lint unit nbval browser
	@echo "make test: all checks passed"

lint: $(STAMP)
	$(BIN)/ruff check explodegrad tests benchmarks
	$(BIN)/ruff format --check explodegrad tests benchmarks
	$(BIN)/lint-imports --no-cache

unit: $(STAMP)
	$(BIN)/pytest tests -m "not browser" -q

# nbval validates the stored outputs, which come from the CPU at the quick scale: it pins both,
# so `make test` passes on a machine with a GPU too (a learner's own runs still pick the GPU).
nbval: $(STAMP)
	EXPLODEGRAD_DEVICE=cpu EXPLODEGRAD_SCALE=quick $(BIN)/pytest $(NBVAL_FLAGS) notebooks -q

browser: $(STAMP)
	$(BIN)/pytest tests/browser -m browser -q

# Stored outputs come from a clean top-to-bottom run on the CPU at the quick scale.
notebooks: $(STAMP)
	EXPLODEGRAD_DEVICE=cpu EXPLODEGRAD_SCALE=quick $(BIN)/jupyter nbconvert --to notebook \
	  --execute --inplace --ExecutePreprocessor.timeout=1200 notebooks/*.ipynb

clean:
	rm -rf test-artifacts .pytest_cache .ruff_cache .import_linter_cache build dist
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
	find notebooks -name .ipynb_checkpoints -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) *.egg-info
