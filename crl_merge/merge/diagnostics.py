"""Diagnostics of a pair of models: how far apart their weights are, layer by layer, and
how the return behaves along the straight line between them (linear mode connectivity),
before and after aligning B's hidden units to A's."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from crl_merge.merge.checks import merge_names
from crl_merge.merge.operators import interpolate
from crl_merge.merge.specs import PermutationSpec
from crl_merge.merge.subsets import Subset
from crl_merge.merge.weight_matching import align

StateDict = dict[str, torch.Tensor]


def layer_distances(a: StateDict, b: StateDict, subset: Subset = None) -> dict[str, float]:
    """L2 distance ``‖θ_A − θ_B‖`` per layer (a layer's parameters share the name up to the
    last dot: ``fc.weight`` and ``fc.bias`` make ``fc``), in state-dict order."""
    squares: dict[str, float] = {}
    for n in merge_names([a, b], subset):
        layer = n.rsplit(".", 1)[0]
        squares[layer] = squares.get(layer, 0.0) + float((a[n].double() - b[n].double()).square().sum())
    return {layer: s**0.5 for layer, s in squares.items()}


def l2_distance(a: StateDict, b: StateDict, subset: Subset = None) -> float:
    """L2 distance over all parameters of the subset together."""
    return sum(d**2 for d in layer_distances(a, b, subset).values()) ** 0.5


def interpolation_path(a: StateDict, b: StateDict, evaluate_fn: Callable[[StateDict], float],
                       alphas: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0), spec: PermutationSpec | None = None,
                       seed: int = 0, subset: Subset = None) -> list[dict[str, float]]:
    """``evaluate_fn`` of ``α·θ_A + (1 − α)·θ_B`` at each α (``"naive"``) and, given a
    ``spec``, of ``α·θ_A + (1 − α)·π(θ_B)`` with π from weight matching (``"aligned"``).
    α = 1 is A; α = 0 is B (π(B) has B's function, so both paths end at B's return up to
    the evaluation's randomness).

    ``evaluate_fn`` maps a state dict to a number, e.g. a mean return::

        from crl_merge.procgen.evaluate import evaluate
        from crl_merge.models import make_actor

        def mean_return(state_dict):
            actor = make_actor()
            actor.load_state_dict(state_dict)
            return evaluate(actor, "starpilot/dodge", episodes=500).summary()["mean_return"]
    """
    aligned = align(spec, a, b, seed=seed).aligned if spec is not None else None
    rows = []
    for alpha in alphas:
        row = {"alpha": float(alpha), "naive": float(evaluate_fn(interpolate(a, b, alpha, subset)))}
        if aligned is not None:
            row["aligned"] = float(evaluate_fn(interpolate(a, aligned, alpha, subset)))
        rows.append(row)
    return rows


def barrier(path: list[dict[str, float]], key: str = "naive") -> float:
    """The largest drop of a return path below the straight line between its endpoints,
    ``max_α [α·R(1) + (1 − α)·R(0) − R(α)]`` (Frankle et al. 2020's instability, for a
    quantity where higher is better); 0 means linearly mode-connected. The path must
    include α = 0 and α = 1."""
    ends = {row["alpha"]: row[key] for row in path if row["alpha"] in (0.0, 1.0)}
    if len(ends) != 2:
        raise ValueError("the path must include alpha = 0 and alpha = 1")
    return max(row["alpha"] * ends[1.0] + (1 - row["alpha"]) * ends[0.0] - row[key] for row in path)
