"""Sweeps: one training run per config value (a grid, or an Optuna search), compared in one folder.

``xae sweep --beta 0.1,1,8`` trains one run folder per value in parallel processes
(:mod:`xae.sweep.runner`), then writes ``sweep.json``, ``table.md``/``table.csv``, the
rate–distortion curve and the latent maps side by side (:mod:`xae.sweep.report`). Any config
key can be swept (:mod:`xae.sweep.grid`); ``--optuna`` searches a space instead
(:mod:`xae.sweep.optuna_search`, which needs the ``sweep`` extra). With ``--storage URL`` the
search is a study in an Optuna storage that workers anywhere add to with ``--join NAME``
(:mod:`xae.sweep.shared`; the storage URL: :mod:`xae.sweep.storage`; the study, its budget
and heartbeats: :mod:`xae.sweep.study`; a worker's loop: :mod:`xae.sweep.worker`).

The submodules are imported where they are used, so that ``xae --help`` stays fast.
"""
from __future__ import annotations
