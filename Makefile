# The course's commands. `make help` lists them; `make lab` and `make test` set up first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
JOBS ?= auto

.DEFAULT_GOAL := help
.PHONY: help setup lab test lint format release check-release grade bench lock clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

setup: $(STAMP) ## create .venv with the pinned packages (fast and idempotent)

$(STAMP): pyproject.toml lessons/pyproject.toml constraints.txt autograder/jupyterhub/package-lock.json
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e lessons -e ".[dev,hub]"
	@# JupyterHub's proxy (pinned in autograder/jupyterhub/package-lock.json) for the live hub tests
	@if command -v npm >/dev/null; then \
		npm ci --prefix autograder/jupyterhub --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: the live JupyterHub tests will be skipped"; fi
	@touch $@

lab: setup ## open JupyterLab on lessons/ with nbgrader's assignment list and formgrader
	$(BIN)/course lab

test: setup ## lint, then every test (unit, checks-catch-bugs, notebooks, grading end to end)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -n $(JOBS) --dist loadfile --no-loadscope-reorder --durations=25

lint: setup ## ruff lint and format check only
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: setup ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

release: setup ## build lessons/ from solutions/ (jupytext -> nbgrader generate_assignment)
	$(BIN)/course release

check-release: setup ## fail if lessons/ differs from a fresh build of solutions/
	$(BIN)/course check-release

grade: setup ## grade the class in parallel: [FROM=folder|zip] [WORKERS=n] [LESSONS="01_rnn_forward"]
	$(BIN)/course grade $(if $(FROM),--from "$(FROM)") $(if $(WORKERS),--workers $(WORKERS)) $(LESSONS)

bench: setup ## run the benchmarks; results are appended to bench/results/*.jsonl
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

lock: setup ## refresh constraints.txt from the current environment
	@{ sed -n '1,2p' constraints.txt; $(BIN)/python -m pip freeze --exclude-editable | sed 's/+cpu//'; } > constraints.new
	@mv constraints.new constraints.txt

clean: ## remove the virtualenv, caches and nbgrader work dirs (keeps datasets/cache)
	rm -rf $(VENV) autograder/work .pytest_cache .ruff_cache solutions/*/*.ipynb
