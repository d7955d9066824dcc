"""Choosing the torch device from a ``--device`` value, for every command of both tracks."""

from __future__ import annotations

import torch

from envs.schema import ConfigError

DEVICE_FORMS = "auto (CUDA if available), cpu, cuda, cuda:N"


def resolve_device(device: str) -> str:
    """``auto`` → ``cuda`` when torch sees a GPU, else ``cpu``; anything else is checked."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device != "cpu" and not device.startswith("cuda"):
        raise ConfigError(f"--device {device!r} is not a device this harness runs on; allowed: {DEVICE_FORMS}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} asked for, but torch sees no CUDA device; use --device cpu or auto")
    return device
