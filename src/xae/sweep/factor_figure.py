"""A β sweep on data with known factors: the latent structure of the under-regularized, the
balanced and the over-regularized run side by side (``factor_structure.png``).

For each run picked as for the latent maps (:func:`xae.sweep.figures.picks`), the top panel
is the KL of each latent dimension against N(0, 1) (the mean over test images, bars largest
first) and the bottom panel the normalised mutual information of each factor with those
dimensions, in the same order (MIG's estimate, :func:`xae.evaluate.disentanglement.mig_score`,
on ``MI_POINTS`` fresh grid points), titled with the run's MIG. At small β many dimensions
carry information and each factor spreads over several of them; at large β most dimensions
fall to the prior (KL ≈ 0) and the factors they carried are lost; between them, the few
active dimensions each carry one factor when the model disentangles at all.
"""
from __future__ import annotations

from pathlib import Path
import numpy as np

from xae.sweep.figures import picks
from xae.sweep.runner import Result
from xae.viz import new_figure, save_figure

MI_POINTS = 5000
KL_POINTS = 1000
SEED = 0


def factor_structure(results: list[Result], keys: list[str], path: str | Path) -> Path | None:
    """Draw the figure for the sweep's picked runs; None (nothing written) when the sweep's
    data have no known factors or its runs' codes are not flat Gaussians."""
    import xae
    from xae.data import load
    from xae.evaluate.disentanglement import mig_score, model_representation
    from xae.viz_factors import dimension_kl, flat_gaussian_posterior, traversable

    chosen = picks(results, keys)
    if not chosen:
        return None
    models = [xae.load(r.path) for r, _ in chosen]
    ds = load(models[0].config.data)
    source = ds.info.get("factors")
    x = ds.test_x[:KL_POINTS]
    if source is None or not all(traversable(m, x) for m in models):
        return None
    fig = new_figure(3.4 * len(chosen) + 1.0, 5.6)
    axes = fig.subplots(2, len(chosen), squeeze=False)
    names = list(source.names)
    for col, ((r, caption), model) in enumerate(zip(chosen, models)):
        kl = dimension_kl(flat_gaussian_posterior(model, x)).numpy()
        order = np.argsort(-kl, kind="stable")
        mig = mig_score(source, model_representation(model), np.random.default_rng(SEED),
                        num_train=MI_POINTS)
        mi = np.asarray(mig["normalized_mi"])[order].T  # (factors, dims by KL)
        top, bottom = axes[0, col], axes[1, col]
        top.bar(range(len(kl)), kl[order], color="#4477aa")
        top.set_xticks(range(len(kl)), [f"z{j}" for j in order], fontsize=6)
        top.set_ylabel("KL per dimension (nats)" if col == 0 else "", fontsize=8)
        top.set_title(caption, fontsize=9)
        top.tick_params(labelsize=7)
        im = bottom.imshow(mi, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto",
                           interpolation="nearest")
        bottom.set_xticks(range(len(kl)), [f"z{j}" for j in order], fontsize=6)
        bottom.set_yticks(range(len(names)), names if col == 0 else [""] * len(names),
                          fontsize=7)
        bottom.set_title(f"MIG {mig['mig']:.3f}", fontsize=9)
    top_kl = max(ax.get_ylim()[1] for ax in axes[0])
    for ax in axes[0]:  # one scale: the over-regularized run's bars look as small as they are
        ax.set_ylim(0, top_kl)
    fig.colorbar(im, ax=list(axes[1]), label="I(z_j; v_k) / H(v_k)", shrink=0.9)
    fig.suptitle(f"Latent structure across β: KL per dimension (top) and factor × latent MI "
                 f"(bottom, same column order); {KL_POINTS} test images, {MI_POINTS} grid "
                 f"points", fontsize=10)
    return save_figure(fig, path)
