"""The run folder before training: checked, tidied after an interrupted write, and told
apart as a new run or one to resume."""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

from xae.errors import XaeError
from xae.runfiles import HELD_OUT, LOG
from xae.train import checkpoint as ckpt

log = logging.getLogger(__name__)


def prepare_dir(out: Path, resume: bool) -> bool:
    """Check the run folder; True when training starts from step 0 (a new run, or a resume
    of a run killed before its first checkpoint, which starts over with its config)."""
    if out.exists() and not out.is_dir():
        raise XaeError(f"--out '{out}' is a file, not a folder; choose another --out")
    if resume:
        if not out.is_dir():
            raise XaeError(f"cannot resume '{out}': no such folder; start a new run instead")
        removed = ckpt.recover(out)
        if removed:
            log.warning("removed %d leftover temporary file(s) of an interrupted write in %s",
                        len(removed), out)
        if ckpt.has_checkpoint(out):
            return False
        if (out / ckpt.STATE).is_file():  # the layout before checkpoint/: keep its weights
            raise XaeError(f"'{out}' was written by an earlier xae (a {ckpt.STATE} beside the "
                           f"weights, not a {ckpt.CHECKPOINT}/ folder) and cannot be resumed; "
                           f"its weights still load (xae.load), or start a new run")
        log.warning("'%s' was stopped before its first checkpoint; starting it over with "
                    "its config", out)
        for name in (LOG, HELD_OUT, ckpt.WEIGHTS, ckpt.BEST):
            (out / name).unlink(missing_ok=True)
        return True
    if out.exists() and any(out.iterdir()):
        stale = ckpt.leftovers(out)  # a run killed before it wrote its config leaves these
        if len(stale) < len(list(out.iterdir())):
            raise XaeError(f"run folder '{out}' already exists and is not empty; pass "
                           f"--resume to continue it or choose another --out")
        for p in stale:
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    return True
