# Every target sets itself up from nothing: a venv in .venv, the package with its test extra
# (pip builds the JupyterLab extension in extension/ with the jlpm that jupyterlab ships).
SHELL := /bin/bash
# A new venv's interpreter: Python 3.12 where this machine has one (on PATH, or under pyenv),
# else python3. On 3.12+ coverage measures through sys.monitoring (COVERAGE_CORE below): the
# suite's processes pay about 10% for it instead of 1.7x with 3.11's trace function.
PYTHON ?= $(shell for p in python3.12 $$(pyenv root 2>/dev/null)/versions/3.12*/bin/python3; do \
	$$p -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null && { echo $$p; exit; }; done; \
	echo python3)
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.aiinfra-installed
IS_ROOT := $(filter 0,$(shell id -u))
ROOT_FLAG := $(if $(IS_ROOT),--allow-root,)
SUDO := $(if $(IS_ROOT),,sudo)
NOTEBOOKS := $(wildcard notebooks/*.ipynb) notebooks/pipeline/pipeline_magics.ipynb

.PHONY: install lab demo test test-python test-notebooks test-frontend system-packages browser lint format clean screenshots mutate

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	PATH=$(BIN):$$PATH $(PY) -m pip install -q -e ".[test]"
	$(COMPILE)
	touch $(STAMP)

# Byte-compile the editable package, as pip does for the packages it installs: where
# PYTHONDONTWRITEBYTECODE is set (as on our VMs) Python never writes a .pyc itself, and every
# CLI run, kernel and worker the tests start compiled aiinfra from source again (30 ms of a
# 130 ms cached pipeline re-run). A stale .pyc (after an edit) is ignored, never wrong.
COMPILE = $(PY) -m compileall -q aiinfra_magics kernels_gpu

install: $(STAMP)

lab: install
	$(BIN)/jupyter lab $(ROOT_FLAG) $(LAB_ARGS)

demo: install
	$(PY) -m aiinfra_magics.demo

# System packages the tests use, from apt: Debian's chromium for the sidebar test (the
# playwright package never downloads a browser) and slurm-wlm + munge for the SLURM backend
# tests (tests/slurm_fixture.py starts a private one-node SLURM from them), openssh-server +
# openssh-client for the SSH backend tests (tests/ssh_fixture.py runs a private sshd).
SYSTEM_COMMANDS := chromium slurmctld slurmd sbatch munged sshd ssh
SYSTEM_PACKAGES := chromium slurm-wlm munge openssh-server openssh-client
system-packages:
	@missing=; for c in $(SYSTEM_COMMANDS); do command -v $$c >/dev/null || PATH=$$PATH:/usr/sbin command -v $$c >/dev/null || missing=1; done; \
	if [ -n "$$missing" ]; then $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $(SYSTEM_PACKAGES); fi

browser: system-packages

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
# pytest-cov has already combined the children's files into the data file at the end of the
# session: `combine --append` adds any stragglers (plain `combine` replaced it, reporting 0%).
# Most tests wait on processes (kernels, schedulers, servers, SLURM daemons), so three
# pytest-xdist workers keep two cores busy. --dist loadfile keeps a file's tests on one
# worker: module-scoped fixtures (the papermill parity runs, a live server) start once.
# --no-loadscope-reorder keeps conftest's order: the longest files first
# (tests/file_seconds.json), so no long file is left for last.
PYTEST_WORKERS ?= 3
COVERAGE_CORE = $(shell $(PY) -c 'import sys; print("sysmon" if sys.version_info >= (3, 12) else "ctrace")')
test-python: install system-packages
	rm -rf .coverage-data
	$(COMPILE)
	COVERAGE_CORE=$(COVERAGE_CORE) PATH=$(BIN):$$PATH $(PY) -m pytest -p no:cacheprovider -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=25 --cov --cov-report= tests
	$(PY) -m coverage combine --append -q
	$(PY) tests/coverage_by_package.py

# Mutation testing of the contract modules (not part of `make test`; see docs/testing.md).
# One module at a time on a small machine: make mutate MUTANTS='aiinfra_magics.clusters.spec*'
# MUTATE_CHILDREN=1 (results of earlier modules are kept when MUTANTS is given).
MUTATE_CHILDREN ?= 2
MUTANTS ?=
mutate: install
	$(if $(MUTANTS),,rm -rf mutants)
	PATH=$(BIN):$$PATH $(PY) -m mutmut run --max-children $(MUTATE_CHILDREN) $(MUTANTS) || true
	PATH=$(BIN):$$PATH $(PY) -m mutmut results

# Notebooks run in their own registry so they never meet the user's clusters. nbval compares
# the cells marked NBVAL_CHECK_OUTPUT after sanitizing ports, pids, sizes and ages;
# tests/nbval_strict.py fails a cell whose %aiinfra magic failed (IPython shows a UsageError
# as stderr text, which nbval alone lets pass) and a marked cell that does not raise.
NBVAL := --nbval-lax -p tests.nbval_strict --nbval-sanitize-with tests/nbval_sanitize.cfg
test-notebooks: install
	AIINFRA_HOME=$$(mktemp -d) PATH=$(BIN):$$PATH $(PY) -m pytest -p no:cacheprovider $(NBVAL) $(NOTEBOOKS)

test: lint test-frontend test-python test-notebooks

# Refresh the tracked docs/ images (tests themselves only write screenshots to tmp).
# docs/lab.png and docs/lab-dark.png: a running cluster, two dashboard plots as panels, the host chart;
# docs/pipeline-runs.png and docs/pipeline-runs-dark.png: the run view of a failed run (docs/screenshots.py);
# docs/schedules-panel.png: the Schedules panel; docs/cluster-hosts*.png, card-waste-warning.png,
# run-view-efficiency*.png: efficiency (their browser tests).
screenshots: install browser
	AIINFRA_SCREENSHOTS=$(CURDIR)/docs PATH=$(BIN):$$PATH $(PY) -m pytest -p no:cacheprovider -q tests/browser/test_sidebar.py tests/browser/test_schedules_panel.py tests/browser/test_efficiency_lab.py
	PATH=$(BIN):$$PATH $(PY) docs/screenshots.py

clean:
	rm -rf $(VENV) build dist *.egg-info aiinfra_magics/labextension extension/lib extension/node_modules
