"""Weight matching: recovers a random permutation exactly, never lowers its objective,
brings two independently trained actors closer, and is deterministic given its seed."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from merge_helpers import frames, random_actor, random_dt, trained_actors

from crl_merge.merge import align, apply_permutation, l2_distance, random_permutation, spec_for, weight_matching
from crl_merge.merge.specs import axis_index

SEEDS = st.integers(0, 2**16)


def assert_recovers(model, perm_seed, match_seed, keep=lambda name: True):
    """Matching a model (its parameters that ``keep`` accepts) against a permuted copy finds
    the inverse permutation: on every permuted axis, the found renumbering undoes the random
    one, and π(B) is the model."""
    spec = spec_for(model)
    original = {k: v for k, v in model.state_dict().items() if keep(k)}
    scrambled = random_permutation(spec, perm_seed)
    b = apply_permutation(spec, scrambled, original)
    found, objective = weight_matching(spec, original, b, seed=match_seed)
    for param in original:
        for axis, names in enumerate(spec.axes[param]):
            if names:
                length = original[param].shape[axis]
                undo = axis_index(scrambled, names, length)[axis_index(found, names, length)]
                assert torch.equal(undo, torch.arange(length)), (param, axis)
    restored = apply_permutation(spec, found, b)
    assert all(torch.equal(restored[k], original[k]) for k in original)
    assert objective[-1] == pytest.approx(sum(float(v.double().square().sum()) for v in original.values()))


@settings(max_examples=10, deadline=None, derandomize=True)
@given(model_seed=SEEDS, perm_seed=SEEDS, match_seed=SEEDS)
def test_weight_matching_recovers_a_random_permutation_of_a_nature_cnn(model_seed, perm_seed, match_seed):
    assert_recovers(random_actor(model_seed), perm_seed, match_seed)


@settings(max_examples=15, deadline=None, derandomize=True)
@given(model_seed=SEEDS, perm_seed=SEEDS, match_seed=SEEDS, n_layer=st.sampled_from([2, 3]),
       n_head=st.sampled_from([1, 2, 4]), trunk_only=st.booleans())
def test_weight_matching_recovers_a_random_permutation_of_a_decision_transformer(model_seed, perm_seed, match_seed,
                                                                                n_layer, n_head, trunk_only):
    """Also the trunk alone (``transformer.*``, as when the two models serve different
    environments), where no parameter anchors the residual stream."""
    keep = (lambda name: name.startswith("transformer.")) if trunk_only else (lambda name: True)
    assert_recovers(random_dt(model_seed, n_layer=n_layer, n_head=n_head), perm_seed, match_seed, keep)


def test_weight_matching_brings_independently_trained_actors_closer():
    (a, b), accuracies = trained_actors()
    assert min(accuracies) > 0.3  # trained: a random actor clones about 1 in 15 actions
    spec = spec_for(a)
    alignment = align(spec, a.state_dict(), b.state_dict(), seed=0)
    objective = alignment.objective
    assert all(later >= earlier for earlier, later in zip(objective, objective[1:]))
    assert objective[-1] > objective[0]
    before = l2_distance(a.state_dict(), b.state_dict())
    after = l2_distance(a.state_dict(), alignment.aligned)
    assert after < 0.97 * before
    # and π(B) is still B
    aligned_b = type(b)(b.out_dim).eval()
    aligned_b.load_state_dict(alignment.aligned)
    with torch.no_grad():
        assert (aligned_b(frames()[:32]) - b(frames()[:32])).abs().max() <= 1e-5


def test_objective_never_decreases_and_matching_is_deterministic():
    a, b = random_dt(1, n_layer=3, n_head=2).state_dict(), random_dt(2, n_layer=3, n_head=2).state_dict()
    spec = spec_for(random_dt(1, n_layer=3, n_head=2))
    perm, objective = weight_matching(spec, a, b, seed=3)
    assert len(objective) > 2 and all(y >= x for x, y in zip(objective, objective[1:]))
    again, objective_again = weight_matching(spec, a, b, seed=3)
    assert objective_again == objective and all(torch.equal(perm[p], again[p]) for p in perm)


def test_iteration_cap_stops_matching_early():
    a, b = random_actor(1).state_dict(), random_actor(2).state_dict()
    _, objective = weight_matching(spec_for(random_actor(1)), a, b, max_iter=1)
    assert len(objective) == 2


def test_weight_matching_rejects_mismatched_models():
    actor = random_actor(0)
    spec = spec_for(actor)
    wide_head = dict(actor.state_dict(), **{"head.weight": torch.zeros(3, 512), "head.bias": torch.zeros(3)})
    with pytest.raises(ValueError, match=r"'head.weight' has shape \(15, 512\) in model 0 but \(3, 512\)"):
        weight_matching(spec, actor.state_dict(), wide_head)
    with pytest.raises(ValueError, match="not in the permutation spec"):
        weight_matching(spec, actor.state_dict(), random_dt(0).state_dict())
    with pytest.raises(ValueError, match="max_iter"):
        weight_matching(spec, actor.state_dict(), actor.state_dict(), max_iter=0)
