"""The three MuJoCo locomotion tasks of the Decision Transformer track, and D4RL's
normalised score.

Each task is a gymnasium v5 environment (``gymnasium[mujoco]``, the maintained successor of
the ``-v2/-v3`` environments D4RL was recorded on: same observation and action spaces, same
reward terms, 1,000-step time limit). The reference returns are D4RL's
(``d4rl/infos.py``, as protocols B quotes them): a normalised score of 0 is a random
policy, 100 an expert.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache

import gymnasium as gym
import mujoco
import numpy as np


@lru_cache(maxsize=1)
def route_mujoco_warnings() -> None:
    """Send MuJoCo's warnings to Python's ``warnings`` (shown once per place) instead of
    stdout and a ``MUJOCO_LOG.TXT`` in the working directory. MuJoCo 4 warns on every
    HalfCheetah model it compiles (gymnasium's XML uses the deprecated ``settotalmass``,
    which still takes effect)."""
    mujoco.set_mju_user_warning(lambda msg: warnings.warn(f"MuJoCo: {msg.strip()}", RuntimeWarning, stacklevel=2))


@dataclass(frozen=True)
class MujocoTask:
    name: str
    gym_id: str
    state_dim: int
    act_dim: int
    ref_min_score: float  # D4RL's random-policy return
    ref_max_score: float  # D4RL's expert return
    dt_target_returns: tuple[float, ...]  # the official DT code's evaluation conditioning returns
    d4rl_medium_score: float  # mean normalised return of D4RL's <task>-medium-v2 data (approx.)
    d4rl_expert_score: float  # the same for <task>-expert-v2
    max_episode_steps: int = 1000

    def normalized_score(self, returns):
        """D4RL normalised score, 100·(R − R_min)/(R_max − R_min), of a return or an array of them."""
        return 100.0 * (np.asarray(returns, dtype=np.float64) - self.ref_min_score) / (
            self.ref_max_score - self.ref_min_score)

    def raw_return(self, score):
        """The return whose normalised score is ``score`` (the inverse of :meth:`normalized_score`)."""
        return self.ref_min_score + np.asarray(score, dtype=np.float64) / 100.0 * (self.ref_max_score - self.ref_min_score)

    def make(self, seed: int | None = None) -> gym.Env:
        route_mujoco_warnings()
        env = gym.make(self.gym_id)
        if seed is not None:
            env.reset(seed=seed)
            env.action_space.seed(seed)
        return env


TASKS: dict[str, MujocoTask] = {
    "hopper": MujocoTask("hopper", "Hopper-v5", 11, 3, -20.272305, 3234.3, (3600.0, 1800.0), 44.3, 108.5),
    "halfcheetah": MujocoTask("halfcheetah", "HalfCheetah-v5", 17, 6, -280.178953, 12135.0, (12000.0, 6000.0), 40.7, 88.1),
    "walker2d": MujocoTask("walker2d", "Walker2d-v5", 17, 6, 1.629008, 4592.3, (5000.0, 2500.0), 62.1, 107.1),
}

DATASET_KINDS = ("expert", "medium", "medium-replay", "medium-expert")


def get_task(name: str) -> MujocoTask:
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown MuJoCo task {name!r}; known: {sorted(TASKS)}") from None


def normalized_score(task: str, returns):
    """D4RL normalised score of ``returns`` on ``task`` (hopper, halfcheetah, walker2d)."""
    return get_task(task).normalized_score(returns)
