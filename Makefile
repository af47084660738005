# The two entry points of the README: `make demo` and `make test`. Each sets up .venv (creating it and
# building the Rust core into it when missing or when the sources changed), then does its job.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.vrm-installed
SOURCES := pyproject.toml Cargo.toml native/Cargo.toml $(wildcard Cargo.lock) $(shell find native/src -name '*.rs' 2>/dev/null)

.PHONY: demo test test-python test-rust test-lowest bench bench-gate setup clean

demo: $(STAMP)
	$(BIN)/vrm demo

test: test-rust test-python

test-python: $(STAMP)
	$(BIN)/python -m pytest

test-rust:
	cargo test --locked -p vrm-native

# The declared dependency floors, proven: a second venv with every requirement pinned to its `>=` floor
# (pip has no lowest resolution; .ci/lowest_constraints.py writes the pins) runs a smoke set touching
# each dependency: CLI and completion (typer, rich, click), store (sqlite-utils), wire (msgpack),
# keys (cryptography), signatures (http-sf), app and real nodes on loopback (starlette, hypercorn,
# trio, httpx).
LOWEST       := .venv-lowest
LOWEST_STAMP := $(LOWEST)/.vrm-installed
SMOKE := tests/test_cli.py tests/test_cli_process.py tests/test_store.py tests/test_httpsig.py \
	tests/test_app.py tests/test_codec.py tests/test_home_keystore.py tests/test_federation.py

test-lowest: $(LOWEST_STAMP)
	$(LOWEST)/bin/python -m pytest -q -p no:cacheprovider $(SMOKE)

$(LOWEST_STAMP): $(SOURCES) .ci/lowest_constraints.py
	rm -rf $(LOWEST)
	$(PYTHON) -m venv $(LOWEST)
	$(LOWEST)/bin/python -m pip install --quiet --upgrade pip
	$(LOWEST)/bin/python .ci/lowest_constraints.py pyproject.toml > $(LOWEST)/constraints.txt
	$(LOWEST)/bin/python -m pip install --quiet -c $(LOWEST)/constraints.txt -e '.[test]'
	@touch $@

bench: $(STAMP)
	$(BIN)/python -m benchmarks

bench-gate: $(STAMP)
	$(BIN)/python -m benchmarks --quick --gate

setup: $(STAMP)

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "vrm-node needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# An editable install: maturin builds node/_native into the source tree, so tests see the sources.
$(STAMP): $(BIN)/python $(SOURCES)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

clean:
	rm -rf $(VENV) $(LOWEST) target node/_native*.so
