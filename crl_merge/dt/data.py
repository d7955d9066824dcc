"""Training batches for the Decision Transformer, sampled as the official code samples them
(``kzl/decision-transformer``, ``gym/experiment.py``), but vectorised.

A sample is a window of K steps from a trajectory chosen with probability proportional to
its length (so every step is equally likely), starting at a uniformly random step; windows
that run past the trajectory's end are left-padded and masked. States are normalised by the
dataset's mean and std, returns-to-go are undiscounted sums of the rest of the trajectory's
rewards divided by ``reward_scale`` (1,000 for MuJoCo), timesteps are clipped to the
episode limit, padded actions are −10 as in the official code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from envs.mujoco.datasets import OfflineDataset

PAD_ACTION = -10.0


@dataclass
class Batch:
    states: torch.Tensor  # [B, K, state_dim], normalised
    actions: torch.Tensor  # [B, K, act_dim]
    returns_to_go: torch.Tensor  # [B, K, 1], scaled
    timesteps: torch.Tensor  # [B, K] long
    mask: torch.Tensor  # [B, K], 1 = real step

    def to(self, device) -> "Batch":
        return Batch(*(getattr(self, f).to(device) for f in ("states", "actions", "returns_to_go", "timesteps", "mask")))


class SequenceSampler:
    """K-step windows of one dataset; holds the state statistics the policy is evaluated with."""

    def __init__(self, dataset: OfflineDataset, context: int, reward_scale: float = 1000.0, max_ep_len: int = 1000):
        if len(dataset) == 0:
            raise ValueError("cannot train on an empty dataset")
        self.context, self.reward_scale, self.max_ep_len = context, reward_scale, max_ep_len
        self.observations, self.actions = dataset.observations, dataset.actions
        ends = dataset.episode_ends()
        self.starts = np.concatenate([[0], ends[:-1]]).astype(np.int64)
        self.lengths = (ends - self.starts).astype(np.int64)
        self.p_sample = self.lengths / self.lengths.sum()
        # per-row return-to-go within its trajectory, and each row's step index in it
        self.rtg = np.zeros(len(dataset), dtype=np.float64)
        self.step_in_episode = np.zeros(len(dataset), dtype=np.int64)
        rewards = dataset.rewards.astype(np.float64)
        for start, end in zip(self.starts, ends):
            self.rtg[start:end] = np.cumsum(rewards[start:end][::-1])[::-1]
            self.step_in_episode[start:end] = np.arange(end - start)
        self.state_mean = dataset.observations.mean(axis=0).astype(np.float32)
        self.state_std = (dataset.observations.std(axis=0) + 1e-6).astype(np.float32)

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        k = self.context
        traj = rng.choice(len(self.lengths), size=batch_size, p=self.p_sample)
        length = self.lengths[traj]
        first = (rng.random(batch_size) * length).astype(np.int64)  # uniform start within the trajectory
        real = np.minimum(k, length - first)  # real steps in the window, at its right end
        pos = np.arange(k)[None, :]
        is_real = pos >= (k - real)[:, None]
        rows = self.starts[traj][:, None] + first[:, None] + pos - (k - real)[:, None]
        rows = np.where(is_real, rows, 0)
        states = np.where(is_real[..., None], (self.observations[rows] - self.state_mean) / self.state_std, 0.0)
        actions = np.where(is_real[..., None], self.actions[rows], PAD_ACTION)
        rtg = np.where(is_real, self.rtg[rows] / self.reward_scale, 0.0)
        timesteps = np.where(is_real, np.minimum(self.step_in_episode[rows], self.max_ep_len - 1), 0)
        return Batch(torch.as_tensor(states, dtype=torch.float32), torch.as_tensor(actions, dtype=torch.float32),
                     torch.as_tensor(rtg, dtype=torch.float32)[..., None], torch.as_tensor(timesteps, dtype=torch.long),
                     torch.as_tensor(is_real, dtype=torch.float32))
