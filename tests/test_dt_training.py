"""DT training and evaluation: the official code's window sampling, masked MSE training
that resumes to the same weights, frozen subsets, batched evaluation equal to one episode
at a time."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crl_merge.dt.data import PAD_ACTION, SequenceSampler
from crl_merge.dt.evaluate import evaluate
from crl_merge.dt.train import TrainConfig, train
from crl_merge.models import DecisionTransformer, DTConfig
from crl_merge.store import RunStore
from envs.mujoco.datasets import OfflineDataset
from envs.mujoco.tasks import get_task


def toy_dataset(lengths=(5, 12, 30), state_dim=11, act_dim=3, seed=0) -> OfflineDataset:
    rng = np.random.default_rng(seed)
    n = sum(lengths)
    ends = np.cumsum(lengths) - 1
    terminals = np.zeros(n, bool)
    terminals[ends[:-1]] = True
    timeouts = np.zeros(n, bool)
    timeouts[ends[-1]] = True
    return OfflineDataset(rng.normal(size=(n, state_dim)), rng.uniform(-1, 1, size=(n, act_dim)),
                          rng.uniform(0, 2, size=n), terminals, timeouts)


def test_windows_follow_the_official_sampling():
    data = toy_dataset()
    sampler = SequenceSampler(data, context=8, reward_scale=10.0)
    np.testing.assert_allclose(sampler.p_sample, np.array([5, 12, 30]) / 47)
    batch = sampler.sample(256, np.random.default_rng(0))
    assert batch.states.shape == (256, 8, 11) and batch.returns_to_go.shape == (256, 8, 1)
    starts, rtg_all = [0, 5, 17], []
    for start, length in zip(starts, (5, 12, 30)):
        rtg_all.append(np.cumsum(data.rewards[start:start + length][::-1])[::-1])
    for i in range(256):
        real = batch.mask[i].bool()
        n_real = int(real.sum())
        assert real[-n_real:].all() and not real[:-n_real].any()  # left padding only
        assert (batch.actions[i, ~real] == PAD_ACTION).all()
        t = batch.timesteps[i, real].numpy()
        assert np.array_equal(t, np.arange(t[0], t[0] + n_real))
        # locate the window in the data through its actions, and check states and returns-to-go
        first_action = batch.actions[i, real][0].numpy()
        row = int(np.flatnonzero((np.abs(data.actions - first_action) < 1e-6).all(1))[0])
        traj = int(np.searchsorted(np.cumsum([5, 12, 30]), row, side="right"))
        assert row - starts[traj] == t[0]
        expected_states = (data.observations[row:row + n_real] - sampler.state_mean) / sampler.state_std
        np.testing.assert_allclose(batch.states[i, real].numpy(), expected_states, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(batch.returns_to_go[i, real, 0].numpy(),
                                   rtg_all[traj][t[0]:t[0] + n_real] / 10.0, rtol=1e-5)
        # windows end at most at the trajectory's end
        assert t[-1] < (5, 12, 30)[traj]


def _model(seed=0, **kw):
    torch.manual_seed(seed)
    return DecisionTransformer(DTConfig(envs={"hopper": (11, 3)}, n_layer=1, n_embd=32, context=8, **kw))


def test_training_lowers_the_loss_and_saves_the_model(tmp_path):
    sampler = SequenceSampler(toy_dataset(), context=8)
    run = RunStore(tmp_path).run("t", spec={"x": 1})
    model = train(run, _model(), {"hopper": sampler}, TrainConfig(steps=60, batch_size=16, learning_rate=1e-3,
                                                                  warmup_steps=5, checkpoint_every=20, evaluations=0), seed=0)
    curve = run.load_json("curve")
    assert [c["step"] for c in curve] == [20, 40, 60] and curve[-1]["loss"] < curve[0]["loss"]
    assert run.has("model") and not run.has("resume")
    loaded, meta = run.load_model("model")
    assert meta["state_stats"]["hopper"]["mean"] == pytest.approx(sampler.state_mean.tolist())
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])


def test_resume_ends_with_the_same_weights(tmp_path):
    sampler = SequenceSampler(toy_dataset(), context=8)
    config = TrainConfig(steps=12, batch_size=8, warmup_steps=4, checkpoint_every=5, evaluations=0)
    whole = train(RunStore(tmp_path / "a").run("t", spec={}), _model(), {"hopper": sampler}, config, seed=3)
    run = RunStore(tmp_path / "b").run("t", spec={})
    assert train(run, _model(), {"hopper": sampler}, config, seed=3, stop=lambda step: step == 7) is None
    assert run.has("resume") and not run.has("model")
    resumed = train(run, _model(seed=99), {"hopper": sampler}, config, seed=3)  # fresh weights are overwritten
    for k, v in whole.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k


def test_frozen_subset_does_not_move(tmp_path):
    sampler = SequenceSampler(toy_dataset(), context=8)
    start = _model()
    before = {k: v.clone() for k, v in start.state_dict().items()}
    tuned = train(RunStore(tmp_path).run("t", spec={}), start, {"hopper": sampler},
                  TrainConfig(steps=5, batch_size=8, warmup_steps=1, evaluations=0), seed=0, frozen=["attention"])
    after = tuned.state_dict()
    attention = [k for k in after if ".attn." in k]
    assert attention and all(torch.equal(before[k], after[k]) for k in attention)
    assert not torch.equal(before["transformer.blocks.0.mlp.fc.weight"], after["transformer.blocks.0.mlp.fc.weight"])
    assert all(p.requires_grad for p in tuned.parameters())


def test_training_rejects_envs_the_model_lacks(tmp_path):
    sampler = SequenceSampler(toy_dataset(state_dim=17, act_dim=6), context=8)
    with pytest.raises(ValueError, match="no projections for \\['walker2d'\\]"):
        train(RunStore(tmp_path).run("t", spec={}), _model(), {"walker2d": sampler}, TrainConfig(steps=1, evaluations=0), seed=0)
    with pytest.raises(ValueError, match="warmup_steps"):
        TrainConfig(steps=1, warmup_steps=0)


def test_batched_evaluation_equals_one_episode_at_a_time():
    task = get_task("hopper")
    model = _model(dropout=0.0)
    mean, std = np.zeros(11, np.float32), np.ones(11, np.float32)
    batched = evaluate(model, "hopper", task, mean, std, episodes=3, target_return=3600, seed=5, max_steps=60)
    # episode i of a batch starts from the i-th seed of the same seed sequence: replay them one by one
    from envs.mujoco.collect import env_seeds

    for i, s in enumerate(env_seeds(5, 3)):
        env = task.make()
        obs, _ = env.reset(seed=s)
        states, actions, rtg, total = [obs], [], [3.6], 0.0
        for t in range(60):
            st = torch.as_tensor(np.array(states), dtype=torch.float32)[None]
            ac = torch.as_tensor(np.array(actions + [np.zeros(3)]), dtype=torch.float32)[None]
            rt = torch.as_tensor(np.array(rtg), dtype=torch.float32)[None, :, None]
            ts = torch.arange(t + 1)[None]
            action = model.get_action("hopper", st, ac, rt, ts)[0].numpy()
            obs, reward, terminated, truncated, _ = env.step(action)
            total += reward
            if terminated or truncated:
                break
            states.append(obs)
            actions.append(action)
            rtg.append(rtg[-1] - reward / 1000.0)
        assert batched.returns[i] == pytest.approx(total, rel=1e-4)
        assert batched.lengths[i] == t + 1
    assert batched.scores == pytest.approx(task.normalized_score(batched.returns))
