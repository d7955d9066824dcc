"""The reference trainer: stable-baselines3's ``PPO`` on our SB3 adapter, with the thesis's
hyperparameters and separate actor and critic networks (``share_features_extractor=False``).

The SB3 policy starts from the same weights as the fast trainer for the same init seed, and
its actor and critic are written in the same checkpoint format (``NatureCNN`` names), so the
two trainers' outputs are interchangeable.
"""

from __future__ import annotations

import time

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback

import envs
from crl_merge.models import NatureCNN, make_actor, make_critic
from crl_merge.train.checkpointing import TrainingCheckpoint
from crl_merge.train.config import PPOConfig
from crl_merge.train.curve import LearningCurve
from crl_merge.train.ppo_fast import TrainResult
from crl_merge.train.resume import pack_training_state, unpack_training_state
from envs.adapters.sb3 import SB3VecEnv


def _layers(policy, which: str):
    """The SB3 policy's modules that correspond to our NatureCNN's conv1..3, fc, head."""
    extractor = policy.pi_features_extractor if which == "actor" else policy.vf_features_extractor
    head = policy.action_net if which == "actor" else policy.value_net
    return [extractor.cnn[0], extractor.cnn[2], extractor.cnn[4], extractor.linear[0], head]


def _ours(model: NatureCNN):
    return [model.conv1, model.conv2, model.conv3, model.fc, model.head]


@torch.no_grad()
def copy_into_policy(policy, actor: NatureCNN, critic: NatureCNN) -> None:
    for which, model in (("actor", actor), ("critic", critic)):
        for theirs, ours in zip(_layers(policy, which), _ours(model)):
            theirs.weight.copy_(ours.weight)
            theirs.bias.copy_(ours.bias)


@torch.no_grad()
def actor_critic_from_policy(policy) -> tuple[NatureCNN, NatureCNN]:
    actor, critic = make_actor(), make_critic()
    for which, model in (("actor", actor), ("critic", critic)):
        for theirs, ours in zip(_layers(policy, which), _ours(model)):
            ours.weight.copy_(theirs.weight.cpu())
            ours.bias.copy_(theirs.bias.cpu())
    return actor.eval(), critic.eval()


class _CurveAndCheckpoints(BaseCallback):
    """Feeds finished episodes to the curve, logs a row after every update, saves checkpoints."""

    def __init__(self, curve: LearningCurve, checkpoint: TrainingCheckpoint | None, generators, total_steps, progress):
        super().__init__()
        self.curve, self.checkpoint, self.generators = curve, checkpoint, generators
        self.total_steps, self.progress = total_steps, progress
        self.last_checkpoint = self.logged_step = None
        self.started = time.perf_counter()

    def _on_training_start(self) -> None:
        self.last_checkpoint = self.logged_step = self.model.num_timesteps

    def _on_step(self) -> bool:
        episodes = [info["episode"] for info in self.locals["infos"] if "episode" in info]
        if episodes:
            self.curve.add_episodes([e["r"] for e in episodes], [e["l"] for e in episodes])
        return True

    def _log_update(self) -> None:
        step = self.model.num_timesteps
        if step == self.logged_step:
            return
        now = time.perf_counter()
        row = self.curve.log(step, (step - self.logged_step) / (now - self.started))
        self.logged_step, self.started = step, now
        if self.progress:
            self.progress(step, row)
        if self.checkpoint is not None and step - self.last_checkpoint >= self.checkpoint.every and step < self.total_steps:
            tensors, meta = pack_training_state({"policy": self.model.policy}, self.model.policy.optimizer, self.generators)
            self.checkpoint.save(tensors, {**meta, "global_step": step, "curve": self.curve.state()})
            self.last_checkpoint = step

    def _on_rollout_start(self) -> None:  # i.e. after the previous update
        self._log_update()

    def _on_training_end(self) -> None:
        self._log_update()


def train_sb3(task, ppo: PPOConfig, total_steps: int, init_seed: int, level_seed: int, device="cpu",
              checkpoint: TrainingCheckpoint | None = None, tensorboard_dir=None, progress=None) -> TrainResult:
    """Same contract as :func:`crl_merge.train.ppo_fast.train_fast`."""
    device = torch.device(device)
    venv = SB3VecEnv(envs.make(task, num_envs=ppo.n_envs, seed=level_seed))
    model = PPO("CnnPolicy", venv, learning_rate=ppo.learning_rate, n_steps=ppo.n_steps, batch_size=ppo.batch_size,
                n_epochs=ppo.n_epochs, gamma=ppo.gamma, gae_lambda=ppo.gae_lambda, clip_range=ppo.clip_range,
                clip_range_vf=None, normalize_advantage=ppo.normalize_advantage, ent_coef=ppo.ent_coef,
                vf_coef=ppo.vf_coef, max_grad_norm=ppo.max_grad_norm, seed=init_seed, device=device, verbose=0,
                policy_kwargs={"share_features_extractor": False, "optimizer_kwargs": {"eps": ppo.adam_eps}})
    copy_into_policy(model.policy, make_actor(init_seed).to(device), make_critic(init_seed).to(device))
    generators = {"torch": torch.default_generator}
    if device.type == "cuda":
        generators["cuda"] = torch.cuda.default_generators[device.index or 0]
    curve_state = {}
    if checkpoint is not None and (saved := checkpoint.load(device)) is not None:
        tensors, meta = saved
        unpack_training_state(tensors, meta, {"policy": model.policy}, model.policy.optimizer, generators)
        model.num_timesteps, curve_state = meta["global_step"], meta["curve"]
    curve = LearningCurve(tensorboard_dir, **curve_state)
    remaining = total_steps - model.num_timesteps
    if remaining > 0:
        callback = _CurveAndCheckpoints(curve, checkpoint, generators, total_steps, progress)
        model.learn(total_timesteps=remaining, reset_num_timesteps=False, callback=callback)
    actor, critic = actor_critic_from_policy(model.policy)
    return TrainResult(actor, critic, curve, model.num_timesteps)
