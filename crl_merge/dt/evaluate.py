"""Evaluation rollouts of a Decision Transformer, batched across environment copies.

The official code plays one episode at a time; here ``episodes`` copies of the task step
in lockstep and every step makes one ``get_action`` call for all copies still running,
conditioned as the official ``evaluate_episode_rtg``: the target return (scaled) minus the
rewards collected so far, normalised states, the actions taken, and timesteps, over the
last K steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from envs.mujoco.collect import env_seeds
from envs.mujoco.tasks import MujocoTask


@dataclass
class EvalResult:
    task: str
    returns: np.ndarray
    lengths: np.ndarray
    scores: np.ndarray  # D4RL normalised

    def summary(self) -> dict:
        return {"task": self.task, "episodes": len(self.returns), "mean_return": float(self.returns.mean()),
                "std_return": float(self.returns.std()), "mean_score": float(self.scores.mean()),
                "std_score": float(self.scores.std()), "mean_length": float(self.lengths.mean())}


@torch.no_grad()
def evaluate(model, env: str, task: MujocoTask, state_mean, state_std, episodes: int, target_return: float,
             seed: int = 0, reward_scale: float = 1000.0, device: str = "cpu", max_steps: int | None = None,
             progress: Callable[[int], None] | None = None) -> EvalResult:
    """Play ``episodes`` episodes of ``task`` with ``model``'s ``env`` projections, each cut
    after ``max_steps`` steps if given (for tests; scores then do not compare with D4RL's)."""
    if episodes < 1:
        raise ValueError(f"episodes must be ≥ 1, got {episodes}")
    model = model.to(device).eval()
    n, horizon, k = episodes, min(task.max_episode_steps, max_steps or task.max_episode_steps), model.cfg.context
    mean = torch.as_tensor(np.asarray(state_mean, dtype=np.float32), device=device)
    std = torch.as_tensor(np.asarray(state_std, dtype=np.float32), device=device)
    envs = [task.make() for _ in range(n)]
    first = np.stack([e.reset(seed=s)[0] for e, s in zip(envs, env_seeds(seed, n))]).astype(np.float32)
    states = torch.zeros(n, horizon, task.state_dim, device=device)
    actions = torch.zeros(n, horizon, task.act_dim, device=device)
    rtg = torch.zeros(n, horizon, 1, device=device)
    timesteps = torch.arange(horizon, device=device).expand(n, horizon)
    states[:, 0] = (torch.as_tensor(first, device=device) - mean) / std
    rtg[:, 0] = target_return / reward_scale
    returns, lengths = np.zeros(n), np.zeros(n, dtype=np.int64)
    alive = np.ones(n, dtype=bool)
    for t in range(horizon):
        idx = np.flatnonzero(alive)
        lo = max(0, t - k + 1)
        rows = torch.as_tensor(idx, device=device)
        act = model.get_action(env, states[rows, lo:t + 1], actions[rows, lo:t + 1], rtg[rows, lo:t + 1],
                               timesteps[rows, lo:t + 1])
        actions[rows, t] = act
        act = act.cpu().numpy()
        next_obs = np.zeros((len(idx), task.state_dim), dtype=np.float32)
        rewards, ended = np.zeros(len(idx)), np.zeros(len(idx), dtype=bool)
        for j, i in enumerate(idx):
            obs, rewards[j], terminated, truncated, _ = envs[i].step(act[j])
            next_obs[j], ended[j] = obs, terminated or truncated
        returns[idx] += rewards
        lengths[idx] += 1
        alive[idx[ended]] = False
        if t + 1 < horizon:
            states[rows, t + 1] = (torch.as_tensor(next_obs, device=device) - mean) / std
            rtg[rows, t + 1] = rtg[rows, t] - torch.as_tensor(rewards[:, None] / reward_scale, dtype=torch.float32,
                                                              device=device)
        if progress is not None:
            progress(t + 1)
        if not alive.any():
            break
    return EvalResult(task.name, returns, lengths, task.normalized_score(returns))
