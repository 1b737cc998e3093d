"""Vector quantization (van den Oord et al. 2017, "Neural Discrete Representation Learning",
eq. 3; EMA codebook in appendix A.1, with the Laplace smoothing of Razavi et al. 2019).

Each d-vector z is replaced by its nearest code c = e_k, k = argmin_j ‖z − e_j‖², and the
decoder gets z + sg(c − z), whose gradient with respect to z is the identity (the
straight-through estimator). The per-vector auxiliary loss is

    aux = commitment · ‖z − sg(c)‖² + ‖sg(z) − c‖²,

with ‖·‖² the squared norm summed over the d dimensions (eq. 3 of the paper). With
``ema=True`` the second (codebook) term is dropped and the codebook is instead, in training
mode, the ratio of exponential moving averages of each code's assigned-vector sum m_k and
count N_k, N_k ← γ N_k + (1 − γ) n_k, m_k ← γ m_k + (1 − γ) Σ z, e_k = m_k / Ñ_k with the
smoothed count Ñ_k = (N_k + ε) / (Σ N + K ε) · Σ N.

The codebook's statistics change only in training steps (train mode with gradients enabled).
Two common fixes for codebook collapse are built in: k-means initialisation (k-means++
seeds, then Lloyd steps) of the codebook on the first training batch, and re-seeding of
codes left unused for ``restart_every`` training calls from random encoder outputs of the
current batch. With ``cosine=True`` the
vectors and codes are l2-normalised before the distances are taken and the codes returned
are unit vectors. Nearest codes are searched in chunks of rows, so that no more than about
``chunk_floats`` distances are held at once; no N × K one-hot is ever built.

Under ``torch.distributed`` the code counts and EMA sums are summed over processes, and the
vectors that seed the codebook (k-means, restarts) come from rank 0, so that every process
keeps the same codebook.
"""
from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from xae import checks as C
from xae.bottlenecks.quantizer import Quantized, Quantizer
from xae.errors import XaeError, positive_int

CHUNK_FLOATS = 1 << 22  # at most this many distances (N-chunk × K) at once
KMEANS_ITERS = 10
LAPLACE_EPS = 1e-5
KEY = "model.vq."


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def _all_reduce(t: torch.Tensor) -> torch.Tensor:
    if _distributed():
        dist.all_reduce(t)
    return t


def _from_rank0(t: torch.Tensor) -> torch.Tensor:
    if _distributed():
        t = t.contiguous()
        dist.broadcast(t, 0)
    return t


def nearest(x: torch.Tensor, codebook: torch.Tensor,
            chunk_floats: int = CHUNK_FLOATS) -> torch.Tensor:
    """Index (N,) of the codebook row (K, d) nearest to each row of x (N, d) in squared
    Euclidean distance, taken over chunks of max(1, chunk_floats // K) rows."""
    x, codebook = x.detach(), codebook.detach()
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    codebook = codebook.to(x.dtype)
    rows = max(1, chunk_floats // codebook.shape[0])
    c_sq = codebook.pow(2).sum(1)
    out = torch.empty(x.shape[0], dtype=torch.long, device=x.device)
    for i in range(0, x.shape[0], rows):
        # ‖x‖² is the same for every code and left out: ‖c‖² − 2 x·c
        out[i:i + rows] = torch.addmm(c_sq, x[i:i + rows], codebook.t(), alpha=-2).argmin(1)
    return out


def _seeds(x: torch.Tensor, k: int) -> torch.Tensor:
    """k starting centres from the rows of x (N, d): k-means++ (D² sampling, Arthur &
    Vassilvitskii 2007) when N ≥ k, else rows drawn with replacement plus noise of 1% of the
    data's spread."""
    n = x.shape[0]
    if n < k:
        scale = 0.01 * x.std(correction=0).clamp(min=1e-3)
        centres = x[torch.randint(n, (k,), device=x.device)]
        return centres + scale * torch.randn_like(centres)
    centres = x.new_empty(k, x.shape[1])
    centres[0] = x[torch.randint(n, (), device=x.device)]
    d2 = (x - centres[0]).pow(2).sum(1)
    for j in range(1, k):
        weights = torch.where(d2.sum() > 0, d2, torch.ones_like(d2))  # all points taken
        centres[j] = x[torch.multinomial(weights, 1)[0]]
        d2 = torch.minimum(d2, (x - centres[j]).pow(2).sum(1))
    return centres


def kmeans(x: torch.Tensor, k: int, iters: int = KMEANS_ITERS, cosine: bool = False,
           chunk_floats: int = CHUNK_FLOATS) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means on x (N, d) from k-means++ seeds: k centres (k, d) and their last
    cluster sizes (k,). An empty cluster keeps its centre; with ``cosine`` the centres are
    renormalised after each step (spherical k-means)."""
    centres = _seeds(x, k)
    if cosine:
        centres = F.normalize(centres, dim=-1)
    counts = x.new_zeros(k)
    for _ in range(iters):
        idx = nearest(x, centres, chunk_floats)
        counts = torch.bincount(idx, minlength=k).to(x.dtype)
        sums = torch.zeros_like(centres).index_add_(0, idx, x)
        filled = (counts > 0).unsqueeze(1)
        centres = torch.where(filled, sums / counts.clamp(min=1).unsqueeze(1), centres)
        if cosine:
            centres = F.normalize(centres, dim=-1)
    return centres, counts


def _flag(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise XaeError(f"{KEY}{name} must be true or false, got {value!r}")
    return value


def _real(value: object, name: str, low: float, high: float = math.inf,
          open_low: bool = False, open_high: bool = False, what: str = "") -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if open_low else value >= low) and \
             (value < high if open_high else value <= high)
    if not ok:
        raise XaeError(f"{KEY}{name} must be {what}, got {value!r}")
    return float(value)  # type: ignore[arg-type]


class VQ(Quantizer):
    """A learned codebook of K d-vectors; each position takes its nearest code.

    Parameters
    ----------
    codebook_size : K (``model.vq.codebook_size``; the other settings likewise).
    code_dim : d; ``latent_dim`` must be a multiple of d.
    commitment : β, the weight of ‖z − sg(c)‖² (≥ 0).
    ema : update the codebook by moving averages (a buffer) instead of the codebook loss.
    ema_decay : γ in (0, 1).
    kmeans_init : seed the codebook by k-means on the first training batch.
    restart_every : re-seed codes unused for this many training calls (0: never).
    cosine : l2-normalise vectors and codes.

    State (all tensors in the ``state_dict``): ``codebook`` (K, d) (a parameter, or a buffer
    with ``ema``), ``ema_size`` (K,) and ``ema_sum`` (K, d) with ``ema``, ``initialized``
    (k-means done), ``unused`` (K,) training calls since each code was last chosen, and
    ``restarts``, the number of codes re-seeded so far.
    """

    chunk_floats: int = CHUNK_FLOATS
    KEYS = {"codebook_size": ("K, codes per position", C.between(2, C.INT_MAX)),
            "code_dim": ("d, values per code", C.POSITIVE),
            "commitment": ("the commitment weight β_commit", C.NON_NEGATIVE_FLOAT),
            "ema": ("update the codebook by moving averages, not by its loss", None),
            "ema_decay": ("the moving averages' decay", C.FRACTION),
            "kmeans_init": ("seed the codebook by k-means on the first batch", None),
            "restart_every": ("re-seed codes unused this many steps (0 = never)",
                              C.NON_NEGATIVE),
            "cosine": ("l2-normalised codes and inputs", None)}

    def __init__(self, in_features: int | None, latent_dim: int, *, codebook_size: int = 1024,
                 code_dim: int = 16, commitment: float = 0.25, ema: bool = False,
                 ema_decay: float = 0.99, kmeans_init: bool = True, restart_every: int = 100,
                 cosine: bool = False) -> None:
        k = positive_int(codebook_size, f"{KEY}codebook_size")
        positive_int(code_dim, f"{KEY}code_dim")
        beta = _real(commitment, "commitment", 0.0, what="a number ≥ 0")
        decay = _real(ema_decay, "ema_decay", 0.0, 1.0, True, True,
                      what="a number in (0, 1), e.g. 0.99")
        if isinstance(restart_every, bool) or not isinstance(restart_every, int) \
                or restart_every < 0:
            raise XaeError(f"{KEY}restart_every must be an integer ≥ 0 (0 turns restarts off), "
                           f"got {restart_every!r}")
        ema, kmeans_init, cosine = (_flag(ema, "ema"), _flag(kmeans_init, "kmeans_init"),
                                    _flag(cosine, "cosine"))
        super().__init__(in_features, latent_dim, code_dim)
        self.codebook_size, self.commitment, self.ema_decay = k, beta, decay
        self.ema, self.cosine, self.restart_every = ema, cosine, restart_every
        codebook = torch.randn(k, self.code_dim)
        if cosine:
            codebook = F.normalize(codebook, dim=-1)
        if ema:
            self.register_buffer("codebook", codebook)
            self.register_buffer("ema_size", torch.ones(k))
            self.register_buffer("ema_sum", codebook.clone())
        else:
            self.codebook = nn.Parameter(codebook)
        self.register_buffer("initialized", torch.tensor(not kmeans_init))
        self.register_buffer("unused", torch.zeros(k, dtype=torch.long))
        self.register_buffer("restarts", torch.zeros((), dtype=torch.long))

    def _table(self) -> torch.Tensor:
        """The codebook as used for distances and codes (unit rows with ``cosine``)."""
        return F.normalize(self.codebook, dim=-1) if self.cosine else self.codebook

    def quantize(self, z: torch.Tensor, step: int | None = None,
                 mask: torch.Tensor | None = None) -> Quantized:
        """Quantize z (N, d). ``mask`` (N,) bool, optional: only the vectors where it is true
        feed the codebook's statistics in training (k-means, EMA, usage, restarts); codes and
        aux are returned for every vector."""
        x = F.normalize(z, dim=-1) if self.cosine else z
        # the codebook learns only in training steps: train mode with gradients on (so that
        # reconstruct/interpolate, which run under no_grad, never move it)
        learn = self.training and torch.is_grad_enabled()
        if learn and not bool(self.initialized):
            with torch.no_grad():
                self._kmeans_init(self._pool(x, mask))
        idx = nearest(x, self._table(), self.chunk_floats)
        # gather first, then normalise: the graph then never holds the codebook tensor itself,
        # which the EMA step and restarts below update in place
        c = self.codebook[idx]
        c = (F.normalize(c, dim=-1) if self.cosine else c).to(x.dtype)
        codes = x + (c - x).detach()
        aux = self.commitment * (x - c.detach()).pow(2).sum(-1)
        if not self.ema:
            aux = aux + (x.detach() - c).pow(2).sum(-1)
        if learn:
            with torch.no_grad():
                self._update(x.detach().to(self.codebook.dtype), idx, mask)
        return Quantized(codes, idx, aux)

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """Code vectors (..., d) of indices (...)."""
        return self._table()[indices]

    def _pool(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """The vectors that may seed codes: the masked ones, or all if none is masked in."""
        x = x.detach().to(self.codebook.dtype)
        if mask is not None and bool(mask.any()):
            return x[mask]
        return x

    def _kmeans_init(self, x: torch.Tensor) -> None:
        centres, counts = kmeans(x, self.codebook_size, cosine=self.cosine,
                                 chunk_floats=self.chunk_floats)
        centres, counts = _from_rank0(centres), _from_rank0(counts)
        self.codebook.copy_(centres)
        if self.ema:
            size = counts.clamp(min=1)
            self.ema_size.copy_(size)
            self.ema_sum.copy_(centres * size.unsqueeze(1))
        self.initialized.fill_(True)

    def _update(self, x: torch.Tensor, idx: torch.Tensor, mask: torch.Tensor | None) -> None:
        """One training call's bookkeeping: EMA step, usage counters, dead-code restarts."""
        pool = self._pool(x, mask)
        if mask is not None:
            x, idx = x[mask], idx[mask]
        k = self.codebook_size
        counts = torch.bincount(idx, minlength=k).to(x.dtype)
        if self.ema:
            stats = torch.cat([counts.unsqueeze(1),
                               x.new_zeros(k, x.shape[1]).index_add_(0, idx, x)], 1)
            stats = _all_reduce(stats)
            counts = stats[:, 0]
            self._ema_step(counts, stats[:, 1:])
        else:
            counts = _all_reduce(counts)
        self.unused.add_(1).masked_fill_(counts > 0, 0)
        if self.restart_every > 0:
            dead = self.unused >= self.restart_every
            if bool(dead.any()):
                self._restart(dead, pool)

    def _ema_step(self, counts: torch.Tensor, sums: torch.Tensor) -> None:
        g = self.ema_decay
        self.ema_size.mul_(g).add_(counts, alpha=1 - g)
        self.ema_sum.mul_(g).add_(sums, alpha=1 - g)
        total = self.ema_size.sum()
        smoothed = (self.ema_size + LAPLACE_EPS) / (total + self.codebook_size * LAPLACE_EPS)
        self.codebook.copy_(self.ema_sum / (smoothed * total).unsqueeze(1))

    def _restart(self, dead: torch.Tensor, pool: torch.Tensor) -> None:
        """Re-seed the ``dead`` codes from random rows of ``pool`` (rank 0's rows)."""
        n = int(dead.sum())
        if pool.shape[0] >= n:
            pick = torch.randperm(pool.shape[0], device=pool.device)[:n]
        else:
            pick = torch.randint(pool.shape[0], (n,), device=pool.device)
        seeds = _from_rank0(pool[pick].to(self.codebook.dtype))
        self.codebook[dead] = seeds
        if self.ema:
            self.ema_size[dead] = 1.0
            self.ema_sum[dead] = seeds
        self.unused[dead] = 0
        self.restarts += n

    def extra_repr(self) -> str:
        return (f"codebook_size={self.codebook_size}, code_dim={self.code_dim}, "
                f"positions={self.positions}, commitment={self.commitment}, ema={self.ema}, "
                f"cosine={self.cosine}, restart_every={self.restart_every}")
