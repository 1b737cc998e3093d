"""Presets: a paper's model as a named set of config values, never a class of its own."""
from __future__ import annotations

import difflib
from typing import Any

from xae.config import Config, apply, resolve_key
from xae.errors import XaeError

# what every deterministic quantizer preset shares: no rate (the KL of a one-hot posterior to
# the uniform prior is the constant P·log K), the code prior for sampling
_CODES: dict[str, Any] = {"model.regularizer": "none", "model.prior": "codes"}

# what the first stages of latent diffusion share (kl-ae, vq-gan)
_LDM: dict[str, Any] = {
    "model.encoder": "diffusers", "model.decoder": "diffusers", "model.latent_dim": 196,
    "model.diffusers.block_out_channels": [32, 64, 64], "model.diffusers.latent_channels": 4,
    "model.likelihood": "reconstruction", "model.critic": "patchgan",
    "model.patchgan.start": 3001, "model.patchgan.lr": 4.5e-4, "train.lr": 4.5e-4,
    "train.beta1": 0.5, "train.beta2": 0.9, "data.name": "fashion-mnist"}

_SCVI: dict[str, Any] = {
    "data.name": "pbmc", "model.bottleneck": "gaussian", "model.regularizer": "kl",
    "model.input_transform": "log1p", "model.mlp.hidden": [128], "model.mlp.batch_norm": True,
    "model.mlp.dropout": 0.1, "model.latent_dim": 10, "train.lr": 1e-3,
    "train.batch_size": 128, "train.epochs": 400}

PRESETS: dict[str, dict[str, Any]] = {
    # Plain autoencoder: deterministic code, no regularizer.
    "ae": {"model.bottleneck": "deterministic", "model.regularizer": "none"},
    # VAE (Kingma & Welling 2014): diagonal Gaussian posterior, N(0, I) prior, analytic KL.
    "vae": {"model.bottleneck": "gaussian", "model.regularizer": "kl"},
    # β-VAE (Higgins et al. 2017): the VAE with the KL weighed by β > 1 (β = 4 in their Fig. 1,
    # their dSprites setting, there with 10 latents: model.latent_dim=10).
    "beta-vae": {"model.bottleneck": "gaussian", "model.regularizer": "kl", "beta.value": 4.0},
    # Linear VAE (Lucas et al. 2019): linear encoder and decoder, Gaussian likelihood with a
    # learned scalar σ; its optimum is probabilistic PCA (Tipping & Bishop 1999).
    "linear-vae": {
        "model.bottleneck": "gaussian", "model.regularizer": "kl", "model.mlp.hidden": [],
        "model.likelihood": "gaussian", "model.gaussian.scale": "scalar", "model.latent_dim": 2,
        "data.name": "linear-gaussian", "train.lr": 1e-2, "train.epochs": 50,
    },
    # IWAE (Burda et al. 2016): the importance-weighted bound with K = 50 samples, on their
    # one-stochastic-layer MLP (two tanh layers of 200 units, 50 latents).
    "iwae": {
        "model.bottleneck": "gaussian", "model.regularizer": "kl", "model.objective": "iwae",
        "model.iwae.samples": 50, "model.mlp.hidden": [200, 200],
        "model.mlp.activation": "tanh", "model.latent_dim": 50,
    },
    # VAE with a learned mixture-of-Gaussians prior (the MoG baseline of Tomczak & Welling
    # 2018): KL by Monte Carlo, samples drawn from the same learned mixture.
    "mog-vae": {"model.bottleneck": "gaussian", "model.regularizer": "kl", "model.prior": "mog",
                "model.mog.components": 10},
    # VampPrior VAE (Tomczak & Welling 2018): the prior is the mixture of the encoder's
    # posteriors at 500 learned pseudo-inputs (their K = 500); KL by Monte Carlo.
    "vamp-vae": {"model.bottleneck": "gaussian", "model.regularizer": "kl",
                 "model.prior": "vamp", "model.vamp.components": 500},
    # VAE with a normalizing-flow prior: N(0, I) pushed through 4 RealNVP couplings (Dinh et
    # al. 2017) learned with the model; KL by Monte Carlo, samples through the same flow.
    "flow-prior-vae": {"model.bottleneck": "gaussian", "model.regularizer": "kl",
                       "model.prior": "flow", "model.flow.layers": 4, "model.flow.hidden": 128},
    # WAE-MMD (Tolstikhin et al. 2018, MNIST setting): a deterministic 8-d code, squared-error
    # cost (a Gaussian likelihood with σ² = 1/2), λ = 10 on the IMQ-kernel MMD to N(0, I).
    "wae-mmd": {"model.bottleneck": "deterministic", "model.regularizer": "mmd",
                "model.mmd.kernel": "imq", "model.latent_dim": 8, "beta.value": 10.0,
                "model.likelihood": "gaussian", "model.gaussian.sigma": 0.5 ** 0.5},
    # InfoVAE (Zhao et al. 2019, eq. 6): (1 − α)·KL + (α + λ − 1)·MMD. α = 0 keeps the whole
    # KL and λ = 100 pulls the aggregate posterior onto the prior (on the bundled digits at
    # batch 100, λ = 1000 collapsed the posterior: λ times the MMD estimate's noise outweighs
    # what the code is worth).
    "info-vae": {"model.bottleneck": "gaussian", "model.regularizer": "mmd",
                 "model.mmd.kernel": "imq", "model.mmd.info_alpha": 0.0,
                 "model.mmd.info_lambda": 100.0},
    # β-TCVAE (Chen et al. 2018): the KL split into index-code MI, total correlation and
    # dimension-wise KL, with the TC weighed by 6 (estimated over the batch with importance
    # weights that sum to one; see regularizers/tc.py).
    "beta-tcvae": {"model.bottleneck": "gaussian", "model.regularizer": "tc",
                   "model.tc.weight": 6.0, "model.latent_dim": 10},
    # FactorVAE (Kim & Mnih 2018): the VAE plus γ times a discriminator's density-ratio
    # estimate of the total correlation, the discriminator (six layers of 1000 units, leaky
    # ReLU) trained alongside by its own Adam (lr 1e-4, β = (0.5, 0.9)); γ = 6.4, their 3D
    # Shapes value, 10 latents (on dSprites they used γ = 35: model.factor.gamma=35).
    "factor-vae": {"model.bottleneck": "gaussian", "model.regularizer": "factor",
                   "model.factor.gamma": 6.4, "model.latent_dim": 10},
    # DIP-VAE-I (Kumar et al. 2018): the VAE plus λ_od·Σ_{i≠j} C_ij² + λ_d·Σ_i (C_ii − 1)² on
    # C = Cov[μ(x)] over the batch; λ_od = 10, λ_d = 10·λ_od (their ratio for type I), 10 latents.
    "dip-vae-i": {"model.bottleneck": "gaussian", "model.regularizer": "dip",
                  "model.dip.kind": "i", "model.dip.lambda_od": 10.0,
                  "model.dip.lambda_d": 100.0, "model.latent_dim": 10},
    # DIP-VAE-II (ibid.): the same penalty on the covariance of q(z), Cov[μ(x)] + E[diag σ²(x)];
    # λ_od = λ_d = 10 (their ratio 1 for type II), 10 latents.
    "dip-vae-ii": {"model.bottleneck": "gaussian", "model.regularizer": "dip",
                   "model.dip.kind": "ii", "model.dip.lambda_od": 10.0,
                   "model.dip.lambda_d": 10.0, "model.latent_dim": 10},
    # Annealed VAE (Burgess et al. 2018, their dSprites setting): loss γ·|KL − C| with the
    # capacity C raised linearly from 0 to C_max = 25 nats over 100,000 steps, γ = 1000.
    "annealed-vae": {"model.bottleneck": "gaussian", "model.regularizer": "capacity",
                     "model.capacity.gamma": 1000.0, "model.capacity.c_max": 25.0,
                     "model.capacity.ramp_steps": 100_000, "model.latent_dim": 10},
    # Sentence VAE (Bowman et al. 2016) on the Penn Treebank: an LSTM encoder and an
    # autoregressive LSTM decoder that sees z at every step, with their two remedies for
    # posterior collapse, the KL weight annealed from 0 by a sigmoid and word dropout
    # (here half of the decoder's input words become <unk>); 16 latents, widths of 256.
    "sentence-vae": {"data.name": "ptb", "model.encoder": "rnn", "model.decoder": "rnn",
                     "model.likelihood": "categorical", "model.bottleneck": "gaussian",
                     "model.regularizer": "kl", "model.rnn.cell": "lstm",
                     "model.rnn.word_dropout": 0.5, "model.latent_dim": 16,
                     "beta.kind": "sigmoid", "beta.start": 0.0, "beta.value": 1.0,
                     "beta.warmup": 2000, "train.batch_size": 32},
    # The KL = 0 limit of the sentence VAE: its decoder with no code (z = 0), an LSTM
    # language model of the same size; the baseline a sentence VAE's NLL is compared with.
    "lstm-lm": {"data.name": "ptb", "model.encoder": "none", "model.decoder": "rnn",
                "model.likelihood": "categorical", "model.bottleneck": "none",
                "model.regularizer": "none", "model.rnn.cell": "lstm", "model.latent_dim": 16,
                "train.batch_size": 32},
    # scVI (Lopez et al. 2018) with scvi-tools' defaults: one hidden layer of 128 with batch
    # norm (dropout 0.1 in the encoder), 10 latents, the encoder on log1p(counts), a
    # zero-inflated negative binomial with one inverse dispersion per gene at the observed
    # library size, Adam at 1e-3, batches of 128, on scanpy's PBMC sample by default;
    # scvi-nb with a plain negative binomial, poisson-vae with a Poisson, on the same nets.
    "scvi": {**_SCVI, "model.likelihood": "zinb", "model.zinb.dispersion": "gene"},
    "scvi-nb": {**_SCVI, "model.likelihood": "nb", "model.nb.dispersion": "gene"},
    "poisson-vae": {**_SCVI, "model.likelihood": "poisson"},
    # Ladder VAE (Sønderby et al. 2016, MNIST model): five Gaussian groups 64-32-16-8-4 from
    # the bottom (listed top first), each posterior the precision-weighted merge of a
    # bottom-up estimate and the top-down prior, batch norm in the deterministic layers, and
    # the KL warmed up from 0 (their 200 epochs of warm-up, here 10,000 steps).
    "ladder-vae": {"model.bottleneck": "ladder", "model.regularizer": "kl",
                   "model.ladder.groups": [4, 8, 16, 32, 64], "model.latent_dim": 124,
                   "model.ladder.hidden": 256, "model.mlp.hidden": [512],
                   "beta.kind": "linear", "beta.start": 0.0, "beta.value": 1.0,
                   "beta.warmup": 10_000},
    # A top-down ResNet VAE (NVAE, Vahdat & Kautz 2020; VDVAE, Child 2021) sized for CPUs:
    # spatial groups of 4 channels, one at 4×4, two at 7×7, two at 14×14 on MNIST (the sizes
    # sum to latent_dim: 64 + 2·196 + 2·784 = 2024), 32-wide residual cells, the posterior
    # residual to the prior, soft-clamped log-variances, KL warm-up, gradient clipping and
    # VDVAE's skipping of updates with huge gradients. Other image sizes: the error on
    # model.latent_dim names the size that fits.
    "hvae": {"model.encoder": "hvae", "model.decoder": "hvae", "model.bottleneck": "hvae",
             "model.regularizer": "kl", "model.likelihood": "bernoulli",
             "model.hvae.channels": 32, "model.hvae.groups": [1, 2, 2],
             "model.hvae.z_channels": 4, "model.hvae.cells": 1, "model.latent_dim": 2024,
             "data.name": "mnist", "data.binarize": "dynamic",
             "beta.kind": "linear", "beta.start": 0.0, "beta.value": 1.0, "beta.warmup": 5000,
             "train.grad_clip": 200.0, "train.skip_grad_norm": 3000.0},
    # The KL-regularized autoencoder of latent diffusion (Rombach et al. 2022): diffusers-layout
    # nets around a 4×7×7 Gaussian map on 28×28 images, the L1 + ST-LPIPS (VGG) reconstruction
    # loss over a learned variance, KL weight 1e-6 (β), a PatchGAN critic with the adaptive
    # weight (disc_weight 0.5), Adam β = (0.5, 0.9) for both; their learning rate rule
    # (4.5e-6 × batch size) at batch 100. Their discriminator starts at step 50001 of runs of
    # hundreds of thousands of steps; here at 3001, inside the default 10 epochs.
    "kl-ae": {**_LDM, "model.bottleneck": "gaussian", "model.regularizer": "kl",
              "beta.value": 1e-6},
    # VQ-GAN (Esser et al. 2021): the same nets, losses and critic around a VQ bottleneck of
    # 512 codes of 4 values at each of the 7×7 positions (commitment 0.25), no KL.
    "vq-gan": {**_LDM, **_CODES, "model.bottleneck": "vq", "model.vq.code_dim": 4,
               "model.vq.codebook_size": 512},
    # A convolutional VAE with a spatial Gaussian code, as the first stage of latent
    # diffusion (Rombach et al. 2022, a KL-regularized C×h×w map): two stride-2 stages, so a
    # 4×7×7 code on MNIST (196 values); the posterior and the prior act per position and no
    # layer flattens a map.
    "conv-vae": {"model.encoder": "conv_map", "model.decoder": "conv_map",
                 "model.bottleneck": "gaussian", "model.regularizer": "kl",
                 "model.conv_map.channels": [32, 64], "model.latent_dim": 196},
    # ---- discrete codes: P positions of d values, each one of K codes; a categorical prior
    # over the index grid (uniform in training; `xae prior fit` learns an autoregressive one).
    # VQ-VAE (van den Oord et al. 2017): K = 512 learned codes, β_commit = 0.25, codebook
    # loss; 16 positions of 16-d codes. The codebook starts from k-means on the first batch
    # and codes unused for 100 steps are re-seeded from encoder outputs.
    "vq-vae": {**_CODES, "model.bottleneck": "vq", "model.vq.codebook_size": 512,
               "model.vq.code_dim": 16, "model.latent_dim": 256},
    # VQ-VAE with the codebook learned by exponential moving averages (ibid. App. A.1,
    # decay 0.99) instead of the codebook loss.
    "vq-vae-ema": {**_CODES, "model.bottleneck": "vq", "model.vq.codebook_size": 512,
                   "model.vq.code_dim": 16, "model.latent_dim": 256,
                   "model.vq.ema": True, "model.vq.ema_decay": 0.99},
    # Residual VQ (Zeghidour et al. 2021, SoundStream): 4 VQ stages of 256 codes on
    # successive residuals, with quantizer dropout so that the first n stages decode alone;
    # the stages read their quantizer's own section (model.vq).
    "rvq-vae": {**_CODES, "model.bottleneck": "rvq", "model.rvq.stages": 4,
                "model.rvq.stage_quantizer": "vq", "model.vq.codebook_size": 256,
                "model.vq.code_dim": 16, "model.latent_dim": 256},
    # FSQ (Mentzer et al. 2023): levels [8, 5, 5, 5] (1000 codes, their ~2^10 setting), 16
    # positions; no codebook, no auxiliary loss.
    "fsq-ae": {**_CODES, "model.bottleneck": "fsq", "model.fsq.levels": [8, 5, 5, 5],
               "model.latent_dim": 64},
    # LFQ (Yu et al. 2024, MAGVIT-v2): 10 sign bits per position (1024 codes), entropy
    # penalty 0.1 (per-sample entropy down, codebook entropy up), 16 positions.
    "lfq-ae": {**_CODES, "model.bottleneck": "lfq", "model.lfq.codebook_size": 1024,
               "model.lfq.entropy_weight": 0.1, "model.latent_dim": 160},
    # dVAE (Ramesh et al. 2021): Gumbel-softmax relaxed categorical codes (K = 512 here), the
    # temperature annealed 1 → 1/16 by a cosine schedule, KL to the uniform categorical prior.
    "dvae": {"model.bottleneck": "gumbel", "model.regularizer": "kl", "model.prior": "codes",
             "model.gumbel.codebook_size": 512, "model.gumbel.code_dim": 16,
             "model.latent_dim": 256},
}


def preset(name: str, **overrides: Any) -> Config:
    """A :class:`Config` for preset ``name`` with keyword overrides.

    Keywords may be short (``latent_dim=16``, ``epochs=5``) or dotted via a dict
    (``**{"model.latent_dim": 16}``); ``data="mnist"`` sets the data set's name.
    """
    if name not in PRESETS:
        near = difflib.get_close_matches(name, PRESETS, n=1)
        hint = f"; did you mean '{near[0]}'?" if near else ""
        raise XaeError(f"unknown preset '{name}'{hint} (choices: {', '.join(PRESETS)})")
    cfg = apply(Config(preset=name), PRESETS[name])
    updates = {}
    for key, value in overrides.items():
        if key == "data" and isinstance(value, str):
            key = "data.name"
        updates[resolve_key(key)] = value
    return apply(cfg, updates)
