# Every target sets itself up from nothing: a venv in .venv, the package with its test extra
# (pip builds the JupyterLab extension in extension/ with the jlpm that jupyterlab ships).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.aiinfra-installed
IS_ROOT := $(filter 0,$(shell id -u))
ROOT_FLAG := $(if $(IS_ROOT),--allow-root,)
SUDO := $(if $(IS_ROOT),,sudo)
NOTEBOOKS := $(wildcard notebooks/*.ipynb) notebooks/pipeline/pipeline_magics.ipynb

.PHONY: install lab demo test test-python test-notebooks test-frontend browser lint format clean mutate

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	PATH=$(BIN):$$PATH $(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

lab: install
	$(BIN)/jupyter lab $(ROOT_FLAG) $(LAB_ARGS)

demo: install
	$(PY) -m aiinfra_magics.demo

# Debian's chromium for the sidebar test (the playwright package never downloads a browser).
browser:
	command -v chromium >/dev/null || ($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium)

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

test-frontend: install
	cd extension && PATH=$(BIN):$$PATH jlpm install && PATH=$(BIN):$$PATH jlpm test

# Line coverage per package, subprocesses included (CLI runs, daemons, Dask workers, kernels):
# coverage's `patch = ["subprocess"]` (pyproject.toml) measures every Python child process.
test-python: install browser
	rm -rf .coverage-data
	PATH=$(BIN):$$PATH $(PY) -m pytest -p no:cacheprovider --cov --cov-report= tests
	$(PY) -m coverage combine -q
	$(PY) tools/coverage_by_package.py

# Mutation testing of the contract modules (not part of `make test`; see docs/testing.md).
mutate: install
	rm -rf mutants
	PATH=$(BIN):$$PATH $(PY) -m mutmut run --max-children 2 || true
	PATH=$(BIN):$$PATH $(PY) -m mutmut results

# Notebooks run in their own registry so they never meet the user's clusters.
test-notebooks: install
	AIINFRA_HOME=$$(mktemp -d) PATH=$(BIN):$$PATH $(PY) -m pytest -p no:cacheprovider --nbval-lax $(NOTEBOOKS)

test: lint test-frontend test-python test-notebooks

clean:
	rm -rf $(VENV) build dist *.egg-info aiinfra_magics/labextension extension/lib extension/node_modules
