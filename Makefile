# The two commands a user needs: `make demo` and `make test`. Everything else is set-up they call.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
VENV := .venv
PY := $(VENV)/bin/python
DS ?= 2026-11-01
PIPELINE ?= vertebral_column
RUFF := $(VENV)/bin/ruff
LINT_PATHS := dags plugins include tests

# Airflow runs embedded from this folder: SQLite metadata DB and the local lake live here.
export AIRFLOW_HOME := $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
# New DAGs run on first start: a backfill or a trigger is not left queued behind a paused DAG.
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION := False
export AIRFLOW__GATED_ML__LAKE_ROOT ?= $(CURDIR)/lake
export PYTHONPATH := $(CURDIR)/plugins

.PHONY: replay demo score test test-fast lint format install airflow-db standalone stop-endpoint gx-suites promote-baseline approve reject promote rollback versions bench lock clean

# TARGET=aws-emulated: the aws DAG (the provider's operators) against the AWS emulator, offline.
demo: install airflow-db
	$(PY) -m gated_ml.cli demo --pipeline $(PIPELINE) --ds $(DS) $(if $(TARGET),--target $(TARGET))

# Land dated batches cut from the bundled data: make replay PIPELINE=wine_quality FROM=2026-11-01 TO=2026-11-15
# (ZONE=scoring: the scoring DAG's batches of new rows, target dropped, under scoring/ds=.../)
replay: install
	$(PY) -m gated_ml.cli replay --pipeline $(PIPELINE) $(if $(FROM),--from $(FROM)) $(if $(TO),--to $(TO)) $(if $(ZONE),--zone $(ZONE))

# Lint, then the whole suite (what CI runs).
test: lint
	$(PY) -m pytest

# The unit tier: no whole-DAG runs (e2e), no Spark/GX/model-server start-ups (slow); under two minutes.
test-fast: install
	$(PY) -m pytest -m "not e2e and not slow"

# Checks only: lint rules and formatting (settings in pyproject.toml).
lint: install
	$(RUFF) check $(LINT_PATHS)
	$(RUFF) format --check $(LINT_PATHS)

# Rewrites files: safe autofixes, then the formatter; then reports what is left to fix by hand.
format: install
	$(RUFF) check --fix-only $(LINT_PATHS)
	$(RUFF) format $(LINT_PATHS)
	$(RUFF) check $(LINT_PATHS)

install: $(VENV)/.installed

$(VENV)/.installed: requirements.lock scripts/ensure-system-packages.sh
	bash scripts/ensure-system-packages.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet uv==$(UV_VERSION)
	$(VENV)/bin/uv pip sync --quiet --python $(PY) requirements.lock
	@# PYTHONDONTWRITEBYTECODE is set on our machines: compile once so imports stay fast.
	$(PY) -m compileall -q -j 0 $(VENV)/lib > /dev/null || true
	touch $@

airflow-db: install
	@test -f $(AIRFLOW_HOME)/airflow.db || $(VENV)/bin/airflow db migrate > /dev/null
	@$(PY) -m gated_ml.cli setup > /dev/null  # the endpoint pools (idempotent)

# The Airflow UI on http://localhost:8080 (credentials are printed by standalone).
standalone: install airflow-db
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/airflow standalone  # it starts its components as `airflow ...`

stop-endpoint: install
	$(PY) -m gated_ml.cli stop-endpoint --pipeline $(PIPELINE)

# Rewrite great_expectations/expectations/ from the specs (review the diff like code).
gx-suites: install
	$(PY) -m gated_ml.cli gx-suites

# Make an accepted batch the baseline: make promote-baseline DS=2026-11-08 REASON="new scanner"
promote-baseline: install
	$(PY) -m gated_ml.cli promote-baseline --pipeline $(PIPELINE) --ds $(DS) --reason "$(REASON)"

# Score DS's batch of new rows with the approved model (lands it from the bundled data if upstream has not): make score DS=2026-11-08
score: install airflow-db
	$(PY) -m gated_ml.cli score --pipeline $(PIPELINE) --ds $(DS)

# Operators' actions on model versions (each runs the pipeline's action DAG in process, as a trigger from the UI would):
#   make approve PIPELINE=vertebral_column VERSION=3 REASON="reviewed the report"   (reject: the same)
#   make promote PIPELINE=vertebral_column VERSION=3 REASON="..."   make rollback PIPELINE=vertebral_column REASON="..."
approve reject promote: install airflow-db
	$(PY) -m gated_ml.cli $@ --pipeline $(PIPELINE) --version $(VERSION) --reason "$(REASON)"

rollback: install airflow-db
	$(PY) -m gated_ml.cli rollback --pipeline $(PIPELINE) --reason "$(REASON)"

# The versions of a pipeline: approval in the Model Registry, which one serves, who did what to each.
versions: install
	$(PY) -m gated_ml.cli versions --pipeline $(PIPELINE)

# Benchmarks (run on demand, print ratios; not part of make test).
bench: install
	$(PY) tests/benchmarks/bench_curated_gate.py
	$(PY) tests/benchmarks/bench_endpoint.py
	$(PY) tests/benchmarks/bench_backfill.py

lock:
	$(VENV)/bin/uv pip compile --python-version 3.11 requirements.txt -o requirements.lock

clean:
	rm -rf .airflow lake
