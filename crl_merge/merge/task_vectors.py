"""Merges of task vectors ``θ_i − θ_base`` that sparsify or weight them before adding them
to the base: DARE (Yu et al. 2024, *Language models are Super Mario*), Model Breadcrumbs
(Davari & Belilovsky 2023) and Model Stock (Jang et al. 2024). Each acts per parameter
tensor of the subset and copies the base elsewhere; arithmetic in float64."""

from __future__ import annotations

import torch

from crl_merge.merge.checks import check_finite, merge_names
from crl_merge.merge.subsets import Subset

StateDict = dict[str, torch.Tensor]


def _fraction(name: str, value: float, low_open: bool = True) -> None:
    if not isinstance(value, (int, float)) or not (0.0 < value <= 1.0 if low_open else 0.0 <= value < 1.0):
        raise ValueError(f"{name} must be in {'(0, 1]' if low_open else '[0, 1)'}, got {value!r}")


def _vectors(base: StateDict, models: list[StateDict], subset: Subset) -> tuple[list[str], dict]:
    if not models:
        raise ValueError("a task-vector merge needs at least one model besides the base")
    names = merge_names([base, *models], subset)
    return names, {n: torch.stack([m[n].double() - base[n].double() for m in models]) for n in names}


def _add(base: StateDict, names: list[str], updates: dict[str, torch.Tensor]) -> StateDict:
    out = {k: v.detach().clone() for k, v in base.items()}
    for n in names:
        out[n] = (base[n].double() + updates[n]).to(base[n].dtype)
    return out


def dare(base: StateDict, models: list[StateDict], density: float, scale: float, seed: int = 0,
         subset: Subset = None) -> StateDict:
    """DARE: drop each task-vector entry with probability ``1 − density`` and rescale the kept
    ones by ``1 / density`` (so each vector is unchanged in expectation), then add ``scale``
    times their sum to the base. ``seed`` fixes the drops."""
    _fraction("density", density)
    check_finite("scale", scale)
    names, vectors = _vectors(base, models, subset)
    gen = torch.Generator().manual_seed(seed)
    updates = {}
    for n in names:
        keep = torch.rand(vectors[n].shape, generator=gen, dtype=torch.float64) < density
        updates[n] = scale * (vectors[n] * keep / density).sum(0)
    return _add(base, names, updates)


def breadcrumbs(base: StateDict, models: list[StateDict], density: float, outliers: float, scale: float,
                subset: Subset = None) -> StateDict:
    """Model Breadcrumbs: per tensor and model, drop the task vector's ``outliers`` fraction
    of largest magnitudes and keep the next ``density`` fraction (the small rest is noise);
    add ``scale`` times the masked vectors' sum to the base."""
    _fraction("density", density)
    _fraction("outliers", outliers, low_open=False)
    if density + outliers > 1.0:
        raise ValueError(f"density + outliers must be ≤ 1, got {density} + {outliers}")
    check_finite("scale", scale)
    names, vectors = _vectors(base, models, subset)
    updates = {}
    for n in names:
        flat = vectors[n].reshape(len(models), -1)
        size = flat.shape[1]
        order = flat.abs().argsort(dim=1, descending=True)
        top, kept = round(outliers * size), max(1, round(density * size))
        mask = torch.zeros_like(flat, dtype=torch.bool)
        mask.scatter_(1, order[:, top:top + kept], True)
        updates[n] = scale * (flat * mask).sum(0).reshape(vectors[n].shape[1:])
    return _add(base, names, updates)


def model_stock(base: StateDict, models: list[StateDict], subset: Subset = None) -> StateDict:
    """Model Stock: per tensor, ``t = N·cos θ / (1 + (N − 1)·cos θ)`` with ``cos θ`` the mean
    pairwise cosine between the N task vectors, and ``t·mean(θ_i) + (1 − t)·θ_base``. With
    one model, or vectors with no angle between them (cos θ = 1), t = 1: their mean; t is
    kept in [0, 1] (vectors pointing apart on average give the base)."""
    names, vectors = _vectors(base, models, subset)
    count = len(models)
    updates = {}
    for n in names:
        flat = vectors[n].reshape(count, -1)
        norms = flat.norm(dim=1)
        if count == 1 or bool((norms == 0).any()):
            ratio = 1.0
        else:
            unit = flat / norms[:, None]
            cosines = unit @ unit.T
            cos = ((cosines.sum() - count) / (count * (count - 1))).clamp(-1.0, 1.0).item()
            ratio = max(0.0, count * cos / (1 + (count - 1) * cos)) if cos > 0 else 0.0
        updates[n] = ratio * vectors[n].mean(0)
    return _add(base, names, updates)
