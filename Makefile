# The two commands: `make demo` and `make test`. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --quiet --constraint constraints.txt

.PHONY: demo test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Stamps: reinstall when the package metadata changes.
$(VENV)/.core: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) torch==2.13.0
	$(PIP) -e .
	touch $@

$(VENV)/.dev: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) torch==2.13.0
	$(PIP) -e ".[dev]"
	touch $@ $(VENV)/.core

$(VENV)/.bench: $(VENV)/.dev benchmarks/requirements.txt
	$(PIP) -r benchmarks/requirements.txt
	touch $@

demo: $(VENV)/.core
	rm -rf runs/demo
	$(BIN)/xae train --preset vae --data digits --epochs 200 --out runs/demo
	@echo "figures in runs/demo/figures/"

test: $(VENV)/.dev
	$(BIN)/python -m pytest -q

# Throughput against pythae (~3 min), then the 10-minute binarized-MNIST ELBO run.
bench: $(VENV)/.bench
	$(BIN)/python benchmarks/train_throughput.py
	$(BIN)/python benchmarks/mnist_elbo.py

clean:
	rm -rf $(VENV) runs .pytest_cache
