# The README's two commands live here so that README, CI and developers run exactly the same thing.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install test lint demo

$(BIN)/livedash: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(BIN)/livedash

install: $(BIN)/livedash

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Installs into .venv, then runs ruff, mypy and the whole test suite.
test: lint
	$(BIN)/pytest

demo: install
	$(BIN)/livedash demo
