# The two entry points of the README: `make demo` and `make test`. Each sets up .venv (creating it and
# building the Rust core into it when missing or when the sources changed), then does its job.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.vrm-installed
SOURCES := pyproject.toml Cargo.toml native/Cargo.toml $(wildcard Cargo.lock) $(shell find native/src -name '*.rs' 2>/dev/null)

.PHONY: demo demo-fleet test test-debs test-python test-rust test-lowest bench bench-gate setup clean wheels sdist pi-check

demo: $(STAMP)
	$(BIN)/vrm demo

# One vendor, two listeners, one throwaway PostgreSQL cluster (fleet/demo.py); everything stopped after.
demo-fleet: $(STAMP)
	@.ci/ensure-debs postgresql
	$(BIN)/python -m fleet.demo

test: test-rust test-python

# The real servers the tests drive, from Debian when missing (as root; otherwise it names what to
# install): chromium (the page), PostgreSQL (the fleet), nginx (a proxy in front), systemd-analyze.
test-debs:
	@command -v chromium >/dev/null || .ci/ensure-debs chromium
	@.ci/ensure-debs postgresql systemd nginx

# One worker per core (at most 4: the multi-node tests start many servers each); every test runs on
# port 0, in its own temp directory, and each worker starts its own PostgreSQL cluster when asked.
PYTEST_WORKERS ?= auto
test-python: $(STAMP) test-debs
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --maxprocesses 4

test-rust:
	cargo test --locked -p vrm-native

# The declared dependency floors, proven: a second venv with every requirement pinned to its `>=` floor
# (pip has no lowest resolution; .ci/lowest_constraints.py writes the pins) runs a smoke set touching
# each dependency: CLI and completion (typer, rich, click), store (sqlite-utils), wire (msgpack),
# keys (cryptography), signatures (http-sf), app and real nodes on loopback (starlette, hypercorn,
# trio, httpx).
LOWEST       := .venv-lowest
LOWEST_STAMP := $(LOWEST)/.vrm-installed
SMOKE := tests/test_cli.py tests/test_egress.py tests/test_cli_vault.py tests/test_cli_process.py tests/test_store.py tests/test_httpsig.py \
	tests/test_httpsig_reasons.py tests/test_app.py tests/test_codec.py tests/test_codec_refusals.py \
	tests/test_home_keystore.py tests/test_federation.py

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
	$(BIN)/python -m pip install --quiet -e '.[test,fleet]'
	@touch $@

# Release wheels: abi3 (one per architecture for every CPython >= 3.11), cross-compiled with zig as
# the linker so the manylinux2014 (glibc 2.17) tag holds and a Raspberry Pi OS 64-bit installs them.
# maturin finds zig as `python3 -m ziglang`: the venv must come first on PATH.
WHEEL_TARGETS := x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu
TOOLS := $(VENV)/.vrm-build-tools

$(TOOLS): $(BIN)/python
	$(BIN)/python -m pip install --quiet 'maturin>=1.7,<2' 'ziglang>=0.13'
	@touch $@

wheels: $(TOOLS)
	@if command -v rustup >/dev/null; then rustup target add $(WHEEL_TARGETS) >/dev/null; fi
	for target in $(WHEEL_TARGETS); do \
		PATH="$(abspath $(BIN)):$$PATH" $(BIN)/maturin build --release --strip --zig --compatibility manylinux2014 \
			--target $$target --out dist || exit 1; \
	done
	@ls -l dist/*.whl

sdist: $(TOOLS)
	$(BIN)/maturin sdist --out dist

# The aarch64 wheel run for real under qemu in an arm64 Debian root (cached in ~/.cache/vrm-pi):
# `vrm init`, the three-node demo and a test subset, with time and peak memory (benchmarks/pi_check).
pi-check: wheels
	.ci/ensure-debs debootstrap qemu-user-static
	$(BIN)/python -m benchmarks.pi_check --wheel-dir dist

clean:
	rm -rf $(VENV) $(LOWEST) target node/_native*.so dist
