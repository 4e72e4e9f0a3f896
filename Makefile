# tlsreply: `make run` serves on port 4433, `make test` runs the test suite,
# `make bench` measures it against nginx (bench/README.md).
# All create the virtual environment in .venv on first use.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 4433

.PHONY: run test test-all lint typecheck check clean bench fuzz interop interop-ci docs

# setuptools prints a boxed note on every editable install, that a folder
# named like the package in the current folder may take precedence over the
# install: here that folder is the checkout itself, on purpose. Only that
# note is silenced.
EDITABLE_NOTE := ignore:Editable installation:UserWarning

# An editable install in setuptools' default mode, then
# scripts/expose_checkout.py, which puts the checkout on the environment's
# sys.path: the editable install's import hook maps only the tlsreply
# package, but twistd finds plugins, and trial the tests, on sys.path.
$(BIN)/.installed: setup.cfg pyproject.toml scripts/expose_checkout.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	PYTHONWARNINGS='$(EDITABLE_NOTE)' $(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python scripts/expose_checkout.py
	touch $@

run: $(BIN)/.installed
	$(BIN)/twistd -n --pidfile= tlsreply --port $(PORT)

# Every test under trial, in two processes; under pytest, the tests only
# pytest runs and a sample of every kind of trial test, which with
# tests/test_runners.py (pytest collects exactly what trial runs) proves
# both runners without running the suite twice. test-all runs it twice.
PYTEST_SAMPLE = tests/test_pytest_plugin.py tests/test_wire.py tests/test_protocol.py tests/test_runners.py

test: $(BIN)/.installed
	$(BIN)/trial -j2 tests
	$(BIN)/pytest $(PYTEST_SAMPLE)

test-all: $(BIN)/.installed
	$(BIN)/trial tests
	$(BIN)/pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check tlsreply tests twisted scripts bench
	$(BIN)/mypy

check: lint test

# The API reference (scripts/apidocs.py): pydoctor, from the docstrings, into
# docs/api/ (not committed); any warning fails it. The supported public API
# is public there, the other modules private, the underscore ones hidden.
docs: $(BIN)/.installed
	rm -rf docs/api
	$(BIN)/python scripts/apidocs.py docs/api

# A long random campaign against the ClientHello readers: the properties of
# tests/test_clienthelloproperties.py (which the suite runs on 200 fixed
# examples each), FUZZ_EXAMPLES examples each; it says how many cases ran.
FUZZ_EXAMPLES ?= 10000

fuzz: $(BIN)/.installed
	$(BIN)/python scripts/fuzzhello.py --examples $(FUZZ_EXAMPLES)

# The benchmark's extras (matplotlib for the chart, uvloop for a reference
# server), then the full run: a few minutes; it prints the tables and writes
# bench/results.json and bench/chart.png.
$(BIN)/.bench-installed: $(BIN)/.installed setup.cfg
	PYTHONWARNINGS='$(EDITABLE_NOTE)' $(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $@

bench: $(BIN)/.bench-installed
	$(BIN)/python bench/run.py --json bench/results.json --chart bench/chart.png

# The interop matrix (scripts/interop): every scenario against OpenSSL's
# s_client and curl, Python's ssl (this one and Debian's), Node.js, Java,
# GnuTLS and curl_cffi's browser profiles; writes docs/interop.md and
# docs/interop.json, fails on any cell that is not its stack's outcome.
# interop-ci runs the same matrix and writes nothing.
$(BIN)/.interop-installed: $(BIN)/.installed setup.cfg
	PYTHONWARNINGS='$(EDITABLE_NOTE)' $(BIN)/python -m pip install --quiet -e '.[dev,interop]'
	touch $@

interop: $(BIN)/.interop-installed
	$(BIN)/python -m scripts.interop --markdown docs/interop.md --json docs/interop.json

interop-ci: $(BIN)/.interop-installed
	$(BIN)/python -m scripts.interop

clean:
	rm -rf $(VENV) build dist docs/api *.egg-info _trial_temp* .mypy_cache .ruff_cache bench/.cache scripts/interop/.cache
