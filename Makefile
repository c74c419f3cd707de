# The two commands of the README. Each creates .venv and installs what is missing, from nothing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Airflow's own guidance is to install with its constraints file; that file lives outside the package
# registries reachable here, so pip resolves the pinned ranges in pyproject.toml instead.
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: demo test lint typecheck pytest clean airflow airflow-celery

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip setuptools wheel

$(VENV)/.base: $(BIN)/python pyproject.toml
	$(PIP) install -e .
	touch $@

$(VENV)/.dev: $(VENV)/.base pyproject.toml
	$(PIP) install -e '.[dev,airflow,celery]'
	touch $@

demo: $(VENV)/.base
	$(BIN)/ews demo

# Airflow on this machine (SQLite metadata, LocalExecutor, 127.0.0.1 only), ews DAGs unpaused; Ctrl-C stops it.
airflow: $(VENV)/.dev
	EWS_VENV=$(abspath $(VENV)) scripts/airflow-local.sh

# The same on the distributed engine: PostgreSQL metadata, Redis broker, a Celery worker (both on 127.0.0.1).
airflow-celery: $(VENV)/.dev
	EWS_VENV=$(abspath $(VENV)) scripts/airflow-celery.sh

lint: $(VENV)/.dev
	$(BIN)/ruff check ews ews_airflow tests dags bench
	$(BIN)/ruff format --check ews ews_airflow tests dags bench
	$(BIN)/lint-imports

typecheck: $(VENV)/.dev
	$(BIN)/mypy

pytest: $(VENV)/.dev
	$(BIN)/python -m pytest

test: lint typecheck pytest

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache
