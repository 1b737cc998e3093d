"""Process-wide CPU settings: the CLI applies them; the library never changes them itself.

From Python, call :func:`configure_cpu` (or ``torch.set_num_threads``) before training:
``xae.train`` only checks that ``train.threads``, when set, is what the process runs with.
"""
from __future__ import annotations

import torch

from xae.errors import XaeError


def configure_cpu(threads: int = 0) -> None:
    """Flush denormal floats to zero (they slow CPU matrix products by up to 20×) and, when
    ``threads`` > 0, use that many CPU threads. Both settings hold for the whole process."""
    torch.set_flush_denormal(True)
    if threads > 0:
        torch.set_num_threads(threads)


def check_threads(threads: int) -> None:
    """An error unless ``train.threads`` is 0 (any) or the process's thread count."""
    if threads > 0 and torch.get_num_threads() != threads:
        raise XaeError(f"train.threads is {threads} but this process runs "
                       f"{torch.get_num_threads()} CPU threads; xae does not change that "
                       f"behind your back: call xae.configure_cpu({threads}) (or "
                       f"torch.set_num_threads) first, or set train.threads=0")
