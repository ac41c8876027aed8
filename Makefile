# The two commands of the README. Each creates .venv (with the Python in PYTHON) when needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint bench clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "smtquant needs Python >= 3.10")'
	@$(PYTHON) -m venv $(VENV) || { echo "cannot create a virtual environment; on Debian: apt-get install python3-venv"; exit 2; }
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

demo: $(VENV)/.installed
	@echo "== the shipped twin models (same data, architecture and seed; ReLU vs linear hidden units) =="
	$(BIN)/smtquant info models/moons_relu.json
	$(BIN)/smtquant info models/moons_linear.json
	@echo
	@echo "== certified maximum confidence deviation at x = (0.5, 0.25) under fixed:4 (eps = 1/32) =="
	$(BIN)/smtquant local models/moons_relu.json --input 0.5,0.25 --quant fixed:4 --quantify
	$(BIN)/smtquant local models/moons_linear.json --input 0.5,0.25 --quant fixed:4 --quantify
	@echo
	@echo "== is the confidence within 0.01 at 10 fractional bits? (exit 0: proved) =="
	$(BIN)/smtquant local models/moons_relu.json --input 0.5,0.25 --quant fixed:10 --delta 0.01
	@echo
	@echo "== and at 8 fractional bits? (exit 1: violated, with a witness re-checked exactly) =="
	$(BIN)/smtquant local models/moons_relu.json --input 0.5,0.25 --quant fixed:8 --delta 0.01; test $$? -eq 1

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-test
	$(BIN)/ruff check smtquant tests models benchmarks
	$(BIN)/mypy smtquant

clean:
	rm -rf $(VENV) build *.egg-info
