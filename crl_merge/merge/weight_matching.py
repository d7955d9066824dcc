"""Git Re-Basin weight matching (Ainsworth et al. 2022, algorithm 2).

Find permutations π of model B's hidden units maximising ``Σ_k ⟨θ_A[k], π(θ_B)[k]⟩`` over
all parameters k, i.e. minimising ``‖θ_A − π(θ_B)‖²``. The objective is linear in any one
permutation when the others are fixed, so it is maximised by coordinate descent: visit the
permutations in a seeded random order, solve each as a linear assignment problem
(``scipy.optimize.linear_sum_assignment``), and stop after a sweep that changes nothing or
at the iteration cap. A permutation is only replaced by a strictly better one, so the
objective never decreases.

Coordinate descent finds a local optimum. Against a permuted copy of itself a model is
recovered exactly when its weights carry enough signal (the tests check random NatureCNNs
and DTs with the real timestep-embedding size); with a few dozen units and little else a
consistent but wrong renumbering can be locally optimal.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from crl_merge.merge.checks import check_same_shapes
from crl_merge.merge.specs import (Permutation, PermutationSpec, apply_permutation, axis_index, check_covered,
                                   identity_permutation, invert, permute_parameter)

StateDict = dict[str, torch.Tensor]


class Alignment(NamedTuple):
    aligned: StateDict  # π(θ_B): model B renumbered onto model A, same function as B
    permutation: Permutation
    objective: list[float]  # as returned by weight_matching


def weight_matching(spec: PermutationSpec, a: StateDict, b: StateDict, seed: int = 0,
                    max_iter: int = 100) -> tuple[Permutation, list[float]]:
    """The permutation of ``b`` that best matches ``a``, and the objective
    ``Σ_k ⟨θ_A[k], π(θ_B)[k]⟩`` at the identity (entry 0) and after each sweep over the
    permutations; the last two entries are equal when it converged before ``max_iter``.

    Parameters present in both state dicts are matched (a DT's ``io.*`` of an environment
    only one model serves are skipped); all keys must be in the spec.
    """
    if max_iter < 1:
        raise ValueError(f"max_iter must be ≥ 1, got {max_iter}")
    check_covered(spec, a)
    check_covered(spec, b)
    names = [k for k in a if k in b]
    if not names:
        raise ValueError("the two models have no parameter in common")
    check_same_shapes([a, b], names)
    a64 = {k: a[k].detach().cpu().double() for k in names}
    b64 = {k: b[k].detach().cpu().double() for k in names}
    uses = spec.uses(names)
    nested = {q for inner in spec.nested.values() for q in inner}
    steps = sorted(p for p in uses if p not in nested)  # a nested permutation is solved with its outer one
    perm = identity_permutation(spec)
    order = np.random.default_rng(seed)
    objective = [_objective(spec, perm, a64, b64)]
    for _ in range(max_iter):
        changed = False
        for i in order.permutation(len(steps)):
            better = _improve(spec, perm, steps[i], uses, a64, b64)
            perm |= better
            changed |= bool(better)
        objective.append(_objective(spec, perm, a64, b64))
        if not changed:
            break
    return perm, objective


def align(spec: PermutationSpec, a: StateDict, b: StateDict, seed: int = 0, max_iter: int = 100) -> Alignment:
    """Weight-match ``b`` to ``a`` and renumber all of ``b`` (including parameters only ``b`` has)."""
    perm, objective = weight_matching(spec, a, b, seed=seed, max_iter=max_iter)
    return Alignment(apply_permutation(spec, perm, b), perm, objective)


def _objective(spec: PermutationSpec, perm: Permutation, a: StateDict, b: StateDict) -> float:
    return float(sum(torch.vdot(a[k].reshape(-1), permute_parameter(spec, perm, k, b[k]).reshape(-1)) for k in a))


def _improve(spec: PermutationSpec, perm: Permutation, p: str, uses: dict, a: StateDict, b: StateDict) -> Permutation:
    """The best values of ``p`` and the permutations nested in it, the others fixed; empty
    unless strictly better than the current ones."""
    inner = [q for q in spec.nested.get(p, ()) if q in uses]
    if inner:
        units = {q: _similarity(spec, perm, uses[q], a, b, span=2) for q in inner}
        chains = {q: (q, p) for q in inner}
        outer, within = _assign_nested(units, spec.sizes[p])
        candidate = {p: outer, **within}
    else:
        units, chains = {p: _similarity(spec, perm, uses[p], a, b)}, {p: (p,)}
        candidate = {p: torch.from_numpy(_assign(units[p], spec.groups[p]))}
    gain = lambda values: sum(s[np.arange(len(s)), axis_index(values, chains[q], len(s)).numpy()].sum()  # noqa: E731
                              for q, s in units.items())
    old, new = gain(perm), gain(perm | candidate)
    return candidate if new > old + 1e-10 * abs(old) else {}


def _similarity(spec: PermutationSpec, perm: Permutation, uses: list[tuple[str, int, int]],
                a: StateDict, b: StateDict, span: int = 1) -> np.ndarray:
    """``S[i, j]``: the objective's gain from putting B's unit ``j`` at position ``i`` of the
    permutation ``uses`` refers to, all other permutations fixed, and that one and the
    ``span - 1`` after it on each axis left out. Permutations applied before them on an axis
    are applied to B; those applied after them are undone on A."""
    similarity = None
    for param, axis, position in uses:
        names, length = spec.axes[param][axis], a[param].shape[axis]
        n = spec.sizes[names[position]]
        w_a = a[param]
        w_b = permute_parameter(spec, perm, param, b[param], skip_axis=axis)
        if position > 0:
            w_b = w_b.index_select(axis, axis_index(perm, names[:position], length))
        if position + span < len(names):
            w_a = w_a.index_select(axis, invert(axis_index(perm, names[position + span:], length)))
        term = w_a.movedim(axis, 0).reshape(n, -1) @ w_b.movedim(axis, 0).reshape(n, -1).T
        similarity = term if similarity is None else similarity + term
    return similarity.numpy()


def _assign(similarity: np.ndarray, group: int) -> np.ndarray:
    """The maximising assignment, solved per diagonal block when units stay within groups."""
    best = np.empty(len(similarity), dtype=np.int64)
    for start in range(0, len(similarity), group):
        block = similarity[start:start + group, start:start + group]
        best[start:start + group] = linear_sum_assignment(block, maximize=True)[1] + start
    return best


def _assign_nested(units: dict[str, np.ndarray], blocks: int) -> tuple[torch.Tensor, Permutation]:
    """The joint optimum of a block permutation (attention heads) and the permutations nested
    in it (units within a head), from each nested one's unit similarity: pairing block ``h``
    of A with block ``j`` of B is worth the best within-block assignment of every nested
    permutation, and the blocks are then assigned on these values. Returns the block
    permutation and the nested ones."""
    n = len(next(iter(units.values())))
    g = n // blocks
    value = np.zeros((blocks, blocks))
    within = {}
    for q, s in units.items():
        s = s.reshape(blocks, g, blocks, g)
        for h in range(blocks):
            for j in range(blocks):
                cols = linear_sum_assignment(s[h, :, j, :], maximize=True)[1]
                within[q, h, j] = cols
                value[h, j] += s[h, np.arange(g), j, cols].sum()
    outer = linear_sum_assignment(value, maximize=True)[1]
    result = {}
    for q in units:
        values = np.empty(n, dtype=np.int64)
        for h, j in enumerate(outer):
            values[j * g:(j + 1) * g] = j * g + within[q, h, j]
        result[q] = torch.from_numpy(values)
    return torch.from_numpy(outer.astype(np.int64)), result
