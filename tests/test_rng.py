"""The counter-based RNG and the level-seed streams."""

import torch

from envs import rng


def test_draws_are_a_pure_function_of_key_stream_and_index():
    key = torch.tensor([0, 1, 2**31 - 2])
    a, b = rng.hash_bits(key, 3, 8), rng.hash_bits(key, 3, 8)
    assert torch.equal(a, b)
    assert not torch.equal(a, rng.hash_bits(key, 4, 8))
    assert torch.equal(rng.hash_bits(key, 3, 4), a[:, :4])
    assert ((a >= 0) & (a < 2**32)).all()


def test_uniform_and_randint_ranges_and_moments():
    u = rng.uniform(torch.arange(2000), 0, 50)
    assert u.dtype == torch.float32 and u.min() >= 0 and u.max() < 1
    assert abs(u.mean().item() - 0.5) < 0.01
    r = rng.randint(torch.arange(2000), 1, 50, 10, 30)
    assert r.min() == 10 and r.max() == 29
    counts = torch.bincount(r.flatten() - 10)
    assert counts.min() > 0.8 * counts.float().mean()


def test_level_seeds_follow_procgen_semantics():
    env = torch.arange(64).repeat_interleave(20)
    episode = torch.arange(20).repeat(64)
    unbounded = rng.level_seeds(0, 0, env, episode, num_levels=0, start_level=0)
    assert unbounded.min() >= 0 and unbounded.max() < 2**31 - 1 and unbounded.unique().numel() == unbounded.numel()
    bounded = rng.level_seeds(0, 0, env, episode, num_levels=10, start_level=100)
    assert set(bounded.tolist()) == set(range(100, 110))
    evaluation = rng.level_seeds(0, 1, env, episode, num_levels=0, start_level=0)
    other_seed = rng.level_seeds(1, 0, env, episode, num_levels=0, start_level=0)
    assert not set(evaluation.tolist()) & set(unbounded.tolist())
    assert not set(other_seed.tolist()) & set(unbounded.tolist())
