# `make demo` and `make test` set up the virtual environment first if it is missing.
# VENV can point anywhere (CI keeps one outside the clone, keyed by the dependency list).
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
# The dependency stamp changes whenever pyproject's dependency lists change.
DEPS_KEY := $(shell $(PYTHON) scripts/deps_key.py)
DEPS_STAMP := $(VENV)/.deps-$(DEPS_KEY)
# The editable install points at this checkout; a venv reused from another clone re-points it.
SRC_STAMP := $(VENV)/.src-$(shell printf '%s' "$(CURDIR)" | sha256sum | cut -c1-12)

.PHONY: setup demo test lint format bench-labels clean

setup: $(SRC_STAMP)

$(DEPS_STAMP):
	# A venv left half-made by a killed run (python but no pip) is rebuilt, not reused.
	$(PY) -m pip --version >/dev/null 2>&1 || $(PYTHON) -m venv --clear $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -e '.[dev]'
	rm -f $(VENV)/.deps-* $(VENV)/.src-*
	touch $@ $(SRC_STAMP)

$(SRC_STAMP): $(DEPS_STAMP)
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.src-*
	touch $@

demo: setup
	$(VENV)/bin/weakseg demo

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/ruff format --check src tests benchmarks scripts

format: setup
	$(VENV)/bin/ruff format src tests benchmarks scripts
	$(VENV)/bin/ruff check --fix src tests benchmarks scripts

bench-labels: setup
	$(PY) -m benchmarks.pseudo_labels

clean:
	rm -rf weakseg-demo .pytest_cache build
