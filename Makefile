# The README's two commands live here so that README, CI and developers run exactly the same thing.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# The locks: every distribution pinned with its hashes (docs/security.md). `make lock` writes them again.
LOCK := requirements.lock
TEST_LOCK := requirements-test.lock
# pip itself, pinned and hashed, installed before the others (the reason is in the file).
PIP_LOCK := requirements-pip.lock
COMPILE := $(BIN)/uv pip compile pyproject.toml --generate-hashes --python-version 3.11 \
	--python-platform x86_64-unknown-linux-gnu --custom-compile-command "make lock" --quiet

.PHONY: install test lint audit lock demo

# The locked distributions, each checked against its hash, then the project itself without dependencies.
$(BIN)/livedash: pyproject.toml $(TEST_LOCK) $(PIP_LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r $(PIP_LOCK)
	$(BIN)/pip install --quiet --require-hashes -r $(TEST_LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(BIN)/livedash

install: $(BIN)/livedash

# ruff includes the S (bandit) security rules; see pyproject.toml for the documented per-line exceptions.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Known vulnerabilities of every locked distribution. --strict: a distribution that could not be checked
# (the vulnerability service unreachable) fails the run instead of passing unchecked.
audit: install
	$(BIN)/pip-audit --strict --require-hashes --disable-pip --progress-spinner off -r $(TEST_LOCK)

# Resolve the pins of pyproject.toml again: the test lock first, the runtime lock inside it (same versions).
lock:
	$(BIN)/pip install --quiet uv==0.13.10
	$(COMPILE) --extra test -o $(TEST_LOCK)
	$(COMPILE) -c $(TEST_LOCK) -o $(LOCK)

# Installs into .venv, then runs ruff, mypy and the whole test suite.
test: lint
	$(BIN)/pytest

demo: install
	$(BIN)/livedash demo
