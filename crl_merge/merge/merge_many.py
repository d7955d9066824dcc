"""MergeMany (Ainsworth et al. 2022, *Git Re-Basin*, algorithm 3): weight matching of N models
at once. Starting from every model weight-matched onto the first (pairwise Re-Basin; the
paper starts from the models as they are, and the mean of N unaligned models is a poor
target), each model but the first is in turn weight-matched onto the mean of the others as
aligned so far, until a full pass renumbers nothing or ``max_iter`` passes; the result is
the mean of the aligned models. With two models it is Re-Basin at α = 0.5."""

from __future__ import annotations

import numpy as np
import torch

from crl_merge.merge.operators import average
from crl_merge.merge.specs import PermutationSpec, apply_permutation
from crl_merge.merge.weight_matching import align, weight_matching

StateDict = dict[str, torch.Tensor]


def merge_many(spec: PermutationSpec, state_dicts: list[StateDict], seed: int = 0,
               max_iter: int = 100) -> tuple[StateDict, int]:
    """``(the mean of the aligned models, passes made)``; the first model keeps its numbering."""
    if len(state_dicts) < 2:
        raise ValueError(f"MergeMany needs at least two models, got {len(state_dicts)}")
    if max_iter < 1:
        raise ValueError(f"max_iter must be ≥ 1, got {max_iter}")
    aligned = [state_dicts[0]] + [align(spec, state_dicts[0], sd, seed=seed).aligned for sd in state_dicts[1:]]
    order = np.random.default_rng(seed)
    for passes in range(1, max_iter + 1):
        changed = False
        for i in [int(j) for j in order.permutation(len(state_dicts))]:
            if i == 0:
                continue  # model 0 is the reference numbering
            others = average([sd for j, sd in enumerate(aligned) if j != i])
            perm, _ = weight_matching(spec, others, state_dicts[i], seed=seed)
            renumbered = apply_permutation(spec, perm, state_dicts[i])
            changed |= any(not torch.equal(renumbered[k], aligned[i][k]) for k in renumbered)
            aligned[i] = renumbered
        if not changed:
            break
    return average(aligned), passes
