# Pingan Map — the two commands: `make demo` (set up and serve the demo district) and
# `make test` (set up and run every test against a real PostGIS).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PINGAN := $(BIN)/pingan
SCALE ?= 1
SEED ?= 42
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: demo test test-deps setup system-deps venv assets db demo-data demo-users serve lint bench clean-db help

help:
	@echo "make demo   - set up everything and serve the demo district on http://$(HOST):$(PORT)"
	@echo "make test   - set up everything and run the test suite against a real PostGIS"
	@echo "make lint   - ruff"
	@echo "make bench  - benchmarks (prints figures; see bench/README.md)"

demo: setup demo-data demo-users serve

test: setup test-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-deps:
	@bash scripts/system-deps.sh --test

# Everything both commands need: system packages, the venv, front-end assets, the database.
setup: system-deps venv assets db

system-deps:
	@bash scripts/system-deps.sh

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

assets: node_modules/.installed

node_modules/.installed: package.json package-lock.json scripts/build-glyphs.mjs
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

db: venv
	$(PINGAN) db up

demo-data: db
	$(PINGAN) demo load --scale $(SCALE) --seed $(SEED)

# one user per role, random passwords, printed and kept in .data/demo-users.txt (0600)
demo-users: demo-data
	$(PINGAN) demo users

serve:
	$(PINGAN) serve --host $(HOST) --port $(PORT)

lint: venv
	$(BIN)/ruff check .

bench: setup
	@echo "see bench/README.md for each benchmark's command"

clean-db:
	-$(PINGAN) db stop
	@echo "the data dir .data/ is kept; remove it by hand to start from nothing"
