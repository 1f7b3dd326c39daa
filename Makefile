# `make demo`: set up .venv and run the whole pipeline on a small generated sample (CPU).
# `make test`: set up .venv and run the test suite (what CI runs); `make test-fast`: the fast unit tier.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: setup demo test test-fast test-all clean

setup: $(VENV)/.installed

# torch first, from the CPU wheel: a bare `torch` requirement would pull a multi-GB CUDA build
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	touch $@

demo: setup
	$(PY) demo.py --out runs/demo

test: setup
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not e2e"

test-all: setup
	RUN_SLOW=1 $(PY) -m pytest -q

clean:
	rm -rf runs/demo .pytest_cache
