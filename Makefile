# oncopipe: the two commands of the README, and a few helpers.
# Every target that needs Python builds .venv from the committed lock (uv.lock) on a machine with only python3.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.synced
SETUP_LOG := $(VENV)/setup.log

.PHONY: demo test test-topology bench lint venv system-deps clean-var

venv: $(STAMP)

# uv itself is pinned in the lock (dev group), so `uv sync` keeps it in the venv it manages.
# --compile-bytecode: uv installs no .pyc by default and where PYTHONDONTWRITEBYTECODE is set (CI sandboxes) none
# is ever written, so every process (each Airflow task is one) compiled Airflow, dbt and GX from source on import:
# 2-3x slower imports (measured: dbt 11.6 s -> ~7 s, GX 32 s -> ~11 s at load ~10-17 on this 2-core machine).
# The Makefile is a prerequisite so a venv synced before this flag was added gets compiled once.
# One line per step on the console; what pip and uv print goes to $(SETUP_LOG) (its tail is shown on a failure).
$(STAMP): pyproject.toml uv.lock Makefile
	@mkdir -p $(VENV) && : > $(SETUP_LOG)
	@echo "set-up: python virtual environment $(VENV) (details in $(SETUP_LOG))"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) >>$(SETUP_LOG) 2>&1 || { tail -n 20 $(SETUP_LOG); exit 1; }
	@echo "set-up: uv, the pinned installer"
	@test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet --disable-pip-version-check \
		"uv==$$(sed -n '/^name = "uv"$$/{n;s/^version = "\(.*\)"$$/\1/p;}' uv.lock)" >>$(SETUP_LOG) 2>&1 \
		|| { tail -n 20 $(SETUP_LOG); exit 1; }
	@echo "set-up: packages from uv.lock"
	@$(BIN)/uv sync --frozen --compile-bytecode --python $(BIN)/python >>$(SETUP_LOG) 2>&1 \
		|| { tail -n 20 $(SETUP_LOG); exit 1; }
	@echo "set-up: $$(grep -c '^ + ' $(SETUP_LOG) || true) package(s) installed; done"
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/oncopipe demo

# The whole suite, on two workers (pytest-xdist; this machine has two cores and most tests wait on subprocesses:
# dbt, Airflow, Chromium, Spark). A worker takes a whole test file at a time (tests/conftest.py's scheduler), so a module fixture is built once;
# the production-topology tests (PostgreSQL + Celery + every Airflow process, scheduler killed mid-refresh) and
# the live Airflow UI browser test share one native topology and go to one worker, in order (tests/conftest.py).
# --no-loadscope-reorder keeps the order tests/conftest.py gives (longest groups first; xdist's default orders
# them by how many tests they hold). The 30 slowest tests are listed at the end, so the log shows where the 20-minute budget goes.
# PYTEST_WORKERS=0 runs it in one process. Three workers measured (2026-12-07): 1,036 s against 1,104 s for two, with
# every long test slower (the embedded scenario's set-up 342 -> 609 s): not worth the waits nearer their timeouts.
PYTEST_WORKERS ?= 2
test: $(STAMP) system-deps
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadscope --no-loadscope-reorder --durations=30

# Only the topology and live-UI tests (a convenience: `make test` runs them too).
test-topology: $(STAMP) system-deps
	$(BIN)/python -m pytest -m "topology or airflow_ui or after_refresh"

# What the browser and compose tests need from Debian: headless Chromium (driven by Playwright) and
# docker-compose (validates docker-compose.yml; no Docker engine is needed for that); Java 17 for the Spark engine
# (pyspark starts a JVM; tests/integration/test_spark_engine.py).
SYSTEM_PACKAGES := chromium chromium-driver docker-compose openjdk-17-jre-headless
system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

lint: $(STAMP)
	$(BIN)/ruff check plugins dags tests benchmarks

clean-var:
	rm -rf var
