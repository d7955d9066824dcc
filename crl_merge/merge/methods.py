"""The merge methods, one table for the suite files' merge plans and for ``crl-merge merge``.

Each entry says what the method takes (its settings and their defaults), how many models it
merges, and what it needs besides their weights: a shared starting model (task vectors),
rollout states of the sources (activation matching, Fisher merging), or nothing.
:func:`merge_weights` runs the methods that need weights only; the Procgen track's
:mod:`crl_merge.procgen.merging` adds the rollout states for the others.
"""

from __future__ import annotations

from dataclasses import dataclass

from crl_merge.merge.checks import check_alpha, merge_names
from crl_merge.merge.diagnostics import l2_distance
from crl_merge.merge.merge_many import merge_many
from crl_merge.merge.operators import average, interpolate, task_arithmetic, ties_merge
from crl_merge.merge.specs import PermutationSpec
from crl_merge.merge.subsets import Subset
from crl_merge.merge.slerp import slerp
from crl_merge.merge.task_vectors import breadcrumbs, dare, model_stock
from crl_merge.merge.weight_matching import align


@dataclass(frozen=True)
class MergeMethodInfo:
    """``settings``: the method's settings (``alpha`` weighs the first model; ``directions``
    says which model is the first, for methods that treat the two differently; ``repair``:
    REPAIR the interpolated network's activation statistics on rollout states, see
    :mod:`crl_merge.merge.repair`)."""

    doc: str
    settings: tuple[str, ...] = ()
    pairwise: bool = True        # exactly two models; else two or more
    needs_base: bool = False     # task vectors from a shared starting model
    needs_states: bool = False   # rollout states of the source models
    is_merge: bool = True        # ensemble: a baseline that keeps both models
    in_thesis: bool = False


MERGE_METHODS: dict[str, MergeMethodInfo] = {
    "average": MergeMethodInfo(
        "weight averaging: alpha·A + (1 − alpha)·B; with more than two models and no alpha, the equal-weight mean",
        ("alpha", "repair"), pairwise=False, in_thesis=True),
    "rebasin": MergeMethodInfo(
        "Git Re-Basin: weight-match B onto A, then alpha·A + (1 − alpha)·π(B)", ("alpha", "directions", "repair"),
        in_thesis=True),
    "activation_matching": MergeMethodInfo(
        "Git Re-Basin activation matching on rollout states, then alpha·A + (1 − alpha)·π(B)",
        ("alpha", "directions", "repair"), needs_states=True),
    "fisher": MergeMethodInfo("Fisher-weighted averaging (diagonal Fisher on rollout states; exact: over all "
                              "actions rather than one sampled)", ("exact",), needs_states=True),
    "task_arithmetic": MergeMethodInfo("base + scale·Σ(model − base)", ("scale",), pairwise=False, needs_base=True),
    "ties": MergeMethodInfo("TIES: trimmed, sign-elected task vectors added to the base", ("density", "scale"),
                            pairwise=False, needs_base=True),
    "merge_many": MergeMethodInfo("MergeMany: each model weight-matched onto the mean of the others in turn, then "
                                  "averaged (Re-Basin for N models)", pairwise=False),
    "slerp": MergeMethodInfo("spherical interpolation per tensor, alpha weighing A", ("alpha",)),
    "dare": MergeMethodInfo("DARE: task vectors with entries dropped at random (kept: density, rescaled), "
                            "added to the base", ("density", "scale"), pairwise=False, needs_base=True),
    "breadcrumbs": MergeMethodInfo("Model Breadcrumbs: task vectors without their largest (outliers) and smallest "
                                   "entries (keeping density), added to the base", ("density", "outliers", "scale"),
                                   pairwise=False, needs_base=True),
    "model_stock": MergeMethodInfo("Model Stock: the models' mean pulled towards the base by the angle between "
                                   "their task vectors", pairwise=False, needs_base=True),
    "ensemble": MergeMethodInfo("a logit ensemble of the two models (a baseline, not a merge)", is_merge=False),
}
DEFAULTS = {"alpha": 0.5, "scale": 1.0, "density": 0.2, "outliers": 0.01}
DIRECTIONS = ("ab", "ba")
WEIGHTS_ONLY = tuple(name for name, m in MERGE_METHODS.items() if m.is_merge and not m.needs_states)
"""The methods that need nothing but the checkpoints (what ``crl-merge merge`` offers)."""


def merge_weights(method: str, state_dicts: list[dict], *, alpha: float | None = None, base: dict | None = None,
                  scale: float = DEFAULTS["scale"], density: float = DEFAULTS["density"],
                  outliers: float = DEFAULTS["outliers"], spec: PermutationSpec | None = None, seed: int = 0,
                  max_iter: int = 100, subset: Subset = None, weights: list[float] | None = None,
                  initial: dict | None = None) -> tuple[dict, dict]:
    """``(merged state dict, what the method did)`` for a method of :data:`WEIGHTS_ONLY`.
    ``weights``: per-model coefficients of ``average`` (normalised to sum to 1); ``initial``:
    the permutation ``rebasin``'s weight matching starts from. For ``rebasin`` the record
    holds the weight-matching objective per sweep, the L2 distance of A to B before and after
    alignment, and the permutation found (``permutation``, name → list)."""
    if method not in WEIGHTS_ONLY:
        raise ValueError(f"{method!r} is not a weights-only merge method; these are: {list(WEIGHTS_ONLY)}")
    info = MERGE_METHODS[method]
    if info.pairwise and len(state_dicts) != 2:
        raise ValueError(f"{method} merges exactly two models, got {len(state_dicts)}")
    least = 1 if info.needs_base else 2  # task vectors: one model and its base suffice
    if len(state_dicts) < least:
        raise ValueError(f"{method} needs at least {least} model(s) besides a base, got {len(state_dicts)}")
    if info.needs_base != (base is not None):
        raise ValueError(f"a base model is needed by {[n for n, m in MERGE_METHODS.items() if m.needs_base]} "
                         "and only by them")
    if weights is not None and method != "average":
        raise ValueError(f"per-model weights apply to average, not to {method}")
    if weights is not None and alpha is not None:
        raise ValueError("give alpha (two models) or weights (one per model), not both")
    if initial is not None and method != "rebasin":
        raise ValueError(f"an initial permutation applies to rebasin, not to {method}")
    if alpha is not None and "alpha" not in info.settings:
        raise ValueError(f"alpha applies to {[n for n, m in MERGE_METHODS.items() if 'alpha' in m.settings]}, "
                         f"not to {method}")
    if method == "average":
        if alpha is None:
            return average(state_dicts, weights, subset=subset), {} if weights is None else {"weights": weights}
        if len(state_dicts) != 2:
            raise ValueError(f"alpha weighs the first of two models; got {len(state_dicts)} models "
                             "(leave alpha out for the equal-weight mean)")
        return interpolate(*state_dicts, alpha, subset=subset), {"alpha": alpha}
    if method == "task_arithmetic":
        return task_arithmetic(base, state_dicts, scale, subset=subset), {"scale": scale}
    if method == "ties":
        return ties_merge(base, state_dicts, density, scale, subset=subset), {"density": density, "scale": scale}
    if method == "dare":
        return (dare(base, state_dicts, density, scale, seed=seed, subset=subset),
                {"density": density, "scale": scale, "seed": seed})
    if method == "breadcrumbs":
        return (breadcrumbs(base, state_dicts, density, outliers, scale, subset=subset),
                {"density": density, "outliers": outliers, "scale": scale})
    if method == "model_stock":
        return model_stock(base, state_dicts, subset=subset), {}
    if method in ("rebasin", "merge_many") and spec is None:
        raise ValueError(f"{method} needs the architecture's permutation spec")
    if method == "merge_many":
        if subset is not None:
            raise ValueError("merge_many aligns and merges every mergeable parameter; it takes no subset")
        merged, passes = merge_many(spec, state_dicts, seed=seed, max_iter=max_iter)
        return merged, {"seed": seed, "passes": passes}
    alpha = DEFAULTS["alpha"] if alpha is None else alpha
    if method == "slerp":
        return slerp(*state_dicts, alpha, subset=subset), {"alpha": alpha}
    a, b = state_dicts
    check_alpha(alpha)
    merge_names([a, b], subset)  # bad input fails before the matching
    alignment = align(spec, a, b, seed=seed, max_iter=max_iter, initial=initial)
    record = {"alpha": alpha, "seed": seed, "max_iter": max_iter, "objective": alignment.objective,
              "l2_before": l2_distance(a, b),
              "l2_after": l2_distance(a, alignment.aligned), "initial": initial is not None,
              "permutation": {p: v.tolist() for p, v in alignment.permutation.items()}}
    return interpolate(a, alignment.aligned, alpha, subset=subset), record
