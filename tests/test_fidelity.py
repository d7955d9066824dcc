"""Our games against the real Procgen, run live: the same open-loop policies, thousands of
episodes each, compared on mean return, mean episode length and completion rate."""

import pytest

import envs
from envs.episodes import collect_episodes
from envs.policies import make_policy
from envs.procgen_ref import ProcgenRef

EPISODES = 4000  # ≥ 2000 as required; 4000 keeps sampling noise (≈2-3%) well inside the 10% band


def stats(env, policy):
    return collect_episodes(env, make_policy(policy, env.num_envs, seed=0), EPISODES).summary()


def assert_close(name, ours, real, rel, absolute=0.0):
    tolerance = max(rel * abs(real), absolute)
    assert abs(ours - real) <= tolerance, f"{name}: ours {ours:.3f} vs real {real:.3f} (tolerance {tolerance:.3f})"


@pytest.mark.parametrize("task, policy", [
    ("starpilot/original", "random"),
    ("starpilot/original", "fire"),
    ("starpilot/original", "zigzag"),
    ("fruitbot/original", "random"),
    ("fruitbot/original", "noop"),
    ("fruitbot/original", "zigzag"),
])
def test_matches_the_real_game(task, policy):
    ours = stats(envs.make(task, num_envs=64, seed=0), policy)
    real = stats(ProcgenRef(task, num_envs=64, seed=0), policy)
    print(f"\n{task} {policy}: ours {ours}\n{' ' * len(task)} real {real}")
    near_zero = abs(real["mean_return"]) < 1.0
    assert_close("mean return", ours["mean_return"], real["mean_return"], 0.10, 0.3 if near_zero else 0.0)
    assert_close("mean length", ours["mean_length"], real["mean_length"], 0.10)
    assert_close("completion rate", ours["completion_rate"], real["completion_rate"], 0.10, 0.02)
    if policy == "random":
        assert ours["completion_rate"] == real["completion_rate"] == 0.0


def test_super_task_random_anchor():
    """The thesis reports 2.31 ± 2.18 for a random agent on its Starpilot super-task."""
    ours = stats(envs.make("starpilot/super", num_envs=64, seed=0), "random")
    assert_close("starpilot/super random return", ours["mean_return"], 2.31, 0.10)
