# Every target sets itself up from nothing: a venv in .venv, the package with its test extra.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.aiinfra-installed
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: install lab demo test lint format clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

lab: install
	$(VENV)/bin/jupyter lab $(ROOT_FLAG) $(LAB_ARGS)

demo: install
	$(PY) -m aiinfra_magics.demo

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

# Notebooks run in their own registry so they never meet the user's clusters.
test: lint
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(PY) -m pytest -p no:cacheprovider tests
	AIINFRA_HOME=$$(mktemp -d) PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(PY) -m pytest -p no:cacheprovider --nbval-lax notebooks/01-clusters.ipynb

clean:
	rm -rf $(VENV) build dist *.egg-info
