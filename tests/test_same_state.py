"""Our engine against the real Procgen on the same levels: our level written into the real
game's saved state (gym3 ``get_state``/``set_state``), both stepped with the same actions
for whole episodes. Rules must agree exactly: every step's reward and done, every
episode's return, length and completion; the frames within a pixel budget (at most 1% of
the lit pixels differ over the episodes, and no frame has more than 48 differing pixels,
a count since some frames have few lit ones)."""

import numpy as np
import pytest
import torch

import envs
from envs.procgen_ref import ProcgenRef
from envs.procgen_state import ProcgenState, run_same_state, write_level


@pytest.mark.parametrize("game", ["starpilot", "fruitbot"])
def test_states_read_and_write_back_byte_for_byte(game):
    real = ProcgenRef(f"{game}/original", num_envs=4, seed=5)
    real.reset()
    for step in range(60):  # at reset, and with bullets, ships, keys in flight
        if step % 20 == 0:
            for data in real.env.get_state():
                assert ProcgenState(data).to_bytes() == data
        real.step(torch.full((4,), 9 if step % 3 else 5))


@pytest.mark.parametrize("game", ["starpilot", "fruitbot"])
def test_a_written_level_is_what_the_real_game_then_holds(game):
    ours = envs.make(f"{game}/original", num_envs=3, seed=2)
    ours.reset()
    real = ProcgenRef(f"{game}/original", num_envs=3, seed=2)
    real.reset()
    written = [write_level(s, ours.game, ours.state, i) for i, s in enumerate(real.env.get_state())]
    assert all(w != s for w, s in zip(written, real.env.get_state()))  # the levels were different
    real.env.set_state(written)
    assert real.env.get_state() == written
    held = ProcgenState(written[0])
    if game == "starpilot":  # the agent alone, the whole schedule waiting, the first ship at the back
        assert len(held.entities) == 1 and len(held.spawners) == int((ours.state["sched_t"][0] < 1 << 40).sum())
        assert held.spawners["spawn_time"][-1] == ours.state["sched_t"][0, 0]
    else:  # agent, 10 barrier pieces, 10 presents, then the fruits and treats
        assert list(held.entities["type"][:21]) == [0] + [1] * 10 + [12] * 10


# the open-loop policies of the fidelity tests (tests/test_fidelity.py)
CASES = [("starpilot/original", "random", 4), ("starpilot/original", "fire", 4), ("starpilot/original", "zigzag", 4),
         ("fruitbot/original", "random", 16), ("fruitbot/original", "noop", 16), ("fruitbot/original", "zigzag", 16)]


@pytest.mark.parametrize("task, policy, episodes", CASES, ids=[f"{t}-{p}" for t, p, _ in CASES])
def test_same_levels_play_the_same_episodes(task, policy, episodes):
    r = run_same_state(task, policy, num_envs=4, episodes=episodes, seed=1)
    assert r["steps_agree"]
    np.testing.assert_array_equal(r["returns"], r["real_returns"])
    np.testing.assert_array_equal(r["lengths"], r["real_lengths"])
    np.testing.assert_array_equal(r["completed"], r["real_completed"])
    assert len(r["returns"]) == episodes
    assert r["differing"].sum() <= 0.01 * r["lit"].sum(), r["differing"].sum() / r["lit"].sum()
    assert r["differing"].max() <= 48
