"""The arithmetic a ``fast`` training runs its network passes in.

``fp32`` is the reference (what stable-baselines3 does, what the update-parity tests pin).
``bf16`` runs every forward pass, in the rollout and in the update, under bf16 autocast:
matrix products and convolutions in bf16, weights, gradients, Adam and the loss's softmax
and reductions in fp32 (autocast's own split), so no loss scaling is needed. It pays where
the chip has bf16 units (AVX-512 BF16/AMX CPUs, GPUs since Ampere).
"""

from __future__ import annotations

import torch

PRECISIONS = ("fp32", "bf16")


def autocast(precision: str, device: torch.device):
    """The context the network passes run in: bf16 autocast on ``device``'s type, or a no-op."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; valid precisions: {list(PRECISIONS)}")
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def recorded(precision: str) -> dict[str, str]:
    """What a run's spec and sidecars record of ``precision``: nothing for the reference fp32,
    so that runs made before there was a choice keep their specs."""
    return {} if precision == "fp32" else {"precision": precision}
