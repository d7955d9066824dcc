"""Which finished episodes an evaluation counts: ``per_env`` (each environment's first ones)
or ``thesis`` (the first N to finish across the environments, in finishing order)."""

import pytest

import envs
from envs.episodes import collect_episodes
from envs.policies import make_policy


def test_the_thesis_rule_takes_the_first_episodes_to_finish():
    """Same levels and actions: the thesis rule's episodes are the per-env run's episodes
    sorted by the step they finish at (ties in environment order)."""
    make = lambda: envs.make("starpilot/super", num_envs=16, seed=3)  # noqa: E731
    per_env = collect_episodes(make(), make_policy("random", 16, seed=0), 16 * 3, rule="per_env")
    thesis = collect_episodes(make(), make_policy("random", 16, seed=0), 16, rule="thesis")
    lengths = per_env.lengths.reshape(16, 3)  # environment-major: each env's first three episodes
    finish = lengths.cumsum(1)
    order = sorted(((finish[e, k], e, k) for e in range(16) for k in range(3)))[:16]
    assert order[-1][0] < finish[:, 2].min()  # no episode beyond the third of an env is among them
    assert thesis.lengths.tolist() == [lengths[e, k] for _, e, k in order]
    assert thesis.returns.tolist() == [per_env.returns.reshape(16, 3)[e, k] for _, e, k in order]
    assert thesis.lengths.mean() < per_env.lengths[:: 3].mean()  # short episodes finish first: the bias


def test_bad_rules_and_counts_are_refused():
    env = envs.make("starpilot/super", num_envs=4)
    with pytest.raises(ValueError, match=r"episode rule 'last'; allowed: \['per_env', 'thesis'\]"):
        collect_episodes(env, make_policy("random", 4), 4, rule="last")
    with pytest.raises(ValueError, match="episodes must be ≥ 1, got 0"):
        collect_episodes(env, make_policy("random", 4), 0)
