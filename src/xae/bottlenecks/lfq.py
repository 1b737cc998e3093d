"""Lookup-free quantization (Yu et al. 2024, "Language Model Beats Diffusion: Tokenizer is Key
to Visual Generation", sec. 3.1, eq. 3–5): each of d dimensions is quantized to its sign, so the
implicit codebook is {−1, +1}^d with K = 2^d codes and nothing to look up or learn.

The code z (B, D) is read as P = D / d positions of d = log2 K values. Per position the code is
c = sign(z) with the tie z_i = 0 sent to +1 (so every input has exactly one code), passed
straight through (forward: c; backward: identity). The index is the binary number
k = Σ_i [c_i > 0]·2^i, dimension i being bit i.

Entropy penalty. The soft assignment of z to code c_k is q(k|z) ∝ exp(−‖z − c_k‖²/τ)
(τ = ``entropy_temperature``). The squared distance is a sum over dimensions, so q factorises
exactly: q(k|z) = ∏_i q_i(c_{k,i} | z_i) with q_i(c | z_i) ∝ exp(−(z_i − c)²/τ), and since
(z_i + 1)² − (z_i − 1)² = 4 z_i,

    q_i(+1 | z_i) = σ(4 z_i / τ).

Hence the per-sample entropy is exactly H(q(·|z)) = Σ_i h(σ(4 z_i/τ)), h the binary entropy,
with no N × 2^d matrix. The codebook entropy is H(p̄) of the batch marginal
p̄(k) = (1/N) Σ_n q(k|z_n), computed **exactly** (not the per-bit upper bound
Σ_i H(mean_n q_i) of some open implementations): split the bits into a low half (L = ⌊d/2⌋
bits) and a high half; q(k|z) is the product of the two halves' pattern probabilities, so
p̄ reshaped to (2^{d−L}, 2^L) is the matrix product Q_hiᵀ Q_lo / N of the two (N, 2^half)
pattern-probability tables. Memory N·(2^L + 2^{d−L}) + 2^d, time O(N·2^d); no N × 2^d
matrix and no codebook. K is therefore capped at 2^24 (p̄ has K entries). The batch is the
N = B·P vectors of the current (local) batch, all positions pooled.

Aux loss per vector n (the :class:`Quantized` ``aux``), in nats and squared units:

    aux_n = commitment · ‖z_n − sg(c_n)‖²  +  entropy_weight · (H(q(·|z_n)) − γ · H(p̄)),

the squared norm summed over the d dimensions (VQ-VAE's commitment term, van den Oord et al.
2017, eq. 3) and γ = ``diversity_weight``. Every vector carries the whole batch term H(p̄), so
``aux.mean()`` over the N vectors is exactly MAGVIT-v2's token-level loss
entropy_weight·(E_n H(q(·|z_n)) − γ H(p̄)) plus the mean commitment. The bottleneck sums aux
over a sample's P positions (like every per-sample loss here), so with P = 1 the objective's
batch mean is exactly entropy_weight·(mean per-sample entropy − γ·codebook entropy), and with
P positions it is P times the per-token loss: the same per-token balance (γ keeps its meaning,
and the weight relative to the commitment, also summed over positions, does not depend on P).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from xae import checks as C
from xae.bottlenecks.quantizer import Quantized, Quantizer
from xae.errors import XaeError

MAX_BITS = 24  # p̄ holds 2^d probabilities


def _bits(codebook_size: object) -> int:
    """d = log2 K for a power of two K in [2, 2^MAX_BITS], else an error naming the key."""
    ok = (isinstance(codebook_size, int) and not isinstance(codebook_size, bool)
          and codebook_size >= 2 and codebook_size & (codebook_size - 1) == 0)
    if not ok:
        raise XaeError(f"model.lfq.codebook_size must be a power of two ≥ 2 (LFQ quantizes "
                       f"log2 K dimensions to ±1), got {codebook_size!r}; e.g. 1024 for 10 "
                       f"dimensions per position")
    d = codebook_size.bit_length() - 1
    if d > MAX_BITS:
        raise XaeError(f"model.lfq.codebook_size {codebook_size} is too large: LFQ's codebook "
                       f"entropy is computed exactly over all 2^d codes, at most "
                       f"2^{MAX_BITS}; use a smaller codebook_size")
    return d


def _nonneg(value: object, key: str) -> float:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        out = float("nan")
    if isinstance(value, bool) or not math.isfinite(out) or out < 0:
        raise XaeError(f"{key} must be a finite number ≥ 0, got {value!r}")
    return out


def _pattern_probs(x: torch.Tensor) -> torch.Tensor:
    """Bit logits x (N, m) → (N, 2^m) probabilities of every m-bit pattern (pattern
    j = Σ_i bit_i·2^i), the product of the independent bits' probabilities."""
    m = x.shape[1]
    j = torch.arange(2 ** m, device=x.device)
    bits = ((j[:, None] >> torch.arange(m, device=x.device)) & 1).to(x.dtype)  # (2^m, m)
    return (F.logsigmoid(x) @ bits.t() + F.logsigmoid(-x) @ (1 - bits).t()).exp()


class LFQ(Quantizer):
    """P positions of d = log2 ``codebook_size`` dimensions, each quantized to its sign.

    Parameters
    ----------
    codebook_size : K = 2^d (config ``model.lfq.codebook_size``); ``latent_dim`` must be a
        multiple of d.
    entropy_weight : weight of the entropy penalty (``model.lfq.entropy_weight``).
    diversity_weight : γ, the weight of the codebook entropy inside it
        (``model.lfq.diversity_weight``).
    commitment : weight of ‖z − sg(c)‖² (``model.lfq.commitment``).
    entropy_temperature : τ of the soft assignment q(k|z) ∝ exp(−‖z − c_k‖²/τ)
        (``model.lfq.entropy_temperature``). The default 0.01 is the inverse temperature 100
        of open MAGVIT-v2 code.
    """

    KEYS = {"codebook_size": ("K = 2^d codes per position of d values",
                              C.power_of_two(1, MAX_BITS)),
            "entropy_weight": ("weight of (sample entropy − diversity × codebook entropy)",
                               C.NON_NEGATIVE_FLOAT),
            "diversity_weight": ("γ, the weight of the codebook entropy", C.NON_NEGATIVE_FLOAT),
            "commitment": ("the commitment weight β_commit", C.NON_NEGATIVE_FLOAT),
            "entropy_temperature": ("τ of the soft assignments", C.POSITIVE_FLOAT)}

    def __init__(self, in_features: int | None, latent_dim: int, *, codebook_size: int = 1024,
                 entropy_weight: float = 0.1, diversity_weight: float = 1.0,
                 commitment: float = 0.25, entropy_temperature: float = 0.01) -> None:
        d = _bits(codebook_size)
        super().__init__(in_features, latent_dim, d)
        self.codebook_size = int(codebook_size)
        self.entropy_weight = _nonneg(entropy_weight, "model.lfq.entropy_weight")
        self.diversity_weight = _nonneg(diversity_weight, "model.lfq.diversity_weight")
        self.commitment = _nonneg(commitment, "model.lfq.commitment")
        tau = _nonneg(entropy_temperature, "model.lfq.entropy_temperature")
        if tau == 0:
            raise XaeError("model.lfq.entropy_temperature must be > 0 (the soft assignment's "
                           "temperature)")
        self.entropy_temperature = tau
        self.register_buffer("basis", 2 ** torch.arange(d), persistent=False)
        self.register_buffer("values", torch.tensor([-1.0, 1.0]), persistent=False)

    # -- codes and indices ---------------------------------------------------------------

    def codes_to_indices(self, codes: torch.Tensor) -> torch.Tensor:
        """(..., d) codes in {−1, +1} → (...) indices Σ_i [c_i > 0]·2^i."""
        return ((codes > 0).long() * self.basis).sum(-1)

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """(...) indices in [0, 2^d) → (..., d) codes in {−1, +1}, bit i → dimension i."""
        return self.values[(indices.long().unsqueeze(-1) >> torch.arange(
            self.code_dim, device=indices.device)) & 1]

    # -- the entropy penalty -------------------------------------------------------------

    def bit_logits(self, z: torch.Tensor) -> torch.Tensor:
        """log q_i(+1|z_i) − log q_i(−1|z_i) = 4 z_i / τ, (N, d)."""
        return 4.0 * z / self.entropy_temperature

    def per_sample_entropy(self, z: torch.Tensor) -> torch.Tensor:
        """H(q(·|z_n)) = Σ_i h(σ(x_i)) with h(σ(x)) = softplus(x) − x·σ(x), (N,) nats."""
        x = self.bit_logits(z)
        return (F.softplus(x) - x * torch.sigmoid(x)).sum(-1)

    def code_probs(self, z: torch.Tensor) -> torch.Tensor:
        """The batch marginal p̄(k) = (1/N) Σ_n q(k|z_n), (2^d,) in index order (exact)."""
        x = self.bit_logits(z)
        low = self.code_dim // 2
        lo, hi = _pattern_probs(x[:, :low]), _pattern_probs(x[:, low:])
        return (hi.t() @ lo).reshape(-1) / z.shape[0]  # [k_hi, k_lo] → k_hi·2^low + k_lo

    def codebook_entropy(self, z: torch.Tensor) -> torch.Tensor:
        """H(p̄), a scalar in nats (0 ≤ H ≤ d log 2)."""
        p = self.code_probs(z)
        return -(p * p.clamp_min(torch.finfo(p.dtype).tiny).log()).sum()

    def entropy_terms(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(per-sample entropy (N,), codebook entropy ()) of vectors z (N, d)."""
        return self.per_sample_entropy(z), self.codebook_entropy(z)

    # -- quantization --------------------------------------------------------------------

    def quantize(self, z: torch.Tensor, step: int | None = None) -> Quantized:
        if z.dim() != 2 or z.shape[1] != self.code_dim:
            raise XaeError(f"LFQ quantizes (N, {self.code_dim}) vectors, got shape "
                           f"{tuple(z.shape)}")
        hard = torch.where(z >= 0, 1.0, -1.0).to(z.dtype)  # tie z_i = 0 → +1
        codes = hard + (z - z.detach())  # forward exactly ±1, gradient straight through
        aux = self.commitment * (z - hard).pow(2).sum(-1)
        if self.entropy_weight:
            aux = aux + self.entropy_weight * self.per_sample_entropy(z)
            if self.diversity_weight:
                aux = aux - self.entropy_weight * self.diversity_weight * \
                    self.codebook_entropy(z)
        return Quantized(codes, self.codes_to_indices(hard), aux)

    def extra_repr(self) -> str:
        return (f"codebook_size={self.codebook_size}, bits={self.code_dim}, "
                f"positions={self.positions}, entropy_weight={self.entropy_weight}, "
                f"diversity_weight={self.diversity_weight}, commitment={self.commitment}")
