"""SLERP, DARE, Model Breadcrumbs and Model Stock: the properties that define them, on real
NatureCNN state dicts, and each through the one method table (suite plans, crl-merge merge)."""

import math

import pytest
import torch
from merge_helpers import random_actor

from crl_merge.merge import merge_weights, task_arithmetic
from crl_merge.merge.slerp import slerp, slerp_tensor
from crl_merge.merge.task_vectors import breadcrumbs, dare, model_stock


def sd(seed):
    return random_actor(seed).state_dict()


def same(x, y, atol=1e-6):
    return all(torch.allclose(x[k], y[k], atol=atol) for k in x)


def test_slerp_ends_at_the_models_keeps_equal_norms_and_is_lerp_for_parallel_tensors():
    a, b = sd(0), sd(1)
    assert same(slerp(a, b, 1.0), a) and same(slerp(a, b, 0.0), b)
    x, y = torch.randn(100, dtype=torch.float64), torch.randn(100, dtype=torch.float64)
    y = y * x.norm() / y.norm()
    for alpha in (0.25, 0.5, 0.9):
        assert math.isclose(slerp_tensor(x, y, alpha).norm().item(), x.norm().item(), rel_tol=1e-9)
    assert torch.allclose(slerp_tensor(x, 2 * x, 0.3), 0.3 * x + 0.7 * 2 * x)


def test_dare_keeps_density_of_each_task_vector_rescaled_and_is_task_arithmetic_at_density_1():
    base, a, b = sd(0), sd(1), sd(2)
    assert same(dare(base, [a, b], 1.0, 0.5), task_arithmetic(base, [a, b], 0.5))
    merged = dare(base, [a], 0.3, 1.0, seed=4)
    delta, kept = a["fc.weight"] - base["fc.weight"], merged["fc.weight"] - base["fc.weight"]
    nonzero = kept != 0
    assert abs(nonzero.float().mean().item() - 0.3) < 0.01
    assert torch.allclose(kept[nonzero], delta[nonzero] / 0.3, atol=1e-5)
    assert same(merged, dare(base, [a], 0.3, 1.0, seed=4)) and not same(merged, dare(base, [a], 0.3, 1.0, seed=5))


def test_breadcrumbs_drop_the_largest_and_smallest_entries():
    base, a = sd(0), sd(1)
    assert same(breadcrumbs(base, [a], 1.0, 0.0, 1.0), task_arithmetic(base, [a], 1.0))
    merged = breadcrumbs(base, [a], 0.5, 0.1, 1.0)
    delta = (a["fc.weight"] - base["fc.weight"]).abs().reshape(-1)
    kept = (merged["fc.weight"] - base["fc.weight"]).reshape(-1) != 0
    order = delta.argsort(descending=True)
    top, count = round(0.1 * len(delta)), round(0.5 * len(delta))
    assert kept[order[:top]].sum() == 0 and kept[order[top:top + count]].all() and kept[order[top + count:]].sum() == 0
    with pytest.raises(ValueError, match=r"density \+ outliers must be ≤ 1"):
        breadcrumbs(base, [a], 0.95, 0.1, 1.0)


def test_model_stock_is_the_mean_for_aligned_vectors_and_the_base_for_opposed_ones():
    base, a = sd(0), sd(1)
    twice = {k: 2 * a[k] - base[k] for k in a}  # the same direction from the base, twice as far
    mean = {k: (a[k] + twice[k]) / 2 for k in a}
    assert same(model_stock(base, [a, twice]), mean, atol=1e-5)
    opposite = {k: 2 * base[k] - a[k] for k in a}  # cos θ = −1
    assert same(model_stock(base, [a, opposite]), base)
    c = sd(2)
    ratio = model_stock(base, [a, c], subset="fc")["fc.weight"] - base["fc.weight"]
    mean_fc = (a["fc.weight"] + c["fc.weight"]) / 2 - base["fc.weight"]
    assert 0 <= (ratio.norm() / mean_fc.norm()).item() <= 1


@pytest.mark.parametrize("method, settings", [("slerp", {"alpha": 0.3}), ("dare", {"density": 0.5}),
                                              ("breadcrumbs", {"density": 0.5}), ("model_stock", {})])
def test_the_method_table_runs_each_and_says_what_it_needs(method, settings):
    base, a, b = sd(0), sd(1), sd(2)
    needs_base = method != "slerp"
    merged, record = merge_weights(method, [a, b], base=base if needs_base else None, **settings)
    assert set(merged) == set(a) and not same(merged, a)
    with pytest.raises(ValueError, match="a base model is needed by"):
        merge_weights(method, [a, b], base=None if needs_base else base, **settings)


def test_merge_many_recovers_a_model_from_permuted_copies():
    from crl_merge.merge import apply_permutation, random_permutation, spec_for
    from crl_merge.merge.merge_many import merge_many

    a = sd(0)
    spec = spec_for(random_actor(0))
    copies = [a] + [apply_permutation(spec, random_permutation(spec, s), a) for s in (1, 2, 3)]
    merged, passes = merge_many(spec, copies, seed=0)
    assert same(merged, a, atol=1e-5) and passes <= 3
    through_table, record = merge_weights("merge_many", copies, spec=spec)
    assert same(through_table, a, atol=1e-5) and record["passes"] == passes
    with pytest.raises(ValueError, match="needs the architecture's permutation spec"):
        merge_weights("merge_many", copies)
