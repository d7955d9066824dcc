"""Merging operators: the identities the acceptance asks for, subsets, Fisher merging, task
arithmetic and TIES on small hand-made cases, and clear errors on bad input."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from merge_helpers import random_actor, random_dt

from crl_merge.merge import (align, apply_permutation, average, fisher_merge, interpolate, random_permutation, rebasin_merge,
                             select, spec_for, task_arithmetic, ties_merge)

SEEDS = st.integers(0, 2**16)


def assert_same(a, b, names=None):
    for n in names or a:
        torch.testing.assert_close(a[n], b[n], atol=0, rtol=0, msg=n)


@settings(max_examples=10, deadline=None, derandomize=True)
@given(seed=SEEDS, count=st.integers(2, 5), dt=st.booleans())
def test_averaging_copies_of_a_model_returns_the_model(seed, count, dt):
    model = random_dt(seed) if dt else random_actor(seed)
    state = model.state_dict()
    torch.testing.assert_close(average([state] * count), state, atol=1e-7, rtol=1e-6)
    torch.testing.assert_close(average([state] * count, weights=range(1, count + 1)), state, atol=1e-7, rtol=1e-6)


def assert_rebasin_endpoints(make, model_seed, other_seed, perm_seed):
    """α = 1 gives A, α = 0 gives π(B) (on the mergeable parameters; the rest is A's), and a
    permuted copy of A merges back into A."""
    a, b = make(model_seed).state_dict(), make(other_seed).state_dict()
    spec = spec_for(make(0))
    assert_same(rebasin_merge(spec, a, b, alpha=1.0), a)
    assert_same(rebasin_merge(spec, a, b, alpha=0.0, seed=2), align(spec, a, b, seed=2).aligned, select(a))
    permuted_copy = apply_permutation(spec, random_permutation(spec, perm_seed), a)
    torch.testing.assert_close(rebasin_merge(spec, a, permuted_copy, alpha=0.25), a, atol=1e-6, rtol=1e-6)


@settings(max_examples=10, deadline=None, derandomize=True)
@given(model_seed=SEEDS, other_seed=SEEDS, perm_seed=SEEDS, n_layer=st.sampled_from([2, 3]),
       n_head=st.sampled_from([1, 2]))
def test_rebasin_endpoints_of_decision_transformers(model_seed, other_seed, perm_seed, n_layer, n_head):
    assert_rebasin_endpoints(lambda seed: random_dt(seed, n_layer=n_layer, n_head=n_head), model_seed, other_seed + 1,
                             perm_seed)


def test_rebasin_endpoints_of_nature_cnns():  # one case: a NatureCNN matching takes a good fraction of a second
    assert_rebasin_endpoints(random_actor, 1, 2, 3)


def test_interpolation_endpoints_and_midpoint():
    a, b = random_actor(1).state_dict(), random_actor(2).state_dict()
    assert_same(interpolate(a, b, 1.0), a)
    assert_same(interpolate(a, b, 0.0), b)
    mid = interpolate(a, b, 0.25)
    torch.testing.assert_close(mid["fc.weight"], 0.25 * a["fc.weight"] + 0.75 * b["fc.weight"])


def test_a_subset_merges_only_its_parameters_and_keeps_a_elsewhere():
    a, b = random_dt(1, n_layer=3).state_dict(), random_dt(2, n_layer=3).state_dict()
    merged = interpolate(a, b, 0.5, subset="attention1")
    chosen = select(a, "attention1")
    assert chosen and all(".blocks.1.attn." in n for n in chosen)
    for n in a:
        if n in chosen:
            torch.testing.assert_close(merged[n], (a[n] + b[n]) / 2)
        else:
            assert torch.equal(merged[n], a[n]), n


def test_subsets_by_group_regex_and_list():
    state = random_dt(0, n_layer=2).state_dict()
    assert not any(n.startswith("io.") for n in select(state))  # never merged by default
    assert set(select(state, "transformer")) == set(select(state))
    assert select(state, ["mlp0", r"ln_f\."]) == [n for n in state if ".blocks.0.mlp." in n or "ln_f." in n]
    assert select(state, "embeddings")  # explicitly named projections can be selected
    assert select(random_actor(0).state_dict(), "conv") == [f"conv{i}.{k}" for i in (1, 2, 3) for k in ("weight", "bias")]


@pytest.mark.parametrize("subset, message", [
    ("attention7", r"'attention7' matches no parameter; groups of this model: \['attention', 'attention0'"),
    ("[", "neither a group name nor a valid regular expression"),
    ([], "empty subset"),
])
def test_bad_subsets_name_the_pattern_and_the_groups(subset, message):
    with pytest.raises(ValueError, match=message):
        select(random_dt(0).state_dict(), subset)


@pytest.mark.parametrize("alpha", [-0.1, 1.5, float("nan"), "0.5"])
def test_alpha_outside_the_unit_interval_is_rejected(alpha):
    a = random_actor(0).state_dict()
    with pytest.raises(ValueError, match="alpha must be a number in \\[0, 1\\]"):
        interpolate(a, a, alpha)
    with pytest.raises(ValueError, match="alpha"):
        rebasin_merge(spec_for(random_actor(0)), a, a, alpha)


def test_models_of_different_architectures_or_shapes_are_rejected():
    actor, critic_like = random_actor(0).state_dict(), random_actor(1).state_dict()
    critic_like["head.weight"], critic_like["head.bias"] = torch.zeros(1, 512), torch.zeros(1)
    with pytest.raises(ValueError, match=r"'head.weight' has shape \(15, 512\) in model 0 but \(1, 512\) in model 1"):
        average([actor, critic_like])
    with pytest.raises(ValueError, match="different parameters .* only in 0: \\['conv1.bias'"):
        interpolate(actor, random_dt(0).state_dict(), 0.5)
    narrow, wide = random_dt(0, n_embd=16).state_dict(), random_dt(0, n_embd=32).state_dict()
    with pytest.raises(ValueError, match="has shape .* in model 0 but .* in model 1"):
        interpolate(narrow, wide, 0.5)
    with pytest.raises(ValueError, match="no models"):
        average([])
    with pytest.raises(ValueError, match="no mergeable parameters"):
        average([{}, {}])


def test_weights_are_checked():
    a = random_actor(0).state_dict()
    with pytest.raises(ValueError, match="3 weights for 2 models"):
        average([a, a], weights=[1, 1, 1])
    with pytest.raises(ValueError, match="non-negative"):
        average([a, a], weights=[1, -1])


def tiny(**tensors):
    """A state dict shaped like a NatureCNN's first layer, for hand-checked arithmetic."""
    return {"conv1.weight": torch.tensor(tensors["w"], dtype=torch.float32), "conv1.bias": torch.zeros(2)}


def test_fisher_merge_weights_each_entry_by_its_fisher():
    a, b = tiny(w=[1.0, 1.0]), tiny(w=[3.0, 3.0])
    fa, fb = tiny(w=[1.0, 0.0]), tiny(w=[1.0, 3.0])
    merged = fisher_merge([a, b], [fa, fb])
    torch.testing.assert_close(merged["conv1.weight"], torch.tensor([2.0, 3.0]))
    floored = fisher_merge([a, b], [fa, fb], floor=1.0)  # F_a = 1 where it was 0
    torch.testing.assert_close(floored["conv1.weight"], torch.tensor([2.0, (1 * 1 + 3 * 3) / (1 + 3)]))
    torch.testing.assert_close(merged["conv1.bias"], torch.zeros(2))  # no Fisher anywhere: the plain mean
    with pytest.raises(ValueError, match="2 Fishers for 1 models"):
        fisher_merge([a], [fa, fb])
    with pytest.raises(ValueError, match="missing from Fisher 1"):
        fisher_merge([a, b], [fa, {}])


def test_task_arithmetic_adds_scaled_task_vectors():
    base, m1, m2 = tiny(w=[1.0, 1.0]), tiny(w=[2.0, 1.0]), tiny(w=[1.0, 4.0])
    merged = task_arithmetic(base, [m1, m2], scale=0.5)
    torch.testing.assert_close(merged["conv1.weight"], torch.tensor([1.5, 2.5]))
    assert_same(task_arithmetic(base, [m1], scale=1.0), m1)
    with pytest.raises(ValueError, match="scale must be a finite number"):
        task_arithmetic(base, [m1], scale=float("inf"))


def test_ties_trims_elects_signs_and_averages_agreeing_entries():
    base = {"fc.weight": torch.zeros(4)}
    m1 = {"fc.weight": torch.tensor([4.0, -1.0, 2.0, 0.1])}
    m2 = {"fc.weight": torch.tensor([2.0, 3.0, -1.0, 0.2])}
    # density 0.75 keeps 3 of 4 entries per task vector: m1 drops 0.1, m2 drops 0.2
    # signs: [+, +(−1+3), +(2−1), 0]; agreeing means: [3, 3, 2, 0]
    merged = ties_merge(base, [m1, m2], density=0.75, scale=1.0)
    torch.testing.assert_close(merged["fc.weight"], torch.tensor([3.0, 3.0, 2.0, 0.0]))
    assert_same(ties_merge(base, [m1], density=1.0, scale=1.0), m1)
    with pytest.raises(ValueError, match="density must be in \\(0, 1\\]"):
        ties_merge(base, [m1], density=0.0, scale=1.0)
    with pytest.raises(ValueError, match="at least one model"):
        ties_merge(base, [], density=0.5, scale=1.0)


def test_transformers_serving_different_environments_merge_their_trunks():
    """The DT paper's case: A serves hopper, B walker2d. Their trunks merge; A's projections
    are kept; B's walker2d projections, renumbered with B's trunk, fit the aligned trunk."""
    full = random_dt(7).state_dict()
    spec = spec_for(random_dt(0))  # both environments
    permuted = apply_permutation(spec, random_permutation(spec, 8), full)
    a = {k: v for k, v in full.items() if not k.startswith("io.walker2d.")}
    b = {k: v for k, v in permuted.items() if not k.startswith("io.hopper.")}
    assert_same(interpolate(a, b, 1.0, subset="attention"), a)
    merged = rebasin_merge(spec, a, b, alpha=0.5)
    torch.testing.assert_close(merged, a, atol=1e-6, rtol=1e-6)
    hopper_only = {"name": "decision_transformer", "config": dict(random_dt(0).cfg.to_dict(), envs={"hopper": [11, 3]})}
    with pytest.raises(ValueError, match="not in the permutation spec"):  # the spec must cover both environments
        rebasin_merge(spec_for(hopper_only), a, b, 0.5)
