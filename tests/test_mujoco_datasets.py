"""D4RL-layout datasets: generation from behaviour policies (real MuJoCo), the HDF5
writer/loader round trip, Minari files, trajectory splitting and normalised scores."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from crl_merge.dt.behaviour_actor import NoisyDeterministicActor, SquashedGaussianActor, load_actor, save_actor
from crl_merge.dt.behaviour import choose_snapshots, load_policy_set, medium_target, publish, read_snapshots
from envs.mujoco.collect import collect
from envs.mujoco.datasets import (DatasetError, OfflineDataset, concatenate, load_d4rl_hdf5, load_dataset,
                                  load_minari, write_d4rl_hdf5)
from crl_merge.dt.datasets import dataset_path, ensure_dataset, generate
from envs.mujoco.tasks import TASKS, get_task, normalized_score


def fake_training(folder, task, returns_by_step, seed=0):
    """A behaviour-training folder whose snapshots are fresh actors with the given evaluations."""
    for step, eval_return in returns_by_step.items():
        torch.manual_seed(seed + step)
        actor = SquashedGaussianActor(task.state_dim, task.act_dim, (16, 16))
        save_actor(folder / "snapshots" / f"step_{step:07d}", actor, task=task.name, step=step, seed=seed,
                   eval_return=eval_return, eval_length=100.0, eval_episodes=2)
    return folder


@pytest.fixture(scope="module")
def policies(tmp_path_factory):
    root = tmp_path_factory.mktemp("policies")
    task = get_task("hopper")
    training = fake_training(root / "training", task, {10: 5.0, 20: 1500.0, 30: 900.0, 40: 3000.0})
    publish(task, training, root / "published", medium_score=45.0, learning_starts=10)
    return root / "published"


def test_normalised_score_uses_d4rl_reference_returns():
    assert normalized_score("hopper", -20.272305) == pytest.approx(0.0)
    assert normalized_score("hopper", 3234.3) == pytest.approx(100.0)
    assert normalized_score("walker2d", [1.629008, 4592.3]) == pytest.approx([0.0, 100.0])
    hc = get_task("halfcheetah")
    assert hc.normalized_score(hc.raw_return(42.5)) == pytest.approx(42.5)
    with pytest.raises(ValueError, match="known: \\['halfcheetah', 'hopper', 'walker2d'\\]"):
        get_task("ant")


def test_task_spaces_match_gymnasium():
    for task in TASKS.values():
        env = task.make(seed=0)
        assert env.observation_space.shape == (task.state_dim,) and env.action_space.shape == (task.act_dim,)
        assert env.spec.max_episode_steps == task.max_episode_steps


def test_actor_matches_stable_baselines3_sac():
    from stable_baselines3 import SAC

    task = get_task("hopper")
    model = SAC("MlpPolicy", task.make(), policy_kwargs={"net_arch": [32, 32]}, seed=0, device="cpu")
    actor = SquashedGaussianActor.from_sb3(model.actor, model.action_space)
    obs = np.random.default_rng(0).normal(size=(5, task.state_dim)).astype(np.float32)
    expected, _ = model.predict(obs, deterministic=True)
    np.testing.assert_allclose(actor.act(torch.from_numpy(obs), deterministic=True).numpy(), expected, atol=1e-6)


def test_td3_actor_matches_stable_baselines3_td3():
    from stable_baselines3 import TD3

    task = get_task("hopper")
    model = TD3("MlpPolicy", task.make(), policy_kwargs={"net_arch": [32, 32]}, seed=0, device="cpu")
    actor = NoisyDeterministicActor.from_sb3(model.actor, model.action_space, noise=0.1)
    obs = np.random.default_rng(0).normal(size=(5, task.state_dim)).astype(np.float32)
    expected, _ = model.predict(obs, deterministic=True)
    np.testing.assert_allclose(actor.act(torch.from_numpy(obs), deterministic=True).numpy(), expected, atol=1e-6)


def test_td3_actor_explores_with_clipped_noise_of_its_scale():
    actor = NoisyDeterministicActor(11, 3, (8,), noise=0.1, action_low=[-1, -2, -3], action_high=[1, 2, 3])
    obs = torch.zeros(20_000, 11)
    half_range = torch.tensor([1.0, 2.0, 3.0])
    clean = actor.act(obs, deterministic=True) / half_range
    noisy = actor.act(obs, generator=torch.Generator().manual_seed(0)) / half_range
    assert noisy.abs().max() <= 1.0
    inside = (clean.abs() < 0.5).all(dim=1)  # far enough from the bounds that clipping is rare
    torch.testing.assert_close((noisy - clean)[inside].std(dim=0), torch.full((3,), 0.1), atol=0.005, rtol=0)


def test_actor_round_trip(tmp_path):
    actor = SquashedGaussianActor(11, 3, (8,), [-1, -2, -3], [1, 2, 3])
    save_actor(tmp_path / "a", actor, note="x")
    loaded, meta = load_actor(tmp_path / "a")
    obs = torch.randn(4, 11)
    assert torch.equal(loaded.act(obs, deterministic=True), actor.act(obs, deterministic=True))
    assert meta["note"] == "x" and loaded.hidden == (8,)


def test_td3_actor_round_trip_keeps_its_kind_and_noise(tmp_path):
    actor = NoisyDeterministicActor(11, 3, (8, 4), noise=0.2, action_low=[-1, -2, -3], action_high=[1, 2, 3])
    save_actor(tmp_path / "a", actor)
    loaded, meta = load_actor(tmp_path / "a")
    obs = torch.randn(4, 11)
    assert isinstance(loaded, NoisyDeterministicActor) and loaded.noise == 0.2 and loaded.hidden == (8, 4)
    assert meta["actor"]["kind"] == "noisy_deterministic"
    assert torch.equal(loaded.act(obs, deterministic=True), actor.act(obs, deterministic=True))


def test_collect_is_seeded_and_flags_every_episode():
    task = get_task("hopper")
    actor = SquashedGaussianActor(task.state_dim, task.act_dim, (16,))
    a = collect(task, actor, steps=300, num_envs=3, seed=7)
    b = collect(task, actor, steps=300, num_envs=3, seed=7)
    c = collect(task, actor, steps=300, num_envs=3, seed=8)
    assert len(a) == 300 and np.array_equal(a.observations, b.observations) and np.array_equal(a.actions, b.actions)
    assert not np.array_equal(a.actions, c.actions)
    flags = a.terminals | a.timeouts
    assert flags[-1] and a.episode_ends()[-1] == 300
    # consecutive rows of an episode chain: next_observation of a row is the next row's observation
    inside = ~flags[:-1]
    np.testing.assert_array_equal(a.next_observations[:-1][inside], a.observations[1:][inside])
    assert sum(len(t) for t in a.trajectories()) == 300
    np.testing.assert_allclose(a.episode_returns(), [t.episode_return for t in a.trajectories()])


def test_collect_episodes_counts_whole_episodes():
    task = get_task("hopper")
    data = collect(task, SquashedGaussianActor(task.state_dim, task.act_dim, (16,)), episodes=5, num_envs=2, seed=0)
    assert len(data.episode_ends()) == 5 and (data.terminals | data.timeouts).sum() == 5


def test_hdf5_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    data = OfflineDataset(rng.normal(size=(50, 4)), rng.normal(size=(50, 2)), rng.normal(size=50),
                          np.arange(50) == 19, np.arange(50) == 49, rng.normal(size=(50, 4)), metadata={"k": [1, 2]})
    path = write_d4rl_hdf5(tmp_path / "d.hdf5", data)
    with h5py.File(path) as f:  # D4RL's layout: five arrays at the top level, float32 / bool
        assert {"observations", "actions", "rewards", "terminals", "timeouts"} <= set(f.keys())
        assert f["observations"].dtype == np.float32 and f["terminals"].dtype == bool
    back = load_dataset(path)
    for key in ("observations", "actions", "rewards", "terminals", "timeouts", "next_observations"):
        np.testing.assert_array_equal(getattr(back, key), getattr(data, key))
    assert back.metadata == {"k": [1, 2]}
    assert [len(t) for t in back.trajectories()] == [20, 30]
    assert not list(tmp_path.glob(".*tmp"))


def test_loader_errors_name_the_problem(tmp_path):
    with h5py.File(tmp_path / "bad.hdf5", "w") as f:
        f["observations"] = np.zeros((3, 2), np.float32)
    with pytest.raises(DatasetError, match="missing \\['actions', 'rewards', 'terminals', 'timeouts'\\]"):
        load_d4rl_hdf5(tmp_path / "bad.hdf5")
    with pytest.raises(DatasetError, match="no such dataset file"):
        load_d4rl_hdf5(tmp_path / "none.hdf5")
    with pytest.raises(DatasetError, match="lengths differ"):
        OfflineDataset(np.zeros((3, 2)), np.zeros((2, 1)), np.zeros(3), np.zeros(3), np.zeros(3))


def test_minari_hdf5_reads_into_the_same_layout(tmp_path):
    rng = np.random.default_rng(1)
    data_dir = tmp_path / "mujoco" / "hopper" / "medium-v0" / "data"
    data_dir.mkdir(parents=True)
    episodes = [(4, True), (3, False)]  # (steps, terminated)
    with h5py.File(data_dir / "main_data.hdf5", "w") as f:
        f.attrs["dataset_id"] = "mujoco/hopper/medium-v0"
        for i, (steps, terminated) in enumerate(episodes):
            g = f.create_group(f"episode_{i}")
            g["observations"] = rng.normal(size=(steps + 1, 11))
            g["actions"] = rng.normal(size=(steps, 3))
            g["rewards"] = rng.normal(size=steps)
            g["terminations"] = np.arange(steps) == steps - 1 if terminated else np.zeros(steps, bool)
            g["truncations"] = np.zeros(steps, bool) if terminated else np.arange(steps) == steps - 1
    data = load_dataset(data_dir.parent)
    assert len(data) == 7 and data.state_dim == 11
    assert data.terminals.tolist() == [False, False, False, True, False, False, False]
    assert data.timeouts.tolist() == [False] * 6 + [True]
    with h5py.File(data_dir / "main_data.hdf5") as f:
        np.testing.assert_allclose(data.next_observations[:4], f["episode_0/observations"][1:], rtol=1e-6)
    assert data.metadata["dataset_id"] == "mujoco/hopper/medium-v0"
    with pytest.raises(DatasetError, match="no Minari main_data.hdf5"):
        load_minari(tmp_path)


def test_publish_chooses_expert_and_medium(policies):
    record = load_policy_set(policies, "hopper").record
    assert record["expert"]["step"] == 40
    assert record["medium"]["step"] == 20  # 1500 → score 46.7, nearest 45 among the earlier snapshots
    assert record["replay_schedule"] == [[0, None], [10, "step_0000010"]]
    assert sorted(p.name for p in (policies / "hopper").glob("*.safetensors")) == [
        "step_0000010.safetensors", "step_0000020.safetensors", "step_0000040.safetensors"]


def test_choose_snapshots_needs_snapshots():
    with pytest.raises(ValueError, match="no snapshots"):
        choose_snapshots(get_task("hopper"), [], 40.0)


def test_medium_target_keeps_d4rls_medium_to_expert_ratio():
    hopper = get_task("hopper")
    assert medium_target(hopper, 120.0) == pytest.approx(44.3)  # an expert as good as D4RL's: D4RL's medium
    assert medium_target(hopper, 54.25) == pytest.approx(44.3 / 108.5 * 54.25)  # half as good: half the medium
    raw = lambda score: float(hopper.raw_return(score))  # noqa: E731
    snaps = [{"step": s, "eval_return": raw(score)} for s, score in ((10, 5), (20, 20), (30, 30), (40, 54.25))]
    expert, medium, target = choose_snapshots(hopper, snaps)
    assert (expert["step"], medium["step"]) == (40, 20) and target == pytest.approx(22.15, abs=0.01)


def test_datasets_regenerate_identically(policies, tmp_path):
    path = ensure_dataset(tmp_path, "hopper", "medium-expert", 400, 0, policies)
    assert path == dataset_path(tmp_path, "hopper", "medium-expert", 400)
    mixed = load_d4rl_hdf5(path)
    medium = load_d4rl_hdf5(dataset_path(tmp_path, "hopper", "medium", 400))
    expert = generate("hopper", "expert", 400, 0, policies)
    assert len(mixed) == 800
    np.testing.assert_array_equal(mixed.observations, concatenate([medium, expert]).observations)
    assert mixed.metadata["kind"] == "medium-expert" and mixed.metadata["rows"] == 400
    before = path.stat().st_mtime_ns
    assert ensure_dataset(tmp_path, "hopper", "medium-expert", 400, 0, policies).stat().st_mtime_ns == before
    replay = generate("hopper", "medium-replay", 400, 0, policies)
    assert len(replay) == 20  # the medium snapshot's step count


def test_read_snapshots_lists_training_folder(tmp_path):
    task = get_task("walker2d")
    fake_training(tmp_path, task, {10: 1.0, 20: 2.0})
    assert [s["step"] for s in read_snapshots(tmp_path)] == [10, 20]
