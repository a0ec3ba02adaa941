# oncopipe: the two commands of the README, and a few helpers.
# Every target that needs Python builds .venv from the committed lock (uv.lock) on a machine with only python3.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.synced

.PHONY: demo test test-topology bench lint venv system-deps clean-var

venv: $(STAMP)

# uv itself is pinned in the lock (dev group), so `uv sync` keeps it in the venv it manages.
$(STAMP): pyproject.toml uv.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet --disable-pip-version-check \
		"uv==$$(sed -n '/^name = "uv"$$/{n;s/^version = "\(.*\)"$$/\1/p;}' uv.lock)"
	$(BIN)/uv sync --frozen --python $(BIN)/python
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/oncopipe demo

# The production-topology tests (PostgreSQL + Celery + every Airflow process, scheduler killed mid-refresh) and the
# live Airflow UI browser test take 20-30 minutes on this 2-core machine: they run with `make test-topology`.
test: $(STAMP) system-deps
	$(BIN)/python -m pytest -m "not topology and not airflow_ui"

test-topology: $(STAMP) system-deps
	$(BIN)/python -m pytest -m "topology or airflow_ui"

# What the browser and compose tests need from Debian: headless Chromium (driven by Playwright) and
# docker-compose (validates docker-compose.yml; no Docker engine is needed for that).
SYSTEM_PACKAGES := chromium chromium-driver docker-compose
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
