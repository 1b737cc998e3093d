# The two commands: `make demo` and `make test`. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --quiet --constraint constraints.txt

.PHONY: demo test bench bench-long clean

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

# Throughput against pythae (~3 min), the 10-minute binarized-MNIST ELBO run, the pPCA check
# (~1 min) and the IW-likelihood speed against pythae's get_nll (~4 min).
bench: $(VENV)/.bench
	$(BIN)/python benchmarks/train_throughput.py
	$(BIN)/python benchmarks/mnist_elbo.py
	$(BIN)/python benchmarks/ppca_check.py
	$(BIN)/python benchmarks/eval_speed.py

# K = 5000 test NLLs of the one-layer MLP models after long runs, and the hole metrics under
# each prior (hours on CPU; pass --device cuda to mnist_nll.py on a GPU).
bench-long: $(VENV)/.bench
	$(BIN)/python benchmarks/mnist_nll.py --epochs 750
	$(BIN)/python benchmarks/mnist_nll.py --preset iwae --epochs 60
	$(BIN)/python benchmarks/mnist_nll.py --preset vamp-vae --epochs 220
	$(BIN)/python benchmarks/holes.py --epochs 20
	$(BIN)/python benchmarks/codebooks.py --epochs 5 --threads 2
	$(BIN)/python benchmarks/codebooks.py --only vq,fsq --prior-epochs 3 --threads 2

clean:
	rm -rf $(VENV) runs .pytest_cache
