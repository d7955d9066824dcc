"""Behaviour training (real stable-baselines3 SAC and TD3 on real MuJoCo, a few hundred
steps): resume checkpoints, continuing a folder, what a crash leaves behind, the settings
check, and publishing TD3's snapshots."""

from __future__ import annotations

import csv

import pytest

from crl_merge.dt.behaviour import (BehaviourTrainingError, SACConfig, TD3Config, load_policy_set, publish,
                                    read_snapshots, snapshot_name, train_behaviour)
from crl_merge.dt.behaviour_actor import NoisyDeterministicActor
from envs.mujoco.tasks import get_task

TINY = SACConfig(buffer_size=2_000, learning_starts=100, batch_size=16, hidden=(8, 8))
TINY_TD3 = TD3Config(buffer_size=2_000, learning_starts=100, batch_size=16, hidden=(8, 8))
SETTINGS = dict(seed=0, snapshot_every=100, eval_episodes=1, config=TINY, checkpoint_every=200, log=lambda *_: None)


def curve_steps(folder) -> list[int]:
    with open(folder / "curve.csv", newline="") as f:
        return [int(r["step"]) for r in csv.DictReader(f)]


@pytest.fixture(scope="module")
def hopper():
    return get_task("hopper")


@pytest.mark.parametrize("config", [TINY, TINY_TD3], ids=["sac", "td3"])
def test_continues_from_the_checkpoint_and_redoes_what_a_crash_left(tmp_path, hopper, config):
    settings = {**SETTINGS, "config": config}
    folder = train_behaviour(hopper, tmp_path / "run", 200, **settings)
    assert curve_steps(folder) == [100, 200]
    checkpoint = config.load(folder / "resume" / "model.zip", hopper.make(), "cpu")
    assert checkpoint.num_timesteps == 200
    # what a crash after step 300's snapshot, before the next checkpoint, leaves behind
    with open(folder / "curve.csv", "a", newline="") as f:
        f.write("300,,1.0,0.6,10.0,1.0,1.0\n")
    stale = folder / "snapshots" / f"{snapshot_name(300)}.json"
    stale.write_text("{}")
    train_behaviour(hopper, folder, 400, **settings)
    assert curve_steps(folder) == [100, 200, 300, 400]
    assert [s["step"] for s in read_snapshots(folder)] == [100, 200, 300, 400]  # step 300 made again
    resumed = config.load(folder / "resume" / "model.zip", hopper.make(), "cpu")
    assert resumed.num_timesteps == 400
    resumed.load_replay_buffer(folder / "resume" / "replay_buffer.pkl")
    # the first run's transitions were carried over; SB3 calls back before it stores the step's
    # own transition, so each checkpoint lacks its last one: 199 + 199
    assert resumed.replay_buffer.size() == 398


def test_a_finished_folder_is_left_alone(tmp_path, hopper):
    folder = train_behaviour(hopper, tmp_path / "run", 200, **SETTINGS)
    before = (folder / "curve.csv").read_text()
    train_behaviour(hopper, folder, 200, **SETTINGS)
    assert (folder / "curve.csv").read_text() == before


def test_other_settings_are_refused_by_name(tmp_path, hopper):
    folder = train_behaviour(hopper, tmp_path / "run", 100, **SETTINGS)
    wider = {**SETTINGS, "config": SACConfig(buffer_size=2_000, learning_starts=100, batch_size=16, hidden=(16, 16))}
    with pytest.raises(BehaviourTrainingError, match=r"sac\.hidden: \[8, 8\] in the folder, \[16, 16\] asked for"):
        train_behaviour(hopper, folder, 200, **wider)


def test_another_algorithm_is_refused_by_name(tmp_path, hopper):
    folder = train_behaviour(hopper, tmp_path / "run", 100, **SETTINGS)
    with pytest.raises(BehaviourTrainingError, match=r"td3: '<absent>' in the folder"):
        train_behaviour(hopper, folder, 200, **{**SETTINGS, "config": TINY_TD3})


def test_td3_snapshots_are_published_as_noisy_deterministic_actors(tmp_path, hopper):
    folder = train_behaviour(hopper, tmp_path / "run", 300, **{**SETTINGS, "config": TINY_TD3})
    publish(hopper, folder, tmp_path / "policies", learning_starts=TINY_TD3.learning_starts)
    policies = load_policy_set(tmp_path / "policies", "hopper")
    assert policies.record["algorithm"] == "TD3 (stable-baselines3)"
    for actor in (policies.expert, policies.medium):
        assert isinstance(actor, NoisyDeterministicActor) and actor.noise == TINY_TD3.action_noise


def test_snapshots_without_a_checkpoint_are_not_overwritten(tmp_path, hopper):
    folder = train_behaviour(hopper, tmp_path / "run", 100, **SETTINGS)
    for path in (folder / "resume").iterdir():
        path.unlink()
    with pytest.raises(BehaviourTrainingError, match="no resume checkpoint"):
        train_behaviour(hopper, folder, 200, **SETTINGS)
    assert [s["step"] for s in read_snapshots(folder)] == [100]


def test_checkpoints_fall_on_snapshots(tmp_path, hopper):
    with pytest.raises(ValueError, match="multiple of snapshot_every"):
        train_behaviour(hopper, tmp_path / "run", 200, **{**SETTINGS, "checkpoint_every": 150})


def test_the_command_trains_without_publishing(tmp_path):
    from crl_merge.cli import main

    policies = tmp_path / "policies"
    # 200 steps: inside SAC's 10k random warm-up, so no snapshot, but a resume checkpoint at the end
    assert main(["dt-policies", "hopper", "--steps", "200", "--training-dir", str(tmp_path / "training"),
                 "--policies", str(policies), "--no-publish"]) == 0
    assert (tmp_path / "training" / "hopper" / "resume" / "model.zip").is_file()
    assert not policies.exists()
