SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CHECKOV_VENV := .venv-checkov
EXAMPLES := $(wildcard examples/*)

# Lambda platform: one source for the Terraform defaults and the package build.
platform = $(shell $(PYTHON) -c 'import json; print(json.load(open("functions/platform.json"))["$(1)"])')
RUNTIME ?= $(call platform,runtime)
ARCH ?= $(call platform,architecture)

# Terraform: use a local provider mirror where the machine has one, the registry otherwise.
# Set TF_PLUGIN_MIRROR to point at another mirror directory.
TF_PLUGIN_MIRROR ?= $(firstword $(wildcard /opt/tf-plugins /usr/local/share/terraform/plugins \
  /usr/share/terraform/plugins $(HOME)/.terraform.d/plugins))
TF_HOME := $(CURDIR)/.terraform.d
export TF_PLUGIN_CACHE_DIR := $(TF_HOME)/plugin-cache
export TF_IN_AUTOMATION := 1
export CHECKPOINT_DISABLE := 1
ifneq ($(TF_PLUGIN_MIRROR),)
export TF_CLI_CONFIG_FILE := $(TF_HOME)/terraformrc
else ifeq ($(wildcard $(TF_CLI_CONFIG_FILE)),)
unexport TF_CLI_CONFIG_FILE
endif
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help
help: ## Show the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

##### Set-up

# The project itself goes in editable: async_jobs, async_jobs_local and async_jobs_tools import
# from their source folders (pyproject.toml), with no PYTHONPATH; so does the client, a
# distribution of its own (client/pyproject.toml).
$(VENV)/.stamp: requirements-dev.txt pyproject.toml client/pyproject.toml
	@$(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --quiet -r requirements-dev.txt
	@$(PY) -m pip install --quiet --no-deps -e .
	@# the client after the project: an older project that shipped the `async-jobs` script takes it
	@# with it when it is replaced
	@$(PY) -m pip install --quiet --no-deps -e ./client
	@touch $@

$(CHECKOV_VENV)/.stamp: requirements-checkov.txt
	@$(PYTHON) -m venv $(CHECKOV_VENV)
	@$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements-checkov.txt
	@touch $@

.PHONY: venv
venv: $(VENV)/.stamp ## Create .venv from the pinned development requirements

.PHONY: terraformrc
terraformrc:
	@mkdir -p $(TF_PLUGIN_CACHE_DIR)
ifneq ($(TF_PLUGIN_MIRROR),)
	@providers=$$(cd $(TF_PLUGIN_MIRROR) && find . -mindepth 3 -maxdepth 3 -type d | sed 's|^\./||' \
	  | sort | sed 's/.*/"&"/' | paste -sd, -); \
	printf '%s\n' \
	  'provider_installation {' \
	  '  filesystem_mirror {' \
	  '    path    = "$(TF_PLUGIN_MIRROR)"' \
	  "    include = [$$providers]" \
	  '  }' \
	  '  direct {' \
	  "    exclude = [$$providers]" \
	  '  }' \
	  '}' > $(TF_HOME)/terraformrc
endif

.PHONY: lock
lock: ## Re-pin requirements-dev.txt, the functions' requirements.txt and requirements-checkov.txt
	@rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	@# setuptools is a runtime dependency of redshift-connector: resolve it too, not the venv's seed
	@.venv-lock/bin/pip install --quiet --upgrade setuptools -r requirements-dev.in
	@{ echo "# Pinned closure of requirements-dev.in (make lock). Do not edit by hand."; \
	  .venv-lock/bin/pip freeze --all --exclude pip; } > requirements-dev.txt
	@# one resolution: each function pins its requirements.in's closure within the one above
	@.venv-lock/bin/python functions/lock.py
	@rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	@.venv-lock/bin/pip install --quiet checkov
	@{ echo "# Pinned closure of checkov (make lock); a venv of its own keeps its many pins apart."; \
	  .venv-lock/bin/pip freeze; } > requirements-checkov.txt
	@rm -rf .venv-lock

##### Build

.PHONY: build
build: $(VENV)/.stamp ## Build dist/{submit,worker,status}.zip (RUNTIME=, ARCH= override)
	@$(PY) functions/build.py --runtime $(RUNTIME) --architecture $(ARCH)

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
RELEASE := dist/async-jobs-$(VERSION).tar.gz

.PHONY: dist
dist: build ## Write dist/async-jobs-<version>.tar.gz (module source + built zips) and the client's wheel
	@$(PY) functions/release.py --output $(RELEASE)
	@$(PY) -m pip wheel --quiet --no-deps --wheel-dir dist ./client

# The version lives in VERSION; naming it here too makes the release a deliberate act.
.PHONY: release
release: $(VENV)/.stamp build ## VERSION=x.y.z: check VERSION and CHANGELOG.md, write the archive, tag vx.y.z
	@if [ "$(origin VERSION)" != "command line" ]; then \
	  echo "usage: make release VERSION=x.y.z (VERSION holds $$(cat VERSION))" >&2; exit 2; fi
	@$(PY) functions/release.py --release $(VERSION)

##### Checks

.PHONY: docs
docs: ## Regenerate the README's inputs/outputs tables from variables.tf/outputs.tf
	@$(PYTHON) functions/tfdocs.py

# Three independent strands; `make -j lint` (as `make test` does) runs them side by side.
.PHONY: lint lint-python lint-terraform lint-checkov
lint: lint-python lint-terraform lint-checkov ## ruff, mypy, terraform fmt/validate, checkov, docs

lint-python: $(VENV)/.stamp
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(VENV)/bin/mypy
	@$(PYTHON) functions/tfdocs.py --check

lint-terraform: terraformrc
	@terraform fmt -check -recursive
	@for dir in . $(EXAMPLES); do \
	  echo "terraform validate $$dir"; \
	  terraform -chdir=$$dir init -backend=false -input=false >/dev/null; \
	  terraform -chdir=$$dir validate -no-color >/dev/null || terraform -chdir=$$dir validate; \
	done

lint-checkov: $(CHECKOV_VENV)/.stamp
	@echo "checkov ."
	@$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework terraform -d . \
	  --skip-path examples --skip-path tests --skip-path bench --skip-path .terraform.d
	@for dir in $(EXAMPLES) bench/stack; do echo "checkov $$dir"; \
	  $(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework terraform -d $$dir; done

.PHONY: unit
unit: $(VENV)/.stamp build ## Python unit tests (moto mock_aws, no network) and package imports
	@$(PY) -m pytest tests/unit

.PHONY: plan
plan: $(VENV)/.stamp build terraformrc ## terraform plan tests of every example (tftest)
	@$(PY) -m pytest tests/plan

.PHONY: e2e
e2e: $(VENV)/.stamp build terraformrc ## terraform apply + local runtime end-to-end tests
	@$(PY) -m pytest tests/e2e

# Test workers (pytest-xdist): each test module runs whole in one worker (--dist loadscope), so
# a module's stack is applied once; modules are handed out in collection order, where
# tests/conftest.py puts the slow ones first. The e2e modules mostly wait on Terraform and the
# local stack, which is why more workers than cores pay off. TEST_WORKERS=0: one process.
TEST_WORKERS ?= 3
PYTEST_PARALLEL := $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder)

# The report at the end: the ten slowest tests and the time per layer (tests/layer_report.py),
# with the lint step's wall time (lint runs beside the build, so it includes the build's).
.PHONY: test
test: ## Everything CI runs: lint, then unit, plan and e2e tests and the benchmark smoke test
	@lint_started=$$EPOCHREALTIME; $(MAKE) -j 4 lint build terraformrc; \
	export ASYNC_JOBS_LINT_SECONDS=$$(awk "BEGIN { print $$EPOCHREALTIME - $$lint_started }"); \
	$(PY) -m pytest $(PYTEST_PARALLEL) --durations=10 tests/unit tests/plan tests/e2e bench/tests

##### Benchmarks

.PHONY: bench
bench: $(VENV)/.stamp build terraformrc ## Benchmarks, design layer and local stack (~15 min): bench/results, docs/performance.md
	@$(PY) -m bench
	@$(PY) -m bench.docs

.PHONY: bench-smoke
bench-smoke: $(VENV)/.stamp build ## Benchmark smoke test (< 1 min): the figures are produced and sane
	@$(PY) -m pytest bench/tests

##### Local stack

.PHONY: local
local: $(VENV)/.stamp build terraformrc ## Run the module on a local moto server; API on :8080
	@$(PY) -m async_jobs_local up

.PHONY: demo
demo: $(VENV)/.stamp build terraformrc ## Submit a 20,000-record job to the local stack and watch it
	@$(PY) -m async_jobs_local demo

.PHONY: clean
clean: ## Remove build output, caches and Terraform working directories
	@rm -rf dist .pytest_cache .mypy_cache .ruff_cache .local
	@find . -name __pycache__ -type d -prune -exec rm -rf {} +
	@find . -name .terraform -type d -prune -not -path './.terraform.d/*' -exec rm -rf {} +
	@find . -name '.terraform.lock.hcl' -not -path './.terraform.d/*' -delete
