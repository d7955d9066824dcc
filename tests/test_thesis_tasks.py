"""The thesis tasks' rules, pinned by scripted policies on whole episodes of ``envs.make``.

The thesis's code (AleksTat/model-merging-rl, procgen_games/starpilot*.cpp) adds its survival
bonus in ``game_step`` on every step, the one that kills the agent included, and ends
``starpilot_dodge`` at step 200 instead of 500. Fruitbot's rules (+10 once, item counts) are
pinned in test_fruitbot.py on hand-built levels.
"""

import numpy as np
import pytest
import torch

import envs
from envs.episodes import collect_episodes
from envs.policies import make_policy


def test_super_noop_returns_are_the_survival_bonus_of_every_step():
    """No-op never fires, so the return is the bonus alone: 0.01 per step, the death step included."""
    env = envs.make("starpilot/super", num_envs=64, seed=0)
    stats = collect_episodes(env, make_policy("noop", 64), 128)
    assert not stats.completed.any()
    assert stats.lengths.min() >= 12
    # to 1e-6 of the return (what remains is float32 summation over up to ~150 steps)
    np.testing.assert_allclose(stats.returns, 0.01 * stats.lengths, rtol=1e-6, atol=0)


def test_dodge_level_ends_300_steps_before_super_with_the_same_finish(tmp_path):
    """Without enemies, always-right waits at the right wall for the rocket: it enters at the level
    end (500 in super, 200 in dodge) and is touched one step later."""
    split = tmp_path / "quiet.yaml"
    split.write_text("tasks:\n"
                     "  super:\n    base: starpilot/super\n    overrides: {spawn_enemies: false}\n"
                     "  dodge:\n    base: starpilot/dodge\n    overrides: {spawn_enemies: false}\n")
    runs = {}
    for name, bonus in [("super", 0.01), ("dodge", 0.1)]:
        env = envs.make(f"{split}#{name}", num_envs=8, seed=0)
        stats = collect_episodes(env, make_policy("right", 8), 8)
        assert stats.completed.all()
        assert len(set(stats.lengths.tolist())) == 1
        np.testing.assert_allclose(stats.returns - bonus * stats.lengths, 10.0, atol=1e-4)  # the +10 finish
        runs[name] = int(stats.lengths[0])
    assert runs == {"super": 501, "dodge": 201}
    assert runs["super"] - runs["dodge"] == 300


@pytest.mark.parametrize("task, overrides, steps", [
    ("starpilot/dodge", {"spawn_enemies": False}, 290),  # the rocket enters at 200 and sweeps every agent up
    ("starpilot/dodge", {}, 120),
    ("fruitbot/super", {"timeout": 40}, 100),  # present sprites and the +10-once rule in fresh levels
])
def test_the_sync_free_path_plays_the_thesis_rules_alike(task, overrides, steps):
    """The path other devices take (no host synchronisation) against the CPU default."""
    t = envs.get_task(task, overrides)
    fast, free = envs.VecGame(t, num_envs=6, seed=2), envs.VecGame(t, num_envs=6, seed=2, sync_free=True)
    gen = torch.Generator().manual_seed(0)
    fast.reset(), free.reset()
    for _ in range(steps):
        action = torch.randint(0, 15, (6,), generator=gen)
        a, b = fast.step(action), free.step(action)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and torch.equal(a[2], b[2])
        assert all(torch.equal(a[3][k], b[3][k]) for k in a[3])
