"""The ST-LPIPS weight files: found inside the installed ``stlpips-pytorch`` wheel, checked by
their SHA-256 and read with ``torch.load(..., weights_only=True)``.

The wheel (Ghildyal & Liu 2022, BSD-2-Clause) is used only as a carrier of its two ``.pth``
files. Its Python modules are never imported: they import torchvision, which xae does not
need. The files are located through the package metadata (``importlib.metadata``), which does
not run any of the package's code.
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import torch

from xae.errors import XaeError

#: The distribution that carries the weights, and the version whose files are recorded below.
DISTRIBUTION: str = "stlpips-pytorch"
VERSION: str = "0.0.2"
INSTALL_HINT: str = (f"install the wheel that carries them: pip install "
                     f"'{DISTRIBUTION}=={VERSION}' (or pip install 'xae[perceptual]'; it "
                     f"needs no other package)")


@dataclass(frozen=True)
class WeightFile:
    """One weight file of the wheel: its path inside the wheel and its SHA-256."""

    path: str
    sha256: str


#: The shift-tolerant networks' files of stlpips-pytorch 0.0.2 (``weights/vST0.0``).
FILES: dict[str, WeightFile] = {
    "alex": WeightFile("stlpips_pytorch/weights/vST0.0/alex_shift_tolerant.pth",
                       "b356b382f96010f77d085ee8343ecd9fd322d0a56e8de2b2d0549fafcad8b9ee"),
    "vgg": WeightFile("stlpips_pytorch/weights/vST0.0/vgg_shift_tolerant.pth",
                      "44597da68f49c1837c100ff52299050f274d102eb102e5837178c79be6f0e250"),
}


def weight_path(trunk: str) -> Path:
    """Where the installed wheel keeps the weights of ``trunk`` (``alex`` or ``vgg``).

    Raises
    ------
    XaeError
        When the wheel is not installed, or is installed without the file.
    """
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise XaeError(f"ST-LPIPS needs the network weights shipped in the '{DISTRIBUTION}' "
                       f"wheel, which is not installed; {INSTALL_HINT}") from None
    path = Path(str(dist.locate_file(FILES[trunk].path)))
    if not path.is_file():
        raise XaeError(f"the '{DISTRIBUTION}' wheel (version {dist.version}) has no file "
                       f"'{FILES[trunk].path}'; {INSTALL_HINT}")
    return path


def load_state_dict(trunk: str, path: str | Path | None = None) -> dict[str, torch.Tensor]:
    """The state dict of the ST-LPIPS network ``trunk``, after checking the file's SHA-256.

    Parameters
    ----------
    trunk : str
        ``alex`` or ``vgg``.
    path : str or Path, optional
        Another copy of the file; by default the one in the installed wheel. It must have the
        same SHA-256.

    Raises
    ------
    XaeError
        When the file cannot be read or its hash differs.
    """
    path = Path(path) if path is not None else weight_path(trunk)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise XaeError(f"cannot read the ST-LPIPS weights '{path}' ({e}); {INSTALL_HINT}") \
            from None
    digest = hashlib.sha256(raw).hexdigest()
    if digest != FILES[trunk].sha256:
        raise XaeError(f"the ST-LPIPS weights '{path}' are not the files xae was checked "
                       f"against: SHA-256 {digest}, expected {FILES[trunk].sha256}; "
                       f"reinstall them: pip install --force-reinstall "
                       f"'{DISTRIBUTION}=={VERSION}'")
    # the bytes are the ones recorded above, so they unpickle to that state dict of tensors
    return torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
