"""Git Re-Basin weight matching (Ainsworth et al. 2022, algorithm 2).

Find permutations π of model B's hidden units maximising ``Σ_k ⟨θ_A[k], π(θ_B)[k]⟩`` over
all parameters k, i.e. minimising ``‖θ_A − π(θ_B)‖²``. The objective is linear in any one
permutation when the others are fixed, so it is maximised by coordinate descent: visit the
permutations in a seeded random order, solve each as a linear assignment problem
(``scipy.optimize.linear_sum_assignment``), and stop after a sweep that changes nothing or
at the iteration cap. A permutation is only replaced by a strictly better one, so the
objective never decreases.

Coordinate descent finds a local optimum, and where it starts matters. From the identity
(Git Re-Basin's start) a step only sees signal through parameters whose other axes are
already aligned or not permuted at all (NatureCNN's input channels and action logits, a
DT's embeddings and action head). A DT trunk on its own has no such anchor: every
permutation in it meets only other permutations, so from the identity each step sees
noise, and even a permuted copy of a trunk is not recovered. A second start needs no
anchor: each unit is described by the sorted values of the weights it reads and writes,
which no other permutation changes, and units are paired by these signatures. The descent
runs from both starts and the result with the higher objective is returned, so it is never
worse than Git Re-Basin's own start with the same seed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from crl_merge.merge.checks import check_same_shapes
from crl_merge.merge.specs import (Permutation, PermutationSpec, apply_permutation, axis_index, check_covered,
                                   check_permutation, identity_permutation, invert, permute_parameter)

StateDict = dict[str, torch.Tensor]


class Alignment(NamedTuple):
    aligned: StateDict  # π(θ_B): model B renumbered onto model A, same function as B
    permutation: Permutation
    objective: list[float]  # as returned by weight_matching


def weight_matching(spec: PermutationSpec, a: StateDict, b: StateDict, seed: int = 0,
                    max_iter: int = 100, initial: Permutation | None = None) -> tuple[Permutation, list[float]]:
    """The permutation of ``b`` that best matches ``a``, and the objective
    ``Σ_k ⟨θ_A[k], π(θ_B)[k]⟩`` at the start the result came from (entry 0) and after each
    sweep over the permutations; the last two entries are equal when it converged before
    ``max_iter``. ``seed`` fixes the order in which each sweep visits the permutations.
    The descent starts from the identity and from units paired by their weights' sorted
    values, keeping the better result; ``initial`` (a permutation of the spec's names, as
    git-re-basin's ``init_perm``) replaces both starts.

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
    if initial is not None:
        check_permutation(spec, initial)
        starts = [{p: v.clone() for p, v in initial.items()}]
    else:
        starts = [identity_permutation(spec), _signature_start(spec, uses, steps, a64, b64)]
    runs = [_coordinate_descent(spec, start, uses, steps, a64, b64, seed, max_iter) for start in starts]
    return max(runs, key=lambda run: run[1][-1])


def align(spec: PermutationSpec, a: StateDict, b: StateDict, seed: int = 0, max_iter: int = 100,
          initial: Permutation | None = None) -> Alignment:
    """Weight-match ``b`` to ``a`` (from ``initial``, if given) and renumber all of ``b``
    (including parameters only ``b`` has)."""
    perm, objective = weight_matching(spec, a, b, seed=seed, max_iter=max_iter, initial=initial)
    return Alignment(apply_permutation(spec, perm, b), perm, objective)


def _objective(spec: PermutationSpec, perm: Permutation, a: StateDict, b: StateDict) -> float:
    return float(sum(torch.vdot(a[k].reshape(-1), permute_parameter(spec, perm, k, b[k]).reshape(-1)) for k in a))


def _coordinate_descent(spec: PermutationSpec, perm: Permutation, uses: dict, steps: list[str], a: StateDict,
                        b: StateDict, seed: int, max_iter: int) -> tuple[Permutation, list[float]]:
    order = np.random.default_rng(seed)
    objective = [_objective(spec, perm, a, b)]
    for _ in range(max_iter):
        changed = False
        for i in order.permutation(len(steps)):
            better = _improve(spec, perm, steps[i], uses, a, b)
            perm |= better
            changed |= bool(better)
        objective.append(_objective(spec, perm, a, b))
        if not changed:
            break
    return perm, objective


def _signature_start(spec: PermutationSpec, uses: dict, steps: list[str], a: StateDict, b: StateDict) -> Permutation:
    """Units paired by the sorted values of their slices of every parameter they touch:
    signatures that no other permutation changes (a permuted copy gets its permutation)."""
    def signatures(q: str, w: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Centred over units: this changes every pairing's score by the same amount, and
        makes the assignment problems several times faster to solve."""
        n = spec.sizes[q]
        rows = [w[param].movedim(axis, 0).reshape(n, -1).sort(dim=1).values for param, axis, _ in uses[q]]
        return [r - r.mean(0) for r in rows]

    def similarity(q: str, span: int) -> np.ndarray:  # signatures see no permutation, whatever the span
        return sum(sa @ sb.T for sa, sb in zip(signatures(q, a), signatures(q, b))).numpy()

    perm = identity_permutation(spec)
    for p in steps:
        perm |= _best(spec, p, uses, similarity)[0]
    return perm


def _best(spec: PermutationSpec, p: str, uses: dict, similarity: Callable[[str, int], np.ndarray]
          ) -> tuple[Permutation, dict[str, np.ndarray], dict[str, tuple[str, ...]]]:
    """The assignment of ``p`` (and the permutations nested in it) maximising
    ``similarity(q, span)`` (a unit similarity of ``q`` with ``span`` permutations on its
    axes left out, as :func:`_similarity`), with the unit similarities it used and, per
    similarity, the permutations it scores."""
    inner = [q for q in spec.nested.get(p, ()) if q in uses]
    if inner:
        units = {q: similarity(q, 2) for q in inner}
        outer, within = _assign_nested(units, spec.sizes[p])
        return {p: outer, **within}, units, {q: (q, p) for q in inner}
    units = {p: similarity(p, 1)}
    return {p: torch.from_numpy(_assign(units[p], spec.groups[p]))}, units, {p: (p,)}


def _improve(spec: PermutationSpec, perm: Permutation, p: str, uses: dict, a: StateDict, b: StateDict) -> Permutation:
    """The best values of ``p`` and the permutations nested in it, the others fixed; empty
    unless strictly better than the current ones."""
    candidate, units, chains = _best(spec, p, uses, lambda q, span: _similarity(spec, perm, uses[q], a, b, span))
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
