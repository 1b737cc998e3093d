# The two commands: `make demo` and `make test`. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --quiet --constraint constraints.txt

.PHONY: demo test web bench bench-long bench-ldm bench-apps bench-factors bench-text bench-scvi \
	clean

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

# The latent explorer's front-end runtime: onnxruntime-web at the version web/package-lock.json
# pins, from the npm registry (its install scripts are not needed and do not run).
web/node_modules/.stamp: web/package.json web/package-lock.json
	npm ci --prefix web --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $@

# Debian's Chromium for the explorer's browser tests. apt-get needs root or sudo; where neither
# is there, or the install fails, this says so and the browser tests skip, saying why.
$(VENV)/.browser: | $(BIN)/python
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
	  else echo "make: Debian's chromium is not installed and needs root or sudo to install;" \
	    "the browser tests will be skipped"; exit 0; fi; \
	  echo "installing Debian's chromium and chromium-driver (apt-get)"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    --no-install-recommends chromium chromium-driver >/dev/null \
	  || echo "make: apt-get could not install chromium; the browser tests will be skipped"; }
	@if command -v chromium >/dev/null 2>&1; then touch $@; fi

# Debian's Fashion-MNIST (the IDX files under /usr/share/datasets/fashion-mnist) for
# `--data fashion-mnist` and its tests, installed as Chromium is: where apt-get cannot run, this
# says so and those tests skip, saying why.
FASHION_MNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
$(VENV)/.fashion-mnist: | $(BIN)/python
	@test -f $(FASHION_MNIST) || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
	  else echo "make: Debian's dataset-fashion-mnist is not installed and needs root or sudo" \
	    "to install; the Fashion-MNIST tests will be skipped"; exit 0; fi; \
	  echo "installing Debian's dataset-fashion-mnist (apt-get)"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    --no-install-recommends dataset-fashion-mnist >/dev/null \
	  || echo "make: apt-get could not install dataset-fashion-mnist; the Fashion-MNIST tests" \
	    "will be skipped"; }
	@if test -f $(FASHION_MNIST); then touch $@; fi

# `make web`: what `xae explore` needs beyond the core install.
web: $(VENV)/.core web/node_modules/.stamp $(VENV)/.browser
	$(PIP) -e ".[web]"

demo: $(VENV)/.core
	rm -rf runs/demo
	$(BIN)/xae train --preset vae --data digits --epochs 200 --out runs/demo \
	  --set model.latent_dim=8 beta.kind=linear beta.warmup=1000
	@echo "figures in runs/demo/figures/; next:"
	@echo "  $(BIN)/xae eval runs/demo        # likelihood, rate/distortion, holes, image metrics"
	@echo "  $(BIN)/xae info runs/demo        # config, size, final metrics"
	@echo "  make web && $(BIN)/xae explore runs/demo   # the latent explorer in your browser"

test: $(VENV)/.dev web/node_modules/.stamp $(VENV)/.browser $(VENV)/.fashion-mnist
	$(BIN)/python -m pytest -q

# Throughput against pythae (~3 min), the 10-minute binarized-MNIST ELBO run, the pPCA check
# (~1 min), the IW-likelihood speed against pythae's get_nll (~4 min) and the explorer's
# page-ready time and cursor-to-image latency in headless Chromium (~2 min).
bench: $(VENV)/.bench web/node_modules/.stamp $(VENV)/.browser
	$(BIN)/python benchmarks/train_throughput.py
	$(BIN)/python benchmarks/mnist_elbo.py
	$(BIN)/python benchmarks/ppca_check.py
	$(BIN)/python benchmarks/eval_speed.py
	$(BIN)/python benchmarks/explorer.py

# K = 5000 test NLLs of the one-layer MLP models after long runs, and the hole metrics under
# each prior (hours on CPU; pass --device cuda to mnist_nll.py on a GPU).
bench-long: $(VENV)/.bench
	$(BIN)/python benchmarks/mnist_nll.py --epochs 750
	$(BIN)/python benchmarks/mnist_nll.py --preset iwae --epochs 60
	$(BIN)/python benchmarks/mnist_nll.py --preset vamp-vae --epochs 220
	$(BIN)/python benchmarks/holes.py --epochs 20
	$(BIN)/python benchmarks/codebooks.py --epochs 5 --threads 2
	$(BIN)/python benchmarks/codebooks.py --only vq,fsq --prior-epochs 3 --threads 2

# First stages of latent diffusion against VAEs, and the KL weight swept: Fashion-MNIST, each
# script sized to fit 90 minutes on two CPU cores.
bench-ldm: $(VENV)/.bench $(VENV)/.fashion-mnist
	$(BIN)/python benchmarks/latent_diffusion.py --threads 2
	$(BIN)/python benchmarks/kl_weight.py --threads 2

# Applications on MNIST and Fashion-MNIST: anomaly scores, compression, attribute edits; each
# script sized to fit 90 minutes on two CPU cores.
bench-apps: $(VENV)/.bench $(VENV)/.fashion-mnist
	$(BIN)/python benchmarks/anomaly.py --part both --threads 2
	$(BIN)/python benchmarks/compression.py --threads 2
	$(BIN)/python benchmarks/attributes.py --threads 2

# The β-VAE family on dSprites-like factor data (six models × 3 seeds × 2 settings, the five
# metrics), sized to fit 90 minutes as two one-thread workers side by side.
bench-factors: $(VENV)/.bench
	$(BIN)/python benchmarks/disentanglement.py --workers 2

# Posterior collapse under autoregressive decoders on the Penn Treebank, and its remedies.
bench-text: $(VENV)/.bench
	$(BIN)/python benchmarks/text_collapse.py --workers 2

# xae's scvi preset side by side with scvi-tools on PBMC and 60,500 synthetic cells.
bench-scvi: $(VENV)/.bench
	$(BIN)/python benchmarks/scvi_compare.py

clean:
	rm -rf $(VENV) runs .pytest_cache web/node_modules
