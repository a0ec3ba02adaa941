# oncopipe: the two commands of the README, and a few helpers.
# Every target that needs Python builds .venv from the committed lock (uv.lock) on a machine with only python3.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.synced

.PHONY: demo test bench lint venv clean-var

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

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

lint: $(STAMP)
	$(BIN)/ruff check plugins dags tests benchmarks

clean-var:
	rm -rf var
