# The two entry points of the README: `make demo` and `make test`. Each sets up .venv (creating it and
# building the Rust core into it when missing or when the sources changed), then does its job.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.vrm-installed
SOURCES := pyproject.toml Cargo.toml native/Cargo.toml $(wildcard Cargo.lock) $(shell find native/src -name '*.rs' 2>/dev/null)

.PHONY: demo test test-python test-rust bench bench-gate setup clean

demo: $(STAMP)
	$(BIN)/vrm demo

test: test-rust test-python

test-python: $(STAMP)
	$(BIN)/python -m pytest

test-rust:
	cargo test --locked -p vrm-native

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
	$(BIN)/python -m pip install --quiet -e '.[test,fleet]'
	@touch $@

clean:
	rm -rf $(VENV) target node/_native*.so
