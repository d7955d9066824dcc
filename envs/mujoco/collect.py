"""Rolling out behaviour policies into D4RL-layout data.

``collect`` steps ``num_envs`` copies of a task in lockstep with one batched actor call per
step, and keeps whole episodes in the order they finish (ties by copy index), so the same
seed gives the same rows. Like D4RL's ``collect_data.py``, actions are sampled from the
SAC policy's Gaussian unless ``deterministic``; a step that ends by the 1,000-step limit is
a timeout, one that ends by failure a terminal. When ``steps`` rows are reached the last
episode is cut and flagged as a timeout, so every row belongs to a flagged episode.

A *schedule* of ``(from_step, actor)`` pairs lets the acting policy change with the number
of steps taken (``None`` acts uniformly at random): that is how ``medium-replay`` replays a
SAC training run from its snapshots.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from envs.mujoco.datasets import OfflineDataset
from envs.mujoco.tasks import MujocoTask

Schedule = list[tuple[int, nn.Module | None]]
"""``(from_step, actor)`` pairs; an actor maps observations to ``(mean, log_std)`` like the
SAC actors of :mod:`crl_merge.dt.behaviour_actor`."""


def env_seeds(seed: int, n: int) -> list[int]:
    """Independent first-reset seeds for ``n`` environment copies."""
    return [int(s) for s in np.random.SeedSequence(seed).generate_state(n)]


def _actor_at(schedule: Schedule, step: int) -> nn.Module | None:
    current = schedule[0][1]
    for start, actor in schedule:
        if step >= start:
            current = actor
    return current


def collect(task: MujocoTask, schedule: Schedule | nn.Module, *, steps: int | None = None,
            episodes: int | None = None, num_envs: int = 1, seed: int = 0, deterministic: bool = False,
            progress: Callable[[int], None] | None = None) -> OfflineDataset:
    """Whole episodes until ``steps`` rows (the last one cut) or ``episodes`` episodes."""
    if (steps is None) == (episodes is None):
        raise ValueError("give exactly one of steps= or episodes=")
    if not isinstance(schedule, list):
        schedule = [(0, schedule)]
    if schedule[0][0] != 0:
        raise ValueError(f"a schedule must start at step 0, got {schedule[0][0]}")
    envs = [task.make() for _ in range(num_envs)]
    obs = np.stack([env.reset(seed=s)[0] for env, s in zip(envs, env_seeds(seed, num_envs))]).astype(np.float32)
    low = torch.as_tensor(envs[0].action_space.low)
    high = torch.as_tensor(envs[0].action_space.high)
    generator = torch.Generator().manual_seed(seed)
    open_eps: list[list[tuple]] = [[] for _ in range(num_envs)]
    done_eps: list[list[tuple]] = []
    rows = taken = 0
    while (rows < steps) if steps is not None else (len(done_eps) < episodes):
        actor = _actor_at(schedule, taken)
        if actor is None:
            act = low + torch.rand((num_envs, task.act_dim), generator=generator) * (high - low)
        else:
            act = actor.act(torch.from_numpy(obs), deterministic=deterministic, generator=generator)
        act = act.numpy().astype(np.float32)
        taken += num_envs
        for i, env in enumerate(envs):
            nxt, reward, terminated, truncated, _ = env.step(act[i])
            nxt = nxt.astype(np.float32)
            open_eps[i].append((obs[i].copy(), act[i], reward, terminated, truncated and not terminated, nxt))
            if terminated or truncated:
                done_eps.append(open_eps[i])
                rows += len(open_eps[i])
                open_eps[i] = []
                nxt = env.reset()[0].astype(np.float32)
            obs[i] = nxt
        if progress is not None:
            progress(min(rows, steps) if steps is not None else len(done_eps))
    if episodes is not None:
        done_eps = done_eps[:episodes]
    data = [row for ep in done_eps for row in ep]
    if steps is not None:
        data = data[:steps]
    columns = list(zip(*data))
    timeouts = np.array(columns[4], dtype=bool)
    terminals = np.array(columns[3], dtype=bool)
    timeouts[-1] |= not terminals[-1]
    return OfflineDataset(observations=np.stack(columns[0]), actions=np.stack(columns[1]),
                          rewards=np.array(columns[2], dtype=np.float32), terminals=terminals,
                          timeouts=timeouts, next_observations=np.stack(columns[5]))
