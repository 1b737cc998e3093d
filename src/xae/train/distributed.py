"""Plain ``torch.distributed`` set-up for runs under ``torchrun`` (gloo on CPU, nccl on GPU)."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from xae.errors import XaeError


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def setup(device: str) -> DistInfo:
    """Join the process group when launched by ``torchrun`` (WORLD_SIZE > 1); else one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend=backend)
    return info


def checked_device(device: str, key: str) -> torch.device:
    """The torch device named ``device`` (cpu or cuda[:i]), or an error naming ``key``."""
    if not (device == "cpu" or device.startswith("cuda")):
        raise XaeError(f"{key} '{device}' is unknown; use cpu or cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise XaeError(f"{key} is cuda but no CUDA device is available; use --device cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError):
        raise XaeError(f"{key} '{device}' is unknown; use cpu or cuda") from None


def device_for(device: str, info: DistInfo) -> torch.device:
    if device == "cuda" and info.active:
        return torch.device("cuda", info.local_rank)
    return torch.device(device)


def barrier(info: DistInfo) -> None:
    if info.active:
        dist.barrier()


def teardown(info: DistInfo) -> None:
    if info.active and dist.is_initialized():
        dist.destroy_process_group()


def is_main_process() -> bool:
    """True in a single process and on rank 0 under ``torchrun`` (which prints results)."""
    return int(os.environ.get("RANK", "0")) == 0
