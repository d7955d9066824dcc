"""Merging operators over state dicts. Each acts on a subset of the parameters (see
:func:`crl_merge.merge.subsets.select`; default: every mergeable one) and copies the
remaining parameters from the first model (``a``, or ``base``). Arithmetic is done in
float64 and cast back, so that α = 1 returns A and averaging copies of a model returns it."""

from __future__ import annotations

import torch

from crl_merge.merge.checks import check_alpha, check_finite, check_same_shapes, merge_names, normalised_weights
from crl_merge.merge.specs import PermutationSpec
from crl_merge.merge.subsets import Subset
from crl_merge.merge.weight_matching import align

StateDict = dict[str, torch.Tensor]


def _copy(state_dict: StateDict) -> StateDict:
    return {k: v.detach().clone() for k, v in state_dict.items()}


def _combine(tensors: list[torch.Tensor], coefficients: list[float]) -> torch.Tensor:
    total = sum(c * t.double() for c, t in zip(coefficients, tensors))
    return total.to(tensors[0].dtype)


def interpolate(a: StateDict, b: StateDict, alpha: float, subset: Subset = None) -> StateDict:
    """``α·θ_A + (1 − α)·θ_B`` on the subset, A's values elsewhere."""
    check_alpha(alpha)
    names = merge_names([a, b], subset)
    out = _copy(a)
    for n in names:
        out[n] = _combine([a[n], b[n]], [alpha, 1.0 - alpha])
    return out


def average(state_dicts: list[StateDict], weights: list[float] | None = None, subset: Subset = None) -> StateDict:
    """Weighted mean of N models (Wortsman et al. 2022, "model soups"); equal weights by
    default, otherwise non-negative weights normalised to sum to 1."""
    names = merge_names(state_dicts, subset)
    weights = normalised_weights(weights, len(state_dicts))
    out = _copy(state_dicts[0])
    for n in names:
        out[n] = _combine([sd[n] for sd in state_dicts], weights)
    return out


def rebasin_merge(spec: PermutationSpec, a: StateDict, b: StateDict, alpha: float, seed: int = 0,
                  subset: Subset = None, max_iter: int = 100) -> StateDict:
    """Git Re-Basin merge (Ainsworth et al. 2022): weight-match B onto A over all parameters,
    then ``α·θ_A + (1 − α)·π(θ_B)`` on the subset. α = 0.25 weights the permuted model more."""
    check_alpha(alpha)
    merge_names([a, b], subset)  # fail on bad input before the matching
    return interpolate(a, align(spec, a, b, seed=seed, max_iter=max_iter).aligned, alpha, subset)


def fisher_merge(state_dicts: list[StateDict], fishers: list[StateDict], subset: Subset = None,
                 floor: float = 1e-12) -> StateDict:
    """Fisher-weighted averaging (Matena & Raffel 2022): per parameter entry,
    ``Σ_i F_i θ_i / Σ_i F_i``, each diagonal Fisher floored at ``floor`` so that entries no
    model is sensitive to get the plain mean. The authors' code floors at 1e-6, but a
    policy's Fisher can be far smaller (a fresh DT's attention weights: about 1e-8), where
    that floor would silently turn the merge into an average; hence the tiny default."""
    if len(fishers) != len(state_dicts):
        raise ValueError(f"{len(fishers)} Fishers for {len(state_dicts)} models")
    if not floor > 0:
        raise ValueError(f"floor must be positive, got {floor}")
    names = merge_names(state_dicts, subset)
    check_same_shapes([state_dicts[0], *fishers], names, ["model 0"] + [f"Fisher {i}" for i in range(len(fishers))])
    out = _copy(state_dicts[0])
    for n in names:
        weights = [f[n].double().clamp_min(floor) for f in fishers]
        total = sum(w * sd[n].double() for w, sd in zip(weights, state_dicts))
        out[n] = (total / sum(weights)).to(state_dicts[0][n].dtype)
    return out


def task_arithmetic(base: StateDict, models: list[StateDict], scale: float, subset: Subset = None) -> StateDict:
    """Task arithmetic (Ilharco et al. 2023): ``θ_base + scale · Σ_i (θ_i − θ_base)``."""
    check_finite("scale", scale)
    if not models:
        raise ValueError("task arithmetic needs at least one model besides the base")
    names = merge_names([base, *models], subset)
    out = _copy(base)
    for n in names:
        out[n] = _combine([base[n], *(m[n] for m in models)], [1.0 - scale * len(models)] + [scale] * len(models))
    return out


def ties_merge(base: StateDict, models: list[StateDict], density: float, scale: float,
               subset: Subset = None) -> StateDict:
    """TIES-merging (Yadav et al. 2023): trim each task vector ``θ_i − θ_base`` to its
    ``density`` fraction of largest magnitudes (over the whole subset), elect a sign per
    entry (the sign of the trimmed vectors' sum), average only the entries agreeing with it,
    and add ``scale`` times the result to the base."""
    check_finite("scale", scale)
    if not isinstance(density, (int, float)) or not 0.0 < density <= 1.0:
        raise ValueError(f"density must be in (0, 1], got {density!r}")
    if not models:
        raise ValueError("TIES needs at least one model besides the base")
    names = merge_names([base, *models], subset)
    vectors = torch.stack([torch.cat([(m[n].double() - base[n].double()).reshape(-1) for n in names]) for m in models])
    keep = max(1, round(density * vectors.shape[1]))
    trimmed = torch.zeros_like(vectors)
    top = vectors.abs().topk(keep, dim=1).indices
    trimmed.scatter_(1, top, vectors.gather(1, top))
    sign = trimmed.sum(0).sign()
    agree = (trimmed.sign() == sign) & (trimmed != 0)
    merged = (trimmed * agree).sum(0) / agree.sum(0).clamp_min(1)
    out = _copy(base)
    offset = 0
    for n in names:
        size = base[n].numel()
        update = merged[offset:offset + size].reshape(base[n].shape)
        out[n] = (base[n].double() + scale * update).to(base[n].dtype)
        offset += size
    return out
