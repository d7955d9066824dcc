"""Permutation specs: a permutation applied through the spec leaves the network's function
unchanged (NatureCNN and Decision Transformer), and malformed specs or permutations fail."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from merge_helpers import dt_batch, frames, random_actor, random_dt

from crl_merge.merge import PermutationSpec, apply_permutation, identity_permutation, random_permutation, spec_for
from crl_merge.merge.specs import check_permutation
from crl_merge.models import DecisionTransformer, DTConfig, make_actor

SEEDS = st.integers(0, 2**16)


@settings(max_examples=10, deadline=None, derandomize=True)
@given(model_seed=SEEDS, perm_seed=SEEDS)
def test_permuted_nature_cnn_computes_the_same_function(model_seed, perm_seed):
    actor = random_actor(model_seed)
    spec = spec_for(actor)
    perm = random_permutation(spec, perm_seed)
    permuted = make_actor().eval()
    permuted.load_state_dict(apply_permutation(spec, perm, actor.state_dict()))
    obs = frames()[:16]
    with torch.no_grad():
        assert (permuted(obs) - actor(obs)).abs().max() <= 1e-5
        features, permuted_features = actor.features(obs), permuted.features(obs)
    for layer, units in perm.items():  # the hidden units themselves are the permuted ones
        torch.testing.assert_close(permuted_features[layer], features[layer][:, units], atol=1e-5, rtol=0)
    assert not torch.equal(permuted.conv3.weight, actor.conv3.weight)


@settings(max_examples=10, deadline=None, derandomize=True)
@given(model_seed=SEEDS, perm_seed=SEEDS, n_layer=st.sampled_from([2, 3]), n_head=st.sampled_from([1, 2]))
def test_permuted_decision_transformer_computes_the_same_function(model_seed, perm_seed, n_layer, n_head):
    dt = random_dt(model_seed, n_layer=n_layer, n_head=n_head)
    spec = spec_for(dt)
    perm = random_permutation(spec, perm_seed)
    permuted = random_dt(0, n_layer=n_layer, n_head=n_head)
    permuted.load_state_dict(apply_permutation(spec, perm, dt.state_dict()))
    for env in ("hopper", "walker2d"):  # every environment's projections follow the residual stream
        batch = dt_batch(model_seed, env)
        with torch.no_grad():
            assert (permuted(env, *batch) - dt(env, *batch)).abs().max() <= 1e-5
    assert not torch.equal(permuted.transformer.blocks[0].attn.q.weight, dt.transformer.blocks[0].attn.q.weight)


def test_nature_cnn_spec_moves_fc_columns_in_blocks_of_conv3_channels():
    spec = spec_for({"name": "nature_cnn", "out_dim": 15})
    perm = identity_permutation(spec)
    perm["conv3"] = torch.arange(64).roll(1)  # channel i of the result is channel i - 1
    fc = apply_permutation(spec, perm, make_actor(0).state_dict())["fc.weight"]
    original = make_actor(0).fc.weight
    torch.testing.assert_close(fc[:, 16:32], original[:, 0:16], atol=0, rtol=0)
    torch.testing.assert_close(fc[:, 0:16], original[:, 1008:1024], atol=0, rtol=0)


def test_decision_transformer_spec_ties_query_key_and_value_output():
    spec = spec_for(DecisionTransformer(DTConfig(envs={"hopper": (11, 3)}, n_layer=1, n_head=2, n_embd=8)))
    block = "transformer.blocks.0.attn"
    assert spec.axes[f"{block}.q.weight"][0] == spec.axes[f"{block}.k.weight"][0] == ("blocks.0.qk", "blocks.0.heads")
    assert spec.axes[f"{block}.v.weight"][0] == spec.axes[f"{block}.o.weight"][1] == ("blocks.0.vo", "blocks.0.heads")
    assert spec.groups["blocks.0.qk"] == 4 and spec.groups["residual"] == 8
    assert spec.axes["io.hopper.embed_state.weight"] == (("residual",), ())


def test_random_permutations_keep_units_within_their_heads():
    spec = spec_for(DecisionTransformer(DTConfig(envs={"hopper": (11, 3)}, n_layer=1, n_head=4, n_embd=16)))
    perm = random_permutation(spec, 0)
    assert torch.equal(perm["blocks.0.qk"] // 4, torch.arange(16) // 4)
    check_permutation(spec, perm)


def test_spec_for_a_multi_environment_dt_covers_every_environment():
    a = random_dt(0).cfg.to_dict()
    b = dict(a, envs={"halfcheetah": [17, 6]})
    spec = spec_for({"name": "decision_transformer", "config": a}, {"name": "decision_transformer", "config": b})
    assert "io.halfcheetah.embed_state.weight" in spec.axes and "io.hopper.embed_state.weight" in spec.axes


@pytest.mark.parametrize("records, message", [
    ([], "at least one"),
    ([{"name": "nature_cnn", "out_dim": 15}, {"name": "decision_transformer", "config": {}}], "different architectures"),
    ([{"name": "mlp"}], "unknown architecture .mlp.; known"),
])
def test_spec_for_rejects_unknown_or_mixed_architectures(records, message):
    with pytest.raises(ValueError, match=message):
        spec_for(*records)


def test_spec_for_rejects_transformers_of_different_shapes():
    small, wide = random_dt(0, n_embd=16).cfg.to_dict(), random_dt(0, n_embd=32).cfg.to_dict()
    with pytest.raises(ValueError, match="different shapes"):
        spec_for({"name": "decision_transformer", "config": small}, {"name": "decision_transformer", "config": wide})


@pytest.mark.parametrize("sizes, axes, nested, message", [
    ({"p": 4}, {"w": ("q",)}, {}, "no size"),
    ({"p": 4}, {"w": ("p", "p")}, {}, "only one of its axes"),
    ({"p": 4, "h": 3}, {"w": (("p", "h"),)}, {"h": ("p",)}, "cannot be nested"),
    ({"p": 4, "h": 2}, {"w": (("h", "p"),)}, {"h": ("p",)}, "just before"),
])
def test_malformed_specs_are_rejected(sizes, axes, nested, message):
    with pytest.raises(ValueError, match=message):
        PermutationSpec.build(sizes, axes, nested)


def test_invalid_permutations_and_foreign_state_dicts_are_rejected():
    spec = spec_for({"name": "nature_cnn", "out_dim": 15})
    state = make_actor(0).state_dict()
    perm = identity_permutation(spec)
    with pytest.raises(ValueError, match="not a permutation"):
        apply_permutation(spec, perm | {"fc": torch.zeros(512, dtype=torch.long)}, state)
    with pytest.raises(ValueError, match="do not match"):
        apply_permutation(spec, {"fc": perm["fc"]}, state)
    with pytest.raises(ValueError, match="not in the permutation spec"):
        apply_permutation(spec, perm, random_dt(0).state_dict())
    dt_spec = spec_for(random_dt(0))
    grouped = identity_permutation(dt_spec)
    grouped["blocks.0.qk"] = torch.arange(32).roll(1)
    with pytest.raises(ValueError, match="across its groups"):
        check_permutation(dt_spec, grouped)
