"""PPO whose rollouts, advantages and updates stay on the environments' torch device.

The same algorithm, hyperparameters and loss terms as stable-baselines3's ``PPO`` (see
``sb3.py``, the reference), with either policy layout (one trunk with two heads, SB3's
``CnnPolicy`` default, or separate actor and critic networks): GAE(λ) returns,
per-minibatch advantage normalisation, clipped surrogate, unclipped value MSE, entropy
bonus, one Adam over all the policy's parameters with global gradient-norm clipping. What differs is
only where the data lives: observations come from the batched game as device tensors and
are never copied to the host during a rollout, and per-step logging is replaced by one
host transfer of episode statistics per update. Read it top to bottom, CleanRL style.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

import envs
from crl_merge.models import make_actor_critic
from crl_merge.procgen.ppo.checkpointing import TrainingCheckpoint
from crl_merge.procgen.ppo.config import PPOConfig
from crl_merge.procgen.ppo.curve import LearningCurve
from crl_merge.procgen.ppo.precision import autocast
from crl_merge.training_state import pack_training_state, unpack_training_state


@dataclass
class TrainResult:
    actor: torch.nn.Module
    critic: torch.nn.Module
    curve: LearningCurve
    steps: int


def gae_advantages(rewards, values, dones, last_value, gamma: float, gae_lambda: float) -> torch.Tensor:
    """GAE(λ) over ``[steps, envs]`` tensors, as SB3's ``RolloutBuffer.compute_returns_and_advantage``:
    ``dones[t]`` ends the episode after step ``t``, so nothing is bootstrapped across it."""
    advantages = torch.zeros_like(rewards)
    last_gae = torch.zeros_like(last_value)
    for t in reversed(range(rewards.shape[0])):
        next_value = last_value if t == rewards.shape[0] - 1 else values[t + 1]
        not_done = 1.0 - dones[t]
        delta = rewards[t] + gamma * next_value * not_done - values[t]
        last_gae = delta + gamma * gae_lambda * not_done * last_gae
        advantages[t] = last_gae
    return advantages


def ppo_loss(policy, obs, actions, old_logp, advantages, returns, ppo: PPOConfig):
    """SB3's PPO loss on one minibatch: ``(loss, detached [policy loss, value loss, entropy,
    clip fraction])``. ``policy(obs)`` gives ``(logits, values)``."""
    logits, value = policy(obs)
    log_probs = torch.log_softmax(logits, dim=1)
    logp = log_probs.gather(1, actions[:, None]).squeeze(1)
    entropy = -(log_probs.exp() * log_probs).sum(1)
    if ppo.normalize_advantage and len(advantages) > 1:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    ratio = torch.exp(logp - old_logp)
    policy_loss = -torch.min(advantages * ratio,
                             advantages * ratio.clamp(1 - ppo.clip_range, 1 + ppo.clip_range)).mean()
    value_loss = F.mse_loss(returns, value)
    entropy_loss = -entropy.mean()
    loss = policy_loss + ppo.ent_coef * entropy_loss + ppo.vf_coef * value_loss
    clip_fraction = ((ratio - 1).abs() > ppo.clip_range).float().mean()
    return loss, torch.stack([policy_loss, value_loss, -entropy_loss, clip_fraction]).detach()


def train_fast(task, ppo: PPOConfig, total_steps: int, init_seed: int, level_seed: int, device="cpu",
               checkpoint: TrainingCheckpoint | None = None, tensorboard_dir=None, progress=None,
               policy_layout: str = "shared", snapshot=None, precision: str = "fp32") -> TrainResult:
    """Train an actor-critic of ``policy_layout`` on ``task`` for at least ``total_steps``
    environment steps (whole rollouts: the step count rounds up to a multiple of
    ``n_envs × n_steps``).

    ``init_seed`` fixes the initial weights and the action/minibatch sampling; ``level_seed``
    the environments' level stream. With ``checkpoint``, training resumes from its last
    saved state and saves a new one every ``checkpoint.every`` steps.
    ``progress(step, row)`` is called after every update with the learning-curve row;
    ``snapshot(updates, policy)`` after every update, before any checkpoint is saved (to keep
    the policy of chosen update counts, as the checkpoint-merging protocol needs).
    ``precision``: the network passes' arithmetic (:mod:`crl_merge.procgen.ppo.precision`).
    """
    saved = checkpoint.load(torch.device(device)) if checkpoint is not None else None
    learner = FastLearner(task, ppo, init_seed, level_seed, device, policy_layout, tensorboard_dir, saved, precision)
    last_checkpoint = learner.global_step
    while learner.global_step < total_steps:
        row = learner.update()
        if progress:
            progress(learner.global_step, row)
        if snapshot:
            snapshot(learner.updates, learner.policy)
        if (checkpoint is not None and learner.global_step - last_checkpoint >= checkpoint.every
                and learner.global_step < total_steps):
            checkpoint.save(*learner.state())
            last_checkpoint = learner.global_step
    return learner.result()


class FastLearner:
    """One PPO learner: its environments, actor-critic, Adam, generators and learning curve;
    :meth:`update` plays one rollout and trains on it. :func:`train_fast` runs one learner to
    its budget; the continual protocols (:mod:`crl_merge.procgen.continual`) step two in turn
    and replace their weights by a merge between updates."""

    def __init__(self, task, ppo: PPOConfig, init_seed: int, level_seed: int, device="cpu",
                 policy_layout: str = "shared", tensorboard_dir=None, saved: tuple[dict, dict] | None = None,
                 precision: str = "fp32"):
        """``saved``: a :meth:`state` to resume from (the environments start new episodes);
        ``precision``: the network passes' arithmetic (:mod:`crl_merge.procgen.ppo.precision`)."""
        self.ppo, self.device = ppo, torch.device(device)
        self.autocast = lambda: autocast(precision, self.device)  # noqa: E731
        self.autocast()  # an unknown precision fails here, before anything is built
        self.env = envs.make(task, num_envs=ppo.n_envs, seed=level_seed, device=str(self.device))
        self.policy = make_actor_critic(policy_layout, init_seed).to(self.device)
        self.params = list(self.policy.parameters())
        self.optimizer = torch.optim.Adam(self.params, lr=ppo.learning_rate, eps=ppo.adam_eps)
        self.sampler = torch.Generator(device=self.device).manual_seed(init_seed)       # actions
        self.shuffler = torch.Generator(device=self.device).manual_seed(init_seed + 1)  # minibatch order
        self.generators = {"sampler": self.sampler, "shuffler": self.shuffler}
        self.global_step, curve_state = 0, {}
        if saved is not None:
            tensors, meta = saved
            unpack_training_state(tensors, meta, {"policy": self.policy}, self.optimizer, self.generators)
            self.global_step, curve_state = meta["global_step"], meta["curve"]
        self.curve = LearningCurve(tensorboard_dir, **curve_state)
        n, steps = ppo.n_envs, ppo.n_steps
        self.obs_buf = torch.zeros((steps, n, 64, 64, 3), dtype=torch.uint8, device=self.device)
        self.action_buf = torch.zeros((steps, n), dtype=torch.long, device=self.device)
        (self.logp_buf, self.value_buf, self.reward_buf, self.done_buf, self.ep_return_buf,
         self.ep_length_buf) = (torch.zeros((steps, n), device=self.device) for _ in range(6))
        self.obs = self.env.reset()

    @property
    def updates(self) -> int:
        """PPO updates done so far (one per rollout)."""
        return self.global_step // self.ppo.rollout_size

    def state(self) -> tuple[dict[str, torch.Tensor], dict]:
        """What a resume checkpoint holds: weights, Adam state, generators, step and curve."""
        tensors, meta = pack_training_state({"policy": self.policy}, self.optimizer, self.generators)
        return tensors, {**meta, "global_step": self.global_step, "curve": self.curve.state()}

    def result(self) -> TrainResult:
        self.policy.eval()
        return TrainResult(self.policy.actor, self.policy.critic_network(), self.curve, self.global_step)

    def update(self) -> dict:
        """One rollout of ``n_steps`` in every environment, then ``n_epochs`` of minibatch
        updates on it; returns the learning-curve row."""
        ppo, policy, sampler = self.ppo, self.policy, self.sampler
        n, steps = ppo.n_envs, ppo.n_steps
        started = time.perf_counter()
        # -- rollout -------------------------------------------------------------------
        policy.eval()
        with torch.no_grad(), self.autocast():
            obs = self.obs
            for t in range(steps):
                logits, self.value_buf[t] = policy(obs)
                log_probs = torch.log_softmax(logits, dim=1)
                action = torch.multinomial(log_probs.exp(), 1, generator=sampler).squeeze(1)
                self.obs_buf[t], self.action_buf[t] = obs, action
                self.logp_buf[t] = log_probs.gather(1, action[:, None]).squeeze(1)
                obs, reward, done, info = self.env.step(action, validate=False)  # sampled: always in range
                self.reward_buf[t], self.done_buf[t] = reward, done.float()
                self.ep_return_buf[t], self.ep_length_buf[t] = info["episode_return"], info["episode_length"].float()
            self.obs = obs
            advantages = gae_advantages(self.reward_buf, self.value_buf, self.done_buf, policy(obs)[1], ppo.gamma,
                                        ppo.gae_lambda)
            returns = advantages + self.value_buf
        self.global_step += steps * n

        # -- update ----------------------------------------------------------------------
        policy.train()
        b_obs, b_actions = self.obs_buf.reshape(-1, 64, 64, 3), self.action_buf.reshape(-1)
        b_logp, b_adv, b_returns = self.logp_buf.reshape(-1), advantages.reshape(-1), returns.reshape(-1)
        stats = torch.zeros(4, device=self.device)  # policy loss, value loss, entropy, clip fraction (sums)
        minibatches = 0
        for _ in range(ppo.n_epochs):
            order = torch.randperm(b_obs.shape[0], device=self.device, generator=self.shuffler)
            for start in range(0, b_obs.shape[0], ppo.batch_size):
                idx = order[start:start + ppo.batch_size]
                with self.autocast():
                    loss, minibatch_stats = ppo_loss(policy, b_obs[idx], b_actions[idx], b_logp[idx], b_adv[idx],
                                                     b_returns[idx], ppo)
                self.optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.params, ppo.max_grad_norm)
                self.optimizer.step()
                stats += minibatch_stats
                minibatches += 1

        # -- logging: one host transfer per update -----------------------------------------
        finished = self.done_buf.T.bool().cpu()  # env-major: each environment's episodes in order
        self.curve.add_episodes(self.ep_return_buf.T.cpu()[finished].tolist(),
                                self.ep_length_buf.T.cpu()[finished].tolist())
        policy_loss, value_loss, entropy, clip_fraction = (stats / minibatches).tolist()
        return self.curve.log(self.global_step, steps * n / (time.perf_counter() - started), **{
            "train/policy_gradient_loss": policy_loss, "train/value_loss": value_loss,
            "train/entropy": entropy, "train/clip_fraction": clip_fraction})
