"""Both PPO trainers: the fast one computes exactly SB3's update, both write the same
artifacts, training is deterministic, and an interrupted run resumes from its checkpoint."""

import copy
import json

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.buffers import RolloutBuffer
from gymnasium import spaces

import envs
from crl_merge.checkpoint import load_model
from crl_merge.models import POLICY_LAYOUTS, make_actor, make_actor_critic
from crl_merge.store import RunStore
from crl_merge.procgen.ppo import PPOConfig, train_run, training_spec
from crl_merge.procgen.ppo.curve import read_curve
from crl_merge.procgen.ppo.fast import gae_advantages, ppo_loss
from crl_merge.procgen.ppo.sb3 import actor_critic_from_policy, copy_into_policy
from envs.adapters.sb3 import SB3VecEnv

TINY = PPOConfig.from_mapping({"n_envs": 4, "n_steps": 32, "batch_size": 64, "n_epochs": 1}, "test")


def sb3_ppo(ppo: PPOConfig, layout: str, seed=0):
    venv = SB3VecEnv(envs.make("starpilot/shoot", num_envs=ppo.n_envs, seed=0))
    return PPO("CnnPolicy", venv, learning_rate=ppo.learning_rate, n_steps=ppo.n_steps, batch_size=ppo.batch_size,
               n_epochs=ppo.n_epochs, gamma=ppo.gamma, gae_lambda=ppo.gae_lambda, clip_range=ppo.clip_range,
               ent_coef=ppo.ent_coef, vf_coef=ppo.vf_coef, max_grad_norm=ppo.max_grad_norm, seed=seed, device="cpu",
               policy_kwargs={"share_features_extractor": layout == "shared",
                              "optimizer_kwargs": {"eps": ppo.adam_eps}})


def test_gae_matches_sb3_rollout_buffer():
    steps, n = 16, 5
    gen = torch.Generator().manual_seed(0)
    rewards, values = torch.randn(steps, n, generator=gen), torch.randn(steps, n, generator=gen)
    dones = (torch.rand(steps, n, generator=gen) < 0.2).float()
    last_value = torch.randn(n, generator=gen)
    buffer = RolloutBuffer(steps, spaces.Box(0, 1, (1,)), spaces.Discrete(2), n_envs=n, gamma=0.99, gae_lambda=0.9)
    starts = torch.cat([torch.ones(1, n), dones[:-1]])  # SB3 stores "this step starts an episode"
    for t in range(steps):
        buffer.add(np.zeros((n, 1)), np.zeros((n, 1)), rewards[t].numpy(), starts[t].numpy(), values[t], torch.zeros(n))
    buffer.compute_returns_and_advantage(last_value, dones[-1].numpy())
    ours = gae_advantages(rewards, values, dones, last_value, 0.99, 0.9)
    assert np.allclose(ours.numpy(), buffer.advantages, atol=1e-5)


@pytest.mark.parametrize("layout", POLICY_LAYOUTS)
def test_sb3_policy_starts_from_our_weights_and_converts_back(layout):
    model = sb3_ppo(TINY, layout)
    ours = make_actor_critic(layout, 7)
    copy_into_policy(model.policy, ours)
    obs = envs.make("starpilot/shoot", num_envs=3).reset()
    sb3_obs = obs.permute(0, 3, 1, 2).float()  # what VecTransposeImage hands SB3 (it scales by 255 itself)
    with torch.no_grad():
        logits, values = ours(obs)
        assert torch.allclose(torch.log_softmax(logits, 1), model.policy.get_distribution(sb3_obs).distribution.logits,
                              atol=1e-5)
        assert torch.allclose(values, model.policy.predict_values(sb3_obs).squeeze(1), atol=1e-5)
        # the saved networks play alone: the actor's logits, the critic's value
        assert torch.allclose(ours.actor(obs), logits) and torch.allclose(ours.critic_network()(obs)[:, 0], values)
    back = actor_critic_from_policy(model.policy, layout)
    assert all(torch.equal(a, b) for a, b in zip(back.state_dict().values(), ours.state_dict().values()))


def test_shared_layout_is_one_trunk_and_its_actor_is_the_separate_layouts():
    shared, separate = make_actor_critic("shared", 3), make_actor_critic("separate", 3)
    trunk = [n for n, _ in shared.named_parameters() if not n.startswith(("actor.head", "value_net"))]
    assert len(trunk) == 8 and sum(p.numel() for p in shared.parameters()) < sum(p.numel() for p in separate.parameters())
    assert all(torch.equal(a, b) for a, b in zip(shared.actor.state_dict().values(), make_actor(3).state_dict().values()))
    assert all(torch.equal(a, b) for a, b in zip(separate.actor.state_dict().values(),
                                                 shared.actor.state_dict().values()))


@pytest.mark.parametrize("layout", POLICY_LAYOUTS)
def test_fast_update_equals_sb3_update(layout):
    """One SB3 rollout + update (one minibatch); the same data through our loss, Adam and
    clipping gives the same new weights, in both policy layouts."""
    ppo = PPOConfig.from_mapping({"n_envs": 4, "n_steps": 8, "batch_size": 32, "n_epochs": 1}, "test")
    model = sb3_ppo(ppo, layout)
    ours = make_actor_critic(layout, 0)
    copy_into_policy(model.policy, ours)
    model.learn(total_timesteps=32)
    buf = model.rollout_buffer
    obs = torch.as_tensor(buf.observations.reshape(-1, 3, 64, 64)).permute(0, 2, 3, 1).to(torch.uint8)
    actions = torch.as_tensor(buf.actions.reshape(-1)).long()
    old_logp, adv, ret = (torch.as_tensor(x.reshape(-1)) for x in (buf.log_probs, buf.advantages, buf.returns))
    params = list(ours.parameters())
    optimizer = torch.optim.Adam(params, lr=ppo.learning_rate, eps=ppo.adam_eps)
    loss, _ = ppo_loss(ours, obs, actions, old_logp, adv, ret, ppo)
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, ppo.max_grad_norm)
    optimizer.step()
    theirs = actor_critic_from_policy(model.policy, layout)
    for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), name
    assert not torch.equal(ours.actor.conv1.weight, make_actor(0).conv1.weight)  # it did move


@pytest.mark.parametrize("trainer, layout", [("fast", "shared"), ("sb3", "shared"), ("fast", "separate")])
def test_trainers_write_the_same_artifacts(tmp_path, trainer, layout):
    task = envs.get_task("starpilot/shoot")
    run = RunStore(tmp_path).run("t", spec=training_spec(task, TINY, 256, 0, 0, trainer, layout))
    assert train_run(run, task, TINY, 256, 0, 0, trainer=trainer, policy=layout)
    actor, meta = load_model(run.path / "actor")
    assert meta["steps"] == 256 and meta["trainer"] == trainer and meta["role"] == "actor"
    assert meta["policy"] == layout
    critic = load_model(run.path / "critic")[0]
    assert critic.out_dim == 1
    shares_trunk = torch.equal(critic.fc.weight, actor.fc.weight)
    assert shares_trunk == (layout == "shared")
    rows = read_curve(run.path / "curve.csv")
    assert [r["step"] for r in rows] == [128, 256]
    assert list((run.path / "tensorboard").glob("events.out.tfevents.*"))
    assert not train_run(run, task, TINY, 256, 0, 0, trainer=trainer)  # finished: skipped


def test_fast_training_is_deterministic_on_the_cpu(tmp_path):
    task = envs.get_task("starpilot/dodge")
    weights = []
    for i in range(2):
        run = RunStore(tmp_path / str(i)).run("t", spec={})
        train_run(run, task, TINY, 256, 3, 1, trainer="fast")
        weights.append(load_model(run.path / "actor")[0].state_dict())
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("trainer", ["fast", "sb3"])
def test_interrupted_training_resumes_from_its_checkpoint(tmp_path, trainer):
    task = envs.get_task("starpilot/shoot")
    run = RunStore(tmp_path).run("t", spec={})

    def crash_after_first_checkpoint(step, row):
        if (run.path / "resume.json").exists():
            raise Interrupt

    with pytest.raises(Interrupt):
        train_run(run, task, TINY, 640, 0, 0, trainer=trainer, checkpoint_every=256, progress=crash_after_first_checkpoint)
    saved = json.loads((run.path / "resume.json").read_text())["global_step"]
    assert 256 <= saved < 640 and not run.has("actor")
    messages, steps = [], []
    train_run(run, task, TINY, 640, 0, 0, trainer=trainer, checkpoint_every=256, log=messages.append,
              progress=lambda step, row: steps.append(step))
    assert messages and f"resuming from the checkpoint at step {saved}" in messages[0]
    assert steps[0] == saved + 128  # continued, not restarted
    assert [r["step"] for r in read_curve(run.path / "curve.csv")] == [128, 256, 384, 512, 640]
    assert not (run.path / "resume.safetensors").exists() and run.has("actor")
