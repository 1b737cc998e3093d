"""Count likelihoods in scVI's parametrization (Lopez et al. 2018): Poisson, negative binomial
and zero-inflated negative binomial over a cell's gene counts x (B, G).

The decoder emits ρ as logits over the genes (ρ = softmax, the cell's expression
proportions); the mean count is μ = ℓ·ρ with ℓ the cell's observed library size, Σ_g x_g
(which the likelihood reads from x itself), or a latent library whose drawn log ℓ the model
appends to θ as one last column (:mod:`xae.library`). The negative binomial's inverse dispersion r
(scVI's θ) is one learned value per gene (``dispersion=gene``) or decoded for each cell and
gene (``dispersion=cell``, one more block of decoder outputs); the zero-inflated model also
decodes dropout logits ψ, an extra probability σ(ψ) of a zero. Decoder outputs per gene, in
order: ρ logits, then ψ (zinb), then log r (``cell``).

    NB(x; μ, r) = Γ(x + r) / (Γ(r) x!) · (r / (r + μ))^r · (μ / (r + μ))^x
    ZINB(0) = σ(ψ) + σ(−ψ)·NB(0),   ZINB(x > 0) = σ(−ψ)·NB(x)

:meth:`mean` is the expected count at a library size of ``REFERENCE_LIBRARY`` = 10⁴ counts,
ρ·10⁴, scVI's normalized expression (the zero inflation left out, as there); :meth:`sample`
draws counts at that library size.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from xae import checks as C
from xae.errors import XaeError
from xae.likelihoods.base import Likelihood

REFERENCE_LIBRARY = 1e4
DISPERSIONS = ("gene", "gene-batch", "cell")


def log_mean(x: torch.Tensor, rho_logits: torch.Tensor,
             log_library: torch.Tensor | None = None) -> torch.Tensor:
    """log μ = log ℓ + log softmax(ρ logits): ℓ = Σ_g x_g (the observed library size), or the
    drawn latent library, ``log_library`` (…, 1), when the model has one."""
    if log_library is not None:
        return log_library + rho_logits.log_softmax(-1)
    library = x.sum(-1, keepdim=True)
    if bool((library <= 0).any()):
        raise XaeError("a cell has no counts (library size 0); remove empty cells first")
    return torch.log(library) + rho_logits.log_softmax(-1)


class CountLikelihood(Likelihood):
    """What the three count models share. θ is the decoder's blocks per gene, then the
    per-cell extras the model appends (:meth:`Autoencoder.likelihood_extras`): the one-hot
    covariate level when the likelihood reads it (``covariate_columns``, the per-batch
    dispersion) and, with a latent library (:mod:`xae.library`), one column of drawn log ℓ.

    ``levels``: the model's covariate levels (0: none); ``latent_library``: whether log ℓ
    comes with θ (else ℓ is the observed Σ_g x_g)."""

    mean_in_data_space = False  # ρ·10⁴, not the cell's counts
    reads_covariate = True  # the build passes the covariate's levels
    covariate_columns = 0

    def __init__(self, data_shape: tuple[int, ...], levels: int = 0,
                 latent_library: bool = False) -> None:
        super().__init__(data_shape)
        self.genes = _check_vectors(data_shape, type(self).__name__)
        self.levels, self.latent_library = int(levels), bool(latent_library)

    def split(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None,
                                                  torch.Tensor | None]:
        """(the decoder's blocks, the one-hot levels or None, the drawn log ℓ (…, 1) or None
        for the observed library); an XaeError unless θ has exactly the extras it needs."""
        width = self.genes * self.params_per_channel
        want = width + self.covariate_columns + int(self.latent_library)
        if theta.shape[-1] != want:
            raise XaeError(f"the count likelihood expects {want} parameters per cell ({width} "
                           f"decoded, {self.covariate_columns} one-hot levels, "
                           f"{int(self.latent_library)} drawn log library), got "
                           f"{theta.shape[-1]}; score through the model (model(x, c=…)), "
                           f"which appends them")
        levels = theta[..., width:width + self.covariate_columns] \
            if self.covariate_columns else None
        return theta[..., :width], levels, theta[..., want - 1:] if self.latent_library \
            else None

    def rho(self, theta: torch.Tensor) -> torch.Tensor:
        """ρ logits (…, G): the first block, with or without the extras after it."""
        return theta[..., :self.genes]


def nb_log_prob_and_zero(x: torch.Tensor, log_mu: torch.Tensor, log_r: torch.Tensor
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """log NB(x; μ, r) and log NB(0; μ, r) elementwise, from log μ and log r (stable for large
    and small r); ``log_r`` may be one row per gene (G,), broadcast over the cells, so that
    the terms of r alone are computed once per gene."""
    r = log_r.exp()
    log_r_mu = torch.logaddexp(log_r, log_mu)
    at_zero = r * (log_r - log_r_mu)
    return (torch.lgamma(x + r) - torch.lgamma(r) - torch.lgamma(x + 1) + at_zero
            + x * (log_mu - log_r_mu)), at_zero


def nb_log_prob(x: torch.Tensor, log_mu: torch.Tensor, log_r: torch.Tensor) -> torch.Tensor:
    """log NB(x; μ, r) elementwise (see :func:`nb_log_prob_and_zero`)."""
    return nb_log_prob_and_zero(x, log_mu, log_r)[0]


class Poisson(CountLikelihood):
    """log Poisson(x; μ) = x log μ − μ − log x!, μ = ℓ·ρ."""

    def log_prob_elementwise(self, x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        blocks, _, log_library = self.split(theta)
        log_mu = log_mean(x, blocks, log_library)
        return x * log_mu - log_mu.exp() - torch.lgamma(x + 1)

    def mean(self, theta: torch.Tensor) -> torch.Tensor:
        return REFERENCE_LIBRARY * self.rho(theta).softmax(-1)

    def sample(self, theta: torch.Tensor) -> torch.Tensor:
        return torch.poisson(self.mean(theta))


class NegativeBinomial(CountLikelihood):
    """The negative binomial with mean μ = ℓ·ρ and inverse dispersion r, per gene or cell."""

    KEYS = {"dispersion": ("the inverse dispersion r: one learned value per gene (gene), per "
                           "gene and batch (gene-batch, with model.covariate), or decoded per "
                           "cell and gene (cell)", C.one_of(DISPERSIONS))}
    inflated = False

    def __init__(self, data_shape: tuple[int, ...], levels: int = 0,
                 latent_library: bool = False, *, dispersion: str = "gene") -> None:
        super().__init__(data_shape, levels, latent_library)
        if dispersion not in DISPERSIONS:
            raise XaeError(f"the dispersion '{dispersion}' is unknown; use "
                           f"{', '.join(DISPERSIONS)}")
        if dispersion == "gene-batch" and not levels:
            raise XaeError("the dispersion gene-batch learns one per gene and batch, so it "
                           "needs a covariate: set model.covariate=batch (and data.batch_key)")
        self.dispersion = dispersion
        self.params_per_channel = 1 + int(self.inflated) + int(dispersion == "cell")
        self.covariate_columns = self.levels if dispersion == "gene-batch" else 0
        if dispersion != "cell":
            rows = (self.levels,) if dispersion == "gene-batch" else ()
            self.log_r = nn.Parameter(torch.zeros(*rows, self.genes))

    def parts(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None,
                                                  torch.Tensor]:
        """ρ logits, dropout logits ψ (None without zero inflation), each (…, G), and log r:
        (G,) for one value per gene (it broadcasts), else (…, G)."""
        blocks, levels, _ = self.split(theta)
        chunks = blocks.chunk(self.params_per_channel, dim=-1)
        rho, psi = chunks[0], chunks[1] if self.inflated else None
        if self.dispersion == "cell":
            log_r = chunks[-1]
        elif self.dispersion == "gene":
            log_r = self.log_r  # (G,): broadcast over the cells
        else:  # each cell's batch row of the table
            log_r = levels @ self.log_r
        return rho, psi, log_r

    def log_prob_elementwise(self, x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        rho, _, log_r = self.parts(theta)
        return nb_log_prob(x, log_mean(x, rho, self.split(theta)[2]), log_r)

    def mean(self, theta: torch.Tensor) -> torch.Tensor:
        return REFERENCE_LIBRARY * self.rho(theta).softmax(-1)

    def sample(self, theta: torch.Tensor) -> torch.Tensor:
        _, psi, log_r = self.parts(theta)
        mu, r = self.mean(theta), log_r.exp()
        counts = torch.poisson(torch.distributions.Gamma(r, r / mu).sample())
        if psi is not None:
            counts = torch.where(torch.rand_like(counts) < torch.sigmoid(psi),
                                 torch.zeros_like(counts), counts)
        return counts


class ZeroInflatedNB(NegativeBinomial):
    """The negative binomial with an extra zero of probability σ(ψ), ψ decoded per cell and
    gene: log p(0) = softplus(log NB(0) − ψ) − softplus(−ψ), log p(x > 0) = −ψ − softplus(−ψ)
    + log NB(x) (scVI's stable form)."""

    inflated = True

    def log_prob_elementwise(self, x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        rho, psi, log_r = self.parts(theta)
        log_mu = log_mean(x, rho, self.split(theta)[2])
        nb, zero_nb = nb_log_prob_and_zero(x, log_mu, log_r)
        at_zero = F.softplus(zero_nb - psi) - F.softplus(-psi)
        above = -psi - F.softplus(-psi) + nb
        return torch.where(x == 0, at_zero, above)


def _check_vectors(data_shape: tuple[int, ...], name: str) -> int:
    if len(data_shape) != 1:
        raise XaeError(f"the {name} likelihood models count vectors (cells × genes), but the "
                       f"data's samples have shape {tuple(data_shape)}")
    return data_shape[0]
