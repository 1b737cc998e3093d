"""Atomic file writes: write to a temporary file beside the target, then rename over it.

A run killed at any moment leaves either the old file or the new one, never half of one.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from xae.errors import XaeError
from xae.runfiles import CHECKPOINT, CONFIG, WEIGHTS

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp makes 0600 files, and some writers replace the file they are given
        os.chmod(tmp, 0o666 & ~_UMASK)  # the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder to fill; on success it replaces the folder ``path`` whole (the
    old one is removed only once the new one is in place), on failure it is removed and the
    old folder stays as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:12]
    tmp, old = path.with_name(f".{path.name}.{tag}.tmp"), path.with_name(f".{path.name}.{tag}.old")
    tmp.mkdir(mode=0o777 & ~_UMASK)
    try:
        yield tmp
        moved = path.exists()
        if moved:
            os.replace(path, old)
        try:
            os.replace(tmp, path)
        except BaseException:
            if moved:
                os.replace(old, path)
            raise
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def save_safetensors(module: Any, path: str | Path, metadata: dict[str, str] | None = None) -> None:
    """Write a module's ``state_dict`` as a safetensors file (on the CPU), atomically, with the
    usual permissions (safetensors itself creates files readable by their owner only)."""
    save_tensors(module.state_dict(), path, metadata)


def save_tensors(tensors: dict[str, Any], path: str | Path,
                 metadata: dict[str, str] | None = None) -> None:
    """Write named tensors as a safetensors file (on the CPU), atomically, with the usual
    permissions."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def run_folder_of(path: str | Path) -> Path | None:
    """The run folder that ``path`` lies in (its parent or grandparent: run files sit at most
    one folder deep, as in ``figures/`` or ``checkpoint/``), or None."""
    for folder in list(Path(path).resolve().parents)[:2]:
        if (folder / CONFIG).is_file() and ((folder / WEIGHTS).exists()
                                            or (folder / CHECKPOINT).exists()):
            return folder
    return None


def output_file(path: str | Path, suffix: str, flag: str) -> Path:
    """``path`` checked as a file a command may write: it ends in ``suffix`` (the format that
    will be written), is not a folder, and is not an existing file of a run folder (outputs
    never overwrite a run's weights, config, metrics or figures)."""
    p = Path(path)
    if p.suffix.lower() != suffix:
        raise XaeError(f"{flag} {path}: the output is written as {suffix[1:].upper()}; give a "
                       f"file name that ends in {suffix}")
    if p.is_dir():
        raise XaeError(f"{flag} {path} is a folder; give a file name ending in {suffix}")
    run = run_folder_of(p)
    if p.exists() and run is not None:
        raise XaeError(f"{flag} {path} is a file of the run folder '{run}', and outputs never "
                       f"overwrite a run's files; choose another name")
    return p


def _marked(folder: Path, marker: str, fmt: str) -> bool:
    """``folder/marker`` is a JSON object whose ``format`` is ``fmt``."""
    try:
        meta = json.loads((folder / marker).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("format") == fmt


def replaceable_folder(out_dir: str | Path, flag: str, marker: str, fmt: str,
                       runs: Iterable[str | Path] = ()) -> Path:
    """The resolved ``out_dir`` when a command may replace it whole (:func:`atomic_dir`), or an
    XaeError when that could lose files: something not a folder, a symbolic link, the current
    folder or one above it, one of ``runs`` or a folder above one, a run folder, or a
    non-empty folder that is not an earlier output of the same command (whose ``marker``
    file, a JSON object, says ``"format": fmt``). An earlier output may hold a ``config.json``
    (a diffusers export does) but never a run's weights or checkpoint."""
    out, where = Path(out_dir), f"{flag} {out_dir}"
    how = f"name a new or empty folder, e.g. {flag} {'site' if 'static' in flag else 'out'}/"
    try:
        target, cwd = out.resolve(), Path.cwd().resolve()
    except (OSError, RuntimeError) as e:  # RuntimeError: a symbolic link loop
        raise XaeError(f"cannot resolve {where} ({e}); {how}") from None
    if target == cwd or target in cwd.parents:
        raise XaeError(f"{where} is the current folder or one above it, which would be "
                       f"replaced whole; {how}")
    if out.is_symlink():
        raise XaeError(f"{where} is a symbolic link, which would be replaced; name the folder "
                       f"it points to, or a new one")
    if out.exists() and not out.is_dir():
        raise XaeError(f"{where} exists and is not a folder; {how}")
    for run in runs:
        if target == Path(run).resolve() or target in Path(run).resolve().parents:
            raise XaeError(f"{where} is the run {run} or a folder above it, which would be "
                           f"replaced whole; {how}")
    weights = (out / WEIGHTS).exists() or (out / CHECKPOINT).exists()
    if (out / CONFIG).exists() and (weights or not _marked(out, marker, fmt)):
        raise XaeError(f"{where} is a run folder (it has {CONFIG}), which would be "
                       f"replaced whole; {how}")
    try:
        foreign = out.is_dir() and any(out.iterdir()) and not _marked(out, marker, fmt)
    except OSError as e:
        raise XaeError(f"cannot read {where} ({e.strerror}); {how}") from None
    if foreign:
        raise XaeError(f"{where} holds files and is not an earlier output of {flag} (it has no "
                       f"{marker}); the folder would be replaced whole: {how}")
    return target


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2) + "\n")
