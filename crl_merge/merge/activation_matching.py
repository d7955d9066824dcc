"""Activation matching (Ainsworth et al. 2022, sec. 3.1; Singh & Jaggi 2020 match units in
the same spirit): pair each hidden unit of model A with the unit of model B whose
activations on the same inputs correlate best, one linear assignment per layer.

Unlike weight matching it needs data (e.g. states collected from rollouts) and it matches
what units *do* rather than their weights. Each layer is solved on its own, so there is
no coordinate descent. It needs ``model.features(inputs)`` returning the post-activation
output of each permuted layer keyed by permutation name (``[N, units]`` or, for a conv,
``[N, channels, H, W]`` whose positions count as samples), which the NatureCNN provides.
Units that never fire on the inputs carry no signal and are paired among themselves
arbitrarily, so collect inputs where the units are active (the model's own rollouts).
"""

from __future__ import annotations

import torch
from scipy.optimize import linear_sum_assignment
from torch import nn

from crl_merge.merge.specs import Permutation, PermutationSpec


def activation_matching(spec: PermutationSpec, model_a: nn.Module, model_b: nn.Module, inputs: torch.Tensor,
                        batch_size: int = 256) -> Permutation:
    """The permutation of ``model_b`` whose units best correlate with ``model_a``'s on
    ``inputs``; apply it with :func:`crl_merge.merge.apply_permutation`."""
    for model in (model_a, model_b):
        if not hasattr(model, "features"):
            raise ValueError(f"activation matching needs {type(model).__name__}.features(inputs); "
                             "use weight_matching for this architecture")
    if spec.nested:
        raise ValueError("activation matching handles unnested permutations only; use weight_matching")
    if len(inputs) == 0:
        raise ValueError("no inputs to collect activations on")
    moments = None
    with torch.no_grad():
        for start in range(0, len(inputs), batch_size):
            batch = inputs[start:start + batch_size]
            feats_a, feats_b = model_a.features(batch), model_b.features(batch)
            missing = set(spec.sizes) - set(feats_a)
            if missing:
                raise ValueError(f"features() gives no activations for permutations {sorted(missing)}")
            moments = _accumulate(moments, {p: (_samples(feats_a[p]), _samples(feats_b[p])) for p in spec.sizes})
    perm = {}
    for p, (count, sum_a, sum_b, sq_a, sq_b, cross) in moments.items():
        mean_a, mean_b = sum_a / count, sum_b / count
        cov = cross / count - torch.outer(mean_a, mean_b)
        std_a = (sq_a / count - mean_a**2).clamp_min(0).sqrt()
        std_b = (sq_b / count - mean_b**2).clamp_min(0).sqrt()
        correlation = cov / (torch.outer(std_a, std_b) + 1e-12)  # dead units correlate with nothing
        perm[p] = torch.from_numpy(linear_sum_assignment(correlation.numpy(), maximize=True)[1])
    return perm


def _samples(activation: torch.Tensor) -> torch.Tensor:
    """``[samples, units]`` in float64: conv positions are samples of their channel."""
    if activation.dim() == 4:
        activation = activation.permute(0, 2, 3, 1).reshape(-1, activation.shape[1])
    return activation.detach().cpu().double()


def _accumulate(moments: dict | None, batch: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> dict:
    """Running count, sums, sums of squares and cross products per permutation."""
    new = {p: (len(x), x.sum(0), y.sum(0), (x * x).sum(0), (y * y).sum(0), x.T @ y) for p, (x, y) in batch.items()}
    if moments is None:
        return new
    return {p: tuple(old + add for old, add in zip(moments[p], new[p])) for p in new}
