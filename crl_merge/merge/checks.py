"""Input checks shared by the merging operators, each failing with a ValueError that names
what is wrong."""

from __future__ import annotations

import math

import torch

from crl_merge.merge.subsets import Subset, select


def check_alpha(alpha: float) -> None:
    if not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}")


def check_finite(name: str, value: float) -> None:
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")


def normalised_weights(weights: list[float] | None, count: int) -> list[float]:
    """``count`` weights summing to 1: equal ones by default, else the given non-negative ones."""
    if weights is None:
        return [1.0 / count] * count
    weights = [float(w) for w in weights]
    if len(weights) != count:
        raise ValueError(f"{len(weights)} weights for {count} models")
    if any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"weights must be finite, non-negative and not all zero, got {weights}")
    return [w / sum(weights) for w in weights]


def check_same_shapes(state_dicts: list[dict[str, torch.Tensor]], names: list[str],
                      labels: list[str] | None = None) -> None:
    """Every one of ``names`` is in every state dict, with the same shape as in the first;
    ``labels`` name the state dicts in errors (default ``model 0``, ``model 1`` …)."""
    labels = labels or [f"model {i}" for i in range(len(state_dicts))]
    for label, sd in zip(labels[1:], state_dicts[1:]):
        for n in names:
            if n not in sd:
                raise ValueError(f"parameter {n!r} is missing from {label}")
            if sd[n].shape != state_dicts[0][n].shape:
                raise ValueError(f"parameter {n!r} has shape {tuple(state_dicts[0][n].shape)} in {labels[0]} "
                                 f"but {tuple(sd[n].shape)} in {label} (different architectures?)")


def merge_names(state_dicts: list[dict[str, torch.Tensor]], subset: Subset) -> list[str]:
    """The parameters to merge: the subset of the first state dict, after checking that all
    state dicts have the same mergeable parameters, of the same shapes."""
    if not state_dicts:
        raise ValueError("no models to merge")
    mergeable = [set(select(sd)) for sd in state_dicts]
    if not mergeable[0]:
        raise ValueError("model 0 has no mergeable parameters (empty state dict?)")
    for i, keys in enumerate(mergeable[1:], start=1):
        if keys != mergeable[0]:
            raise ValueError(f"models 0 and {i} have different parameters (different architectures?): "
                             f"only in 0: {sorted(mergeable[0] - keys)[:5]}, only in {i}: {sorted(keys - mergeable[0])[:5]}")
    names = select(state_dicts[0], subset)
    check_same_shapes(state_dicts, names)
    return names
