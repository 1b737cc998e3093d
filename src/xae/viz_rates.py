"""The KL of each latent group over training, from the ``rate/<group>`` columns of a run's
metrics.jsonl: one line per group against the step, with the total rate (nats per sample).
Which groups carry information, and when each wakes up or collapses, shows here first."""
from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from xae.errors import XaeError
from xae.viz import curve_keys, new_figure, read_log, save_figure

GROUP_RATE = "rate/"  # the prefix of a latent group's rate term (rate/z1 … rate/zL)


def group_rate_keys(records: list[dict]) -> list[str]:
    """The logged ``rate/<group>`` columns, top group first (in the order they were logged)."""
    return [k for k in curve_keys(records) if k.startswith(GROUP_RATE)]


def rate_groups_figure(records: list[dict]) -> Figure:
    """One line per latent group (its mean KL over each log window) and the total rate,
    against the step."""
    keys = group_rate_keys(records)
    if not keys:
        raise XaeError("the training log has no rate/<group> columns: the KL per group is "
                       "drawn for a hierarchy of latent groups (model.bottleneck=topdown or "
                       "ladder)")
    fig = new_figure(6.0, 3.8)
    ax = fig.add_subplot()
    marker = "o" if len(records) < 30 else None
    for key in [*keys, "rate"]:
        pts = [(r["step"], r[key]) for r in records if r.get(key) is not None]
        if pts:
            total = key == "rate"
            ax.plot(*zip(*pts), label="total" if total else key.removeprefix(GROUP_RATE),
                    color="k" if total else None, ls="--" if total else "-", lw=1.2,
                    marker=marker, markersize=3)
    ax.set(xlabel="step", ylabel="KL (nats per sample)",
           title=f"KL per latent group over training ({len(keys)} groups, top first)")
    ax.legend(fontsize=8, title="group", title_fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def rate_groups(metrics_jsonl: str | Path, path: str | Path) -> Path:
    """The figure of :func:`rate_groups_figure` from a run's metrics.jsonl, written to
    ``path``."""
    return save_figure(rate_groups_figure(read_log(Path(metrics_jsonl))), path)
