"""Spherical linear interpolation of two models, per parameter tensor (Shoemake 1985, as
model-merging toolkits such as MergeKit apply it to weights): the merged tensor moves along
the great circle between A and B, so for two tensors of equal norm its norm stays that."""

from __future__ import annotations

import math

import torch

from crl_merge.merge.checks import check_alpha, merge_names
from crl_merge.merge.subsets import Subset

StateDict = dict[str, torch.Tensor]
PARALLEL = 1e-6  # below this angle (radians) the two are treated as parallel: plain interpolation


def slerp_tensor(a: torch.Tensor, b: torch.Tensor, alpha: float) -> torch.Tensor:
    """``α`` weighs ``a`` as in interpolation: α = 1 gives ``a``, α = 0 gives ``b``."""
    x, y = a.double().reshape(-1), b.double().reshape(-1)
    norms = x.norm() * y.norm()
    if norms == 0:
        return (alpha * x + (1 - alpha) * y).reshape(a.shape).to(a.dtype)
    omega = torch.arccos((x @ y / norms).clamp(-1.0, 1.0)).item()
    if omega < PARALLEL:
        merged = alpha * x + (1 - alpha) * y
    else:
        merged = (math.sin(alpha * omega) * x + math.sin((1 - alpha) * omega) * y) / math.sin(omega)
    return merged.reshape(a.shape).to(a.dtype)


def slerp(a: StateDict, b: StateDict, alpha: float, subset: Subset = None) -> StateDict:
    """Each parameter of the subset slerped between A and B; A's values elsewhere."""
    check_alpha(alpha)
    names = merge_names([a, b], subset)
    out = {k: v.detach().clone() for k, v in a.items()}
    for n in names:
        out[n] = slerp_tensor(a[n], b[n], alpha)
    return out
