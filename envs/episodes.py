"""Collect exactly N complete episodes from a batched environment, without length bias.

Taking "the first N episodes to finish" over-samples short episodes. Instead every
environment contributes its first ``ceil(N / num_envs)`` episodes, and the result keeps
the first N of those in environment-major order: each environment's list is a prefix of
its own episode sequence, so nothing favours short episodes.
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
            "ci95_return": float(1.96 * self.returns.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan"),
            "mean_length": float(self.lengths.mean()),
            "completion_rate": float(self.completed.mean()),
            "frames_per_second": self.frames / self.seconds if self.seconds > 0 else float("nan"),
        }


def collect_episodes(env, policy, episodes: int, progress=None) -> EpisodeStats:
    """Run ``policy`` ((step index, observations) → actions) on ``env`` until ``episodes``
    episodes are done.

    ``env`` is a ``VecGame`` or a ``ProcgenRef``; ``progress(done_so_far)`` is called as
    episodes finish when given.
    """
    per_env = math.ceil(episodes / env.num_envs)
    found: list[list[tuple[float, int, bool]]] = [[] for _ in range(env.num_envs)]
    obs = env.reset()
    start, step, counted = time.perf_counter(), 0, 0
    while counted < per_env * env.num_envs:
        actions = torch.as_tensor(policy(step, obs))
        obs, _, done, info = env.step(actions)
        step += 1
        ended = done.nonzero().squeeze(1).cpu().tolist()
        if ended:
            ret = info["episode_return"].cpu()
            length = info["episode_length"].cpu()
            complete = info["prev_level_complete"].cpu()
            for i in ended:
                if len(found[i]) < per_env:
                    found[i].append((float(ret[i]), int(length[i]), bool(complete[i])))
                    counted += 1
            if progress:
                progress(min(counted, episodes))
    seconds = time.perf_counter() - start
    rows = [ep for env_eps in found for ep in env_eps][:episodes]
    return EpisodeStats(returns=np.array([r[0] for r in rows]), lengths=np.array([r[1] for r in rows]),
                        completed=np.array([r[2] for r in rows]), frames=step * env.num_envs, seconds=seconds)
