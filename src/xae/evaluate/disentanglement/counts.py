"""The sample counts of the five disentanglement metrics: disentanglement_lib's defaults
(10,000 training and 5,000 evaluation points each), overridden per metric.

The BetaVAE and FactorVAE scores count *points*, each a batch of ``batch_size`` images, so
their defaults encode about 2 million images between them; MIG counts training points only.
``xae eval --disentanglement-counts beta_vae=300/150 dci=2000/1000 mig=10000`` lowers them
for a quick look; the counts used are recorded in ``eval.json`` beside the scores.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from xae.errors import XaeError

METRICS: tuple[str, ...] = ("beta_vae", "factor_vae", "mig", "dci", "sap")
#: how many counts each metric takes: (train, eval) or, for MIG, (train,)
ARITY = {"beta_vae": 2, "factor_vae": 2, "mig": 1, "dci": 2, "sap": 2}


def resolve(num_train: int, num_eval: int,
            counts: Mapping[str, Sequence[int]] | None) -> dict[str, tuple[int, ...]]:
    """Each metric's counts: ``(num_train, num_eval)`` (``(num_train,)`` for MIG) unless
    ``counts`` names the metric. Unknown names and counts of the wrong length are errors."""
    out = {m: (num_train, num_eval)[:ARITY[m]] for m in METRICS}
    for name, values in (counts or {}).items():
        if name not in ARITY:
            raise XaeError(f"no disentanglement metric is called {name!r}; the metrics are "
                           f"{', '.join(METRICS)}")
        values = tuple(values)
        if len(values) != ARITY[name]:
            raise XaeError(f"{name} takes {_form(name)}, got {len(values)} number(s)")
        out[name] = tuple(int(v) for v in values)
    return out


def parse(items: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """``["beta_vae=300/150", "mig=10000"]`` → ``{"beta_vae": (300, 150), "mig": (10000,)}``
    (the command line's ``--disentanglement-counts``)."""
    out: dict[str, tuple[int, ...]] = {}
    for item in items:
        name, sep, rest = item.partition("=")
        name = name.strip()
        try:
            values = tuple(int(v) for v in rest.split("/")) if sep and rest else ()
        except ValueError:
            values = ()
        if not values:
            raise XaeError(f"--disentanglement-counts takes METRIC=TRAIN/EVAL (mig=TRAIN), "
                           f"e.g. dci=2000/1000; got {item!r}")
        if name in out:
            raise XaeError(f"--disentanglement-counts names {name} twice")
        out[name] = values
    resolve(1, 1, out)  # names and lengths checked here, the sizes by each metric
    return out


def _form(name: str) -> str:
    return "one count (TRAIN)" if ARITY[name] == 1 else "two counts (TRAIN/EVAL)"
