"""What ``text_collapse.py`` trains and measures: the arms of the posterior-collapse experiment
on the Penn Treebank as config over the same pieces, the sizes that fit its budget, and one job
(train an arm, or reuse a finished run, then measure it) for a one-thread worker.

Every VAE arm has the same encoder (a one-layer LSTM), the same 16 Gaussian latents and the
same decoder of its kind (an LSTM with z at every step, or a small causal transformer with z
added at every position), trains the same steps at the same batch and learning rate; the arms
differ only in the remedy:

- ``plain``: the ELBO at β = 1 from the first step;
- ``anneal``: β raised from 0 to 1 by a sigmoid over ``WARMUP`` steps (Bowman et al. 2016);
- ``anneal+wd``: that and word dropout 0.5 (the ``sentence-vae`` preset);
- ``free-bits``: the KL of each latent dimension is not penalised below λ = 0.5 nats
  (Kingma et al. 2016; ``model.kl.free_bits``);
- ``cyclical``: β ramped 0 → 1 over the first half of each of 4 cycles (Fu et al. 2019);
- ``transformer`` and ``transformer+fb``: the causal transformer decoder, plain and with
  free bits;
- ``lm``: the LSTM decoder with no code (``lstm-lm``): the KL = 0 limit the LSTM arms' NLL
  is compared with;
- ``transformer-lm``: the transformer decoder with no code, the limit the transformer arms are
  compared with (a transformer arm measured against the LSTM LM would be credited with its
  decoder's advantage, not its code's).
"""
from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

import torch

import xae
from xae.data import Dataset, load as load_data
from xae.evaluate.report import full_report
from xae.fileio import write_json
from xae.presets import preset
from xae.tokens import PAD

HIDDEN = 192
EMBED = 192
MAX_LEN = 40
BATCH = 32
LR = 1e-3
STEPS = 1300  # about one epoch of PTB's 42,068 training sentences at batch 32
WARMUP = 800
K_IW = 20
TRAINER_TEST_N = 500
COMMON = {"data.name": "ptb", "data.max_len": MAX_LEN, "model.rnn.hidden": HIDDEN,
          "model.rnn.embed": EMBED, "model.latent_dim": 16, "train.batch_size": BATCH,
          "train.lr": LR, "train.figures": False, "model.rnn.word_dropout": 0.0}
TRANSFORMER = {"model.decoder": "transformer", "model.transformer.width": HIDDEN,
               "model.transformer.layers": 2, "model.transformer.heads": 4}
FLAT = {"beta.kind": "constant", "beta.value": 1.0}
ARMS: dict[str, tuple[str, dict[str, Any]]] = {
    "plain": ("sentence-vae", FLAT),
    "anneal": ("sentence-vae", {"beta.kind": "sigmoid", "beta.start": 0.0,
                                "beta.value": 1.0, "beta.warmup": WARMUP}),
    "anneal+wd": ("sentence-vae", {"beta.kind": "sigmoid", "beta.start": 0.0,
                                   "beta.value": 1.0, "beta.warmup": WARMUP,
                                   "model.rnn.word_dropout": 0.5}),
    "free-bits": ("sentence-vae", {**FLAT, "model.kl.free_bits": 0.5}),
    "cyclical": ("sentence-vae", {"beta.kind": "cyclical", "beta.start": 0.0,
                                  "beta.value": 1.0, "beta.period": STEPS // 4,
                                  "beta.ratio": 0.5}),
    "transformer": ("sentence-vae", {**FLAT, **TRANSFORMER}),
    "transformer+fb": ("sentence-vae", {**FLAT, **TRANSFORMER, "model.kl.free_bits": 0.5}),
    "lm": ("lstm-lm", {}),
    "transformer-lm": ("lstm-lm", TRANSFORMER),
}


def lm_of(arm: str) -> str:
    """The language model (same decoder, no code) an arm's perplexity is compared with."""
    return "transformer-lm" if arm.startswith("transformer") else "lm"


@dataclasses.dataclass(frozen=True)
class Job:
    arm: str
    steps: int
    run: str
    k: int = K_IW
    test_n: int | None = None  # None: the whole test split


def config(job: Job) -> Any:
    name, keys = ARMS[job.arm]
    if job.arm == "cyclical":
        keys = {**keys, "beta.period": max(1, job.steps // 4)}
    if "beta.warmup" in keys:
        keys = {**keys, "beta.warmup": max(1, round(job.steps * WARMUP / STEPS))}
    return preset(name, **{**COMMON, **keys, "train.steps": job.steps})


_DATA: dict[int, Dataset] = {}


def _data(cfg: Any) -> Dataset:
    if cfg.data.max_len not in _DATA:
        _DATA[cfg.data.max_len] = load_data(cfg.data)
    return _DATA[cfg.data.max_len]


def work(job: Job) -> dict[str, Any]:
    """Train (unless a finished run is there) and measure one arm; kept as ``result.json``."""
    torch.set_num_threads(1)
    run, out = Path(job.run), Path(job.run) / "result.json"
    if out.is_file():
        done = json.loads(out.read_text())
        if done.get("steps") == job.steps and done.get("k") == job.k:
            return {**done, "reused": True}
    cfg = config(job)
    data = _data(cfg)
    shutil.rmtree(run, ignore_errors=True)
    t0 = time.perf_counter()
    xae.train(cfg, run, data=dataclasses.replace(data, test_x=data.test_x[:TRAINER_TEST_N]))
    train_s = time.perf_counter() - t0
    model = xae.load(run)
    t1 = time.perf_counter()
    test = data.test_x if job.test_n is None else data.test_x[:job.test_n]
    lm = getattr(model.bottleneck, "empty", False)
    rep = full_report(model, dataclasses.replace(data, test_x=test), k=0 if lm else job.k,
                      images=False)
    m = rep.metrics
    tokens = float((test != PAD).sum()) / len(test)
    nll = m["neg_elbo"] if lm else m["nll_iw"]
    result = {"arm": job.arm, "steps": job.steps, "k": job.k, "test_n": len(test),
              "kl": m["rate"] if not lm else 0.0, "active_units": m["active_units"],
              "recon": m["distortion"], "neg_elbo": m["neg_elbo"], "nll": nll,
              "tokens_per_sentence": tokens, "perplexity": math.exp(nll / tokens),
              "nll_bound": "exact (no code)" if lm else f"IW bound, K = {job.k}",
              "train_s": train_s, "eval_s": time.perf_counter() - t1, "reused": False}
    write_json(out, result)
    return result
