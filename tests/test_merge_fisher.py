"""Diagonal Fisher of a policy from its own action distribution, checked against closed
forms for the output biases, and Fisher merging of two trained actors."""

import pytest
import torch
from merge_helpers import dt_batch, frames, random_dt, trained_actors

from crl_merge.merge import diagonal_fisher, dt_diagonal_fisher, fisher_merge


def test_actor_fisher_of_the_logit_bias_matches_its_closed_form():
    """For logits z = … + b: ∇_b log π(a|s) = e_a − π(·|s), whose squared norm has
    expectation 1 − Σ_j π_j² over a ~ π; the sampled estimate must agree (a squared batch
    gradient would come out about N times smaller)."""
    (actor, _), _ = trained_actors()
    obs = frames()
    fisher = diagonal_fisher(actor, obs, seed=0)
    assert set(fisher) == set(dict(actor.named_parameters()))
    assert all(f.shape == p.shape and (f >= 0).all() for f, p in zip(fisher.values(), actor.parameters()))
    with torch.no_grad():
        probs = torch.softmax(actor(obs), dim=-1)
    expected = float((1 - probs.square().sum(1)).mean())
    assert float(fisher["head.bias"].sum()) == pytest.approx(expected, rel=0.2)  # sampling error ≈ 7 %
    assert all(torch.equal(fisher[k], f) for k, f in diagonal_fisher(actor, obs, seed=0).items())


def test_exact_actor_fisher_of_the_logit_bias_is_its_closed_form():
    """Taken over all 15 actions, the expectation has no sampling error: per state and
    logit j, E_a[(1[a = j] − π_j)²] = π_j (1 − π_j)."""
    (actor, _), _ = trained_actors()
    obs = frames()[:16]
    fisher = diagonal_fisher(actor, obs, exact=True)
    with torch.no_grad():
        probs = torch.softmax(actor(obs).double(), dim=-1)
    torch.testing.assert_close(fisher["head.bias"].double(), (probs * (1 - probs)).mean(0), rtol=1e-4, atol=1e-7)


def test_dt_fisher_of_the_action_bias_matches_its_closed_form():
    """μ = tanh(z + b): per real position and action dimension the Fisher of b_j is
    (1 − μ_j²)², averaged over real positions."""
    dt = random_dt(0)
    states, actions, returns, timesteps, mask = dt_batch(0, batch=48)
    fisher = dt_diagonal_fisher(dt, "hopper", states, actions, returns, timesteps, mask, seed=1)
    with torch.no_grad():
        mu = dt("hopper", states, actions, returns, timesteps, mask)
    expected = ((1 - mu.square()).square() * mask[..., None]).sum((0, 1)) / mask.sum()
    torch.testing.assert_close(fisher["io.hopper.predict_action.bias"], expected, rtol=0.25, atol=0)
    assert not fisher["io.walker2d.predict_action.bias"].any()  # another environment's head is not used
    assert dt.training is False


def test_fisher_merge_of_trained_actors_stays_between_them():
    (a, b), _ = trained_actors()
    obs = frames()[:64]
    merged = fisher_merge([a.state_dict(), b.state_dict()], [diagonal_fisher(a, obs), diagonal_fisher(b, obs)])
    for n, value in merged.items():
        low = torch.minimum(a.state_dict()[n], b.state_dict()[n])
        high = torch.maximum(a.state_dict()[n], b.state_dict()[n])
        assert ((value >= low - 1e-6) & (value <= high + 1e-6)).all(), n


def test_fisher_needs_states():
    with pytest.raises(ValueError, match="no states"):
        diagonal_fisher(trained_actors()[0][0], frames()[:0])
