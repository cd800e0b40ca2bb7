# The two commands a newcomer needs: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export NUMERAI_ASSETS_HOME ?= $(CURDIR)/.numerai_assets
LOCAL_DAGSTER_HOME := $(NUMERAI_ASSETS_HOME)/dagster_home

.PHONY: install run test test-mongodb lint bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Re-installs only when setup.py changes.
$(VENV)/.installed: setup.py | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

# Seeds a demo round (once) and starts the Dagster UI + daemon with the sensor on, on 127.0.0.1.
# `dg dev -w` is `dagster dev` without its notice that `dagster dev` is superseded by `dg dev`.
run: install
	$(BIN)/numerai-assets demo seed --if-empty
	mkdir -p $(LOCAL_DAGSTER_HOME)
	cp deploy/local/dagster.yaml $(LOCAL_DAGSTER_HOME)/dagster.yaml
	DAGSTER_HOME=$(LOCAL_DAGSTER_HOME) $(BIN)/dg dev -h 127.0.0.1 -p $${DAGSTER_PORT:-3000} -w workspace.yaml

test: install
	$(BIN)/pytest $(PYTEST_ARGS)

# The tests marked `mongodb` over the wire: a SecantusDB server on loopback for their duration.
test-mongodb: install
	.ci/mongo-server run -- $(BIN)/pytest -m mongodb $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: install
	$(BIN)/python -m benchmarks
