"""Activation matching, the logit ensemble and the diagnostics (L2 per layer, interpolation
paths before and after alignment)."""

import pytest
import torch
from merge_helpers import frames, random_actor, random_dt, trained_actors

from crl_merge.merge import (LogitEnsemble, activation_matching, apply_permutation, barrier, interpolation_path,
                             l2_distance, layer_distances, random_permutation, spec_for)
from crl_merge.models import make_actor


def test_activation_matching_recovers_a_permuted_copy_from_game_frames():
    """Every unit that fires on the frames is matched to its copy; units that never fire
    carry no signal and may be paired among themselves in any order."""
    (actor, _), _ = trained_actors()
    spec = spec_for(actor)
    scrambled = random_permutation(spec, 4)
    copy = make_actor().eval()
    copy.load_state_dict(apply_permutation(spec, scrambled, actor.state_dict()))
    obs = frames()
    found = activation_matching(spec, actor, copy, obs, batch_size=100)
    with torch.no_grad():
        fires = {p: f.transpose(0, 1).reshape(f.shape[1], -1).amax(1) > 0 for p, f in actor.features(obs).items()}
    for p in spec.sizes:
        assert torch.equal(scrambled[p][found[p]][fires[p]], torch.arange(spec.sizes[p])[fires[p]]), p
    restored = make_actor().eval()
    restored.load_state_dict(apply_permutation(spec, found, copy.state_dict()))
    with torch.no_grad():
        assert (restored(obs) - actor(obs)).abs().max() <= 1e-5


def test_activation_matching_of_trained_actors_keeps_b_and_brings_it_closer():
    (a, b), _ = trained_actors()
    spec = spec_for(a)
    aligned = make_actor().eval()
    aligned.load_state_dict(apply_permutation(spec, activation_matching(spec, a, b, frames()), b.state_dict()))
    with torch.no_grad():
        assert (aligned(frames()[:32]) - b(frames()[:32])).abs().max() <= 1e-5
    assert l2_distance(a.state_dict(), aligned.state_dict()) < l2_distance(a.state_dict(), b.state_dict())


def test_activation_matching_needs_features():
    dt = random_dt(0)
    with pytest.raises(ValueError, match="features"):
        activation_matching(spec_for(dt), dt, dt, torch.zeros(1))


def test_logit_ensemble_averages_member_outputs():
    a, b = random_actor(1), random_actor(2)
    obs = frames()[:8]
    with torch.no_grad():
        torch.testing.assert_close(LogitEnsemble([a, b])(obs), (a(obs) + b(obs)) / 2)
        torch.testing.assert_close(LogitEnsemble([a, b], weights=[3, 1])(obs), 0.75 * a(obs) + 0.25 * b(obs))
    with pytest.raises(ValueError, match="at least one member"):
        LogitEnsemble([])


def test_layer_distances():
    a, b = random_actor(1).state_dict(), random_actor(2).state_dict()
    distances = layer_distances(a, b)
    assert list(distances) == ["conv1", "conv2", "conv3", "fc", "head"]
    expected = torch.cat([(a[n].double() - b[n].double()).reshape(-1) for n in ("fc.weight", "fc.bias")]).norm()
    assert distances["fc"] == pytest.approx(float(expected), rel=1e-9)
    assert l2_distance(a, a) == 0.0
    assert list(layer_distances(random_dt(0).state_dict(), random_dt(1).state_dict(), "mlp1")) == [
        "transformer.blocks.1.mlp.fc", "transformer.blocks.1.mlp.proj"]


def test_alignment_removes_the_barrier_between_a_model_and_its_permuted_copy():
    actor = random_actor(5)
    spec = spec_for(actor)
    copy = apply_permutation(spec, random_permutation(spec, 6), actor.state_dict())
    obs = frames()[:64]
    with torch.no_grad():
        logits = actor(obs)

    def closeness(state_dict):  # stands in for a mean return: higher is better, 0 at the actor
        model = make_actor().eval()
        model.load_state_dict(state_dict)
        with torch.no_grad():
            return -float((model(obs) - logits).abs().max())

    path = interpolation_path(actor.state_dict(), copy, closeness, alphas=[0.0, 0.5, 1.0], spec=spec)
    assert [row["alpha"] for row in path] == [0.0, 0.5, 1.0]
    assert all(row["aligned"] == 0.0 for row in path)
    assert path[0]["naive"] >= -1e-5 and path[2]["naive"] == 0.0 and path[1]["naive"] < -0.01
    assert barrier(path, "aligned") == 0.0 and barrier(path, "naive") > 0.0
    with pytest.raises(ValueError, match="alpha = 0 and alpha = 1"):
        barrier(path[:2])
