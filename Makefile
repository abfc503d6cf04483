# Two commands on a fresh machine with Python 3.11: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast test-interop test-cluster lint format clean

# (Re)install only when pyproject.toml changed since the last install.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m pipeline.cli.demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Everything but the tests marked slow (servers, Dask, torch.compile, whole flows, benchmarks).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

# Label Studio pins many packages: it gets a virtual environment of its own, made once. `make
# test` runs the round trip against it when this environment exists and skips it otherwise.
INTEROP := .venv-interop
$(INTEROP)/bin/label-studio:
	@test -x $(INTEROP)/bin/python || $(PYTHON) -m venv $(INTEROP)
	$(INTEROP)/bin/python -m pip install --quiet label-studio

test-interop: $(STAMP) $(INTEROP)/bin/label-studio
	$(BIN)/python -m pytest -q -m interop

# The several-machines recipe on three network namespaces (root + iproute2; skips without).
test-cluster: $(STAMP)
	$(BIN)/python -m pytest -q tests/cluster

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf demo_out .pytest_cache
