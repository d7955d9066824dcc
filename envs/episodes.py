"""Collect exactly N complete episodes from a batched environment, by one of two rules.

``per_env`` (the default, unbiased): every environment contributes its first
``ceil(N / num_envs)`` episodes, and the result keeps the first N of those in
environment-major order: each environment's list is a prefix of its own episode sequence,
so nothing favours short episodes.

``thesis``: the first N episodes to finish across all environments, in the order they
finish (environment order within a step), as the thesis's ``evaluate.py`` counts them.
Short episodes finish first, so this over-samples them.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class EpisodeStats:
    returns: np.ndarray
    lengths: np.ndarray
    completed: np.ndarray
    frames: int
    seconds: float

    def summary(self) -> dict:
        n = len(self.returns)
        return {
            "episodes": n,
            "mean_return": float(self.returns.mean()),
            "std_return": float(self.returns.std()),
            "ci95_return": ci95(self.returns),
            "mean_length": float(self.lengths.mean()),
            "completion_rate": float(self.completed.mean()),
            "frames_per_second": self.frames / self.seconds if self.seconds > 0 else float("nan"),
        }


def ci95(returns: np.ndarray) -> float:
    """Half-width of the normal 95% interval of the mean return over episodes (NaN for one)."""
    n = len(returns)
    return float(1.96 * returns.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")


EPISODE_RULES = ("per_env", "thesis")


def collect_episodes(env, policy, episodes: int, rule: str = "per_env", progress=None) -> EpisodeStats:
    """Run ``policy`` ((step index, observations) → actions) on ``env`` until ``episodes``
    episodes are done, counted by ``rule`` (see the module docstring).

    ``env`` is a ``VecGame`` or a ``ProcgenRef``; ``progress(done_so_far)`` is called as
    episodes finish when given.
    """
    if rule not in EPISODE_RULES:
        raise ValueError(f"episode rule {rule!r}; allowed: {list(EPISODE_RULES)}")
    if episodes < 1:
        raise ValueError(f"episodes must be ≥ 1, got {episodes}")
    per_env = math.ceil(episodes / env.num_envs)
    target = episodes if rule == "thesis" else per_env * env.num_envs
    finishing_order: list[tuple[float, int, bool]] = []  # thesis
    found: list[list[tuple[float, int, bool]]] = [[] for _ in range(env.num_envs)]  # per_env
    obs = env.reset()
    start, step, counted = time.perf_counter(), 0, 0
    while counted < target:
        actions = torch.as_tensor(policy(step, obs))
        obs, _, done, info = env.step(actions)
        step += 1
        ended = done.nonzero().squeeze(1).cpu().tolist()
        if ended:
            ret = info["episode_return"].cpu()
            length = info["episode_length"].cpu()
            complete = info["prev_level_complete"].cpu()
            for i in ended:
                episode = (float(ret[i]), int(length[i]), bool(complete[i]))
                if rule == "thesis" and counted < episodes:
                    finishing_order.append(episode)
                    counted += 1
                elif rule == "per_env" and len(found[i]) < per_env:
                    found[i].append(episode)
                    counted += 1
            if progress:
                progress(min(counted, episodes))
    seconds = time.perf_counter() - start
    rows = finishing_order if rule == "thesis" else [ep for env_eps in found for ep in env_eps][:episodes]
    return EpisodeStats(returns=np.array([r[0] for r in rows]), lengths=np.array([r[1] for r in rows]),
                        completed=np.array([r[2] for r in rows]), frames=step * env.num_envs, seconds=seconds)
