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
               policy_layout: str = "shared") -> TrainResult:
    """Train an actor-critic of ``policy_layout`` on ``task`` for at least ``total_steps``
    environment steps (whole rollouts: the step count rounds up to a multiple of
    ``n_envs × n_steps``).

    ``init_seed`` fixes the initial weights and the action/minibatch sampling; ``level_seed``
    the environments' level stream. With ``checkpoint``, training resumes from its last
    saved state and saves a new one every ``checkpoint.every`` steps.
    ``progress(step, row)`` is called after every update with the learning-curve row.
    """
    device = torch.device(device)
    env = envs.make(task, num_envs=ppo.n_envs, seed=level_seed, device=str(device))
    policy = make_actor_critic(policy_layout, init_seed).to(device)
    params = list(policy.parameters())
    optimizer = torch.optim.Adam(params, lr=ppo.learning_rate, eps=ppo.adam_eps)
    sampler = torch.Generator(device=device).manual_seed(init_seed)       # actions
    shuffler = torch.Generator(device=device).manual_seed(init_seed + 1)  # minibatch order
    generators = {"sampler": sampler, "shuffler": shuffler}
    global_step, curve_state = 0, {}
    if checkpoint is not None and (saved := checkpoint.load(device)) is not None:
        tensors, meta = saved
        unpack_training_state(tensors, meta, {"policy": policy}, optimizer, generators)
        global_step, curve_state = meta["global_step"], meta["curve"]
    curve = LearningCurve(tensorboard_dir, **curve_state)

    n, steps = ppo.n_envs, ppo.n_steps
    obs_buf = torch.zeros((steps, n, 64, 64, 3), dtype=torch.uint8, device=device)
    action_buf = torch.zeros((steps, n), dtype=torch.long, device=device)
    logp_buf, value_buf, reward_buf, done_buf, ep_return_buf, ep_length_buf = (
        torch.zeros((steps, n), device=device) for _ in range(6))

    obs = env.reset()
    last_checkpoint = global_step
    while global_step < total_steps:
        started = time.perf_counter()
        # -- rollout -------------------------------------------------------------------
        policy.eval()
        with torch.no_grad():
            for t in range(steps):
                logits, value_buf[t] = policy(obs)
                log_probs = torch.log_softmax(logits, dim=1)
                action = torch.multinomial(log_probs.exp(), 1, generator=sampler).squeeze(1)
                obs_buf[t], action_buf[t] = obs, action
                logp_buf[t] = log_probs.gather(1, action[:, None]).squeeze(1)
                obs, reward, done, info = env.step(action, validate=False)  # sampled: always in range
                reward_buf[t], done_buf[t] = reward, done.float()
                ep_return_buf[t], ep_length_buf[t] = info["episode_return"], info["episode_length"].float()
            advantages = gae_advantages(reward_buf, value_buf, done_buf, policy(obs)[1], ppo.gamma, ppo.gae_lambda)
            returns = advantages + value_buf
        global_step += steps * n

        # -- update ----------------------------------------------------------------------
        policy.train()
        b_obs, b_actions = obs_buf.reshape(-1, 64, 64, 3), action_buf.reshape(-1)
        b_logp, b_adv, b_returns = logp_buf.reshape(-1), advantages.reshape(-1), returns.reshape(-1)
        stats = torch.zeros(4, device=device)  # policy loss, value loss, entropy, clip fraction (sums)
        minibatches = 0
        for _ in range(ppo.n_epochs):
            order = torch.randperm(b_obs.shape[0], device=device, generator=shuffler)
            for start in range(0, b_obs.shape[0], ppo.batch_size):
                idx = order[start:start + ppo.batch_size]
                loss, minibatch_stats = ppo_loss(policy, b_obs[idx], b_actions[idx], b_logp[idx], b_adv[idx],
                                                 b_returns[idx], ppo)
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, ppo.max_grad_norm)
                optimizer.step()
                stats += minibatch_stats
                minibatches += 1

        # -- logging: one host transfer per update -----------------------------------------
        finished = done_buf.T.bool().cpu()  # env-major: each environment's episodes in order
        curve.add_episodes(ep_return_buf.T.cpu()[finished].tolist(), ep_length_buf.T.cpu()[finished].tolist())
        policy_loss, value_loss, entropy, clip_fraction = (stats / minibatches).tolist()
        row = curve.log(global_step, steps * n / (time.perf_counter() - started), **{
            "train/policy_gradient_loss": policy_loss, "train/value_loss": value_loss,
            "train/entropy": entropy, "train/clip_fraction": clip_fraction})
        if progress:
            progress(global_step, row)
        if checkpoint is not None and global_step - last_checkpoint >= checkpoint.every and global_step < total_steps:
            tensors, meta = pack_training_state({"policy": policy}, optimizer, generators)
            checkpoint.save(tensors, {**meta, "global_step": global_step, "curve": curve.state()})
            last_checkpoint = global_step
    policy.eval()
    return TrainResult(policy.actor, policy.critic_network(), curve, global_step)
