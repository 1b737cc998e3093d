"""One-line descriptions for benchmark reports: a model's actual architecture (read from its
config and its pieces) and the machine it ran on."""
from __future__ import annotations

import math
import os
import platform
from pathlib import Path

import torch

from xae.model import Autoencoder
from xae.registry import section_values


def _settings(model_cfg: object, kind: str) -> str:
    name = getattr(model_cfg, kind)
    values = section_values(model_cfg, kind, name)
    inner = ", ".join(f"{k} {v}" for k, v in values.items())
    return f"{name} ({inner})" if inner else name


def architecture(model: Autoencoder) -> str:
    """E.g. ``MLP 784-200-200-50 tanh, gaussian bottleneck, prior normal`` for the one-layer
    net; for others each piece with its settings (a hierarchy's groups, top first)."""
    c = model.config.model
    code = "×".join(map(str, model.latent_shape))
    if c.encoder == c.decoder == "mlp" and not model.hierarchical:
        dims = [math.prod(model.data_shape), *c.mlp.hidden, model.latent_dim]
        net = f"MLP {'-'.join(map(str, dims))} {c.mlp.activation}"
        return f"{net}, {c.bottleneck} bottleneck, prior {_settings(c, 'prior')}"
    return (f"encoder {_settings(c, 'encoder')}, bottleneck {_settings(c, 'bottleneck')}, "
            f"decoder {_settings(c, 'decoder')}, prior {_settings(c, 'prior')}, code {code}")


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what :mod:`platform` says."""
    info = Path("/proc/cpuinfo")
    if info.is_file():
        for line in info.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine(device: str) -> dict[str, object]:
    """The CPU, its cores, torch's threads, the device (the GPU's name on cuda), torch."""
    gpu = torch.cuda.get_device_name() if device == "cuda" else None
    return {"cpu": cpu_name(), "cores": os.cpu_count(), "threads": torch.get_num_threads(),
            "device": device, "gpu": gpu, "torch": torch.__version__}


def machine_line(m: dict[str, object]) -> str:
    dev = f"cuda ({m['gpu']})" if m["gpu"] else m["device"]
    return (f"{m['cpu']}, {m['cores']} cores, {m['threads']} torch threads; device {dev}; "
            f"torch {m['torch']}")
