"""Open-loop policies for inspecting tasks: they ignore the observation, so the same policy
can drive our engine and the real Procgen and the two can be compared episode for episode.
A policy is called as ``policy(step, obs)``, like the closed-loop ones of ``crl_merge.procgen.evaluate``."""

from __future__ import annotations

from typing import Callable

import numpy as np

Policy = Callable[[int, object], np.ndarray]  # (step index, observations) -> actions [num_envs], int64


def _constant(action: int):
    def make(num_envs: int, seed: int) -> Policy:
        return lambda step, obs=None: np.full(num_envs, action, dtype=np.int64)
    return make


def _random(num_envs: int, seed: int) -> Policy:
    gen = np.random.default_rng(seed)
    return lambda step, obs=None: gen.integers(0, 15, num_envs, dtype=np.int64)


def _zigzag(num_envs: int, seed: int) -> Policy:
    """Eight steps left, eight steps right, and so on."""
    return lambda step, obs=None: np.full(num_envs, 1 if (step // 8) % 2 == 0 else 7, dtype=np.int64)


def _up_fire(num_envs: int, seed: int) -> Policy:
    """Actions 5 and 9 alternating, 5 first (Starpilot: a step up, a shot to the right, ...)."""
    return lambda step, obs=None: np.full(num_envs, 5 if step % 2 == 0 else 9, dtype=np.int64)


POLICIES: dict[str, tuple[Callable[[int, int], Policy], str]] = {
    "random": (_random, "uniform over the 15 actions: numpy.random.default_rng(seed).integers(0, 15, num_envs) each step"),
    "noop": (_constant(4), "always action 4 (no input)"),
    "fire": (_constant(9), "always action 9 (Starpilot: fire right, no movement)"),
    "left": (_constant(1), "always action 1 (left)"),
    "right": (_constant(7), "always action 7 (right)"),
    "up": (_constant(5), "always action 5 (Starpilot: up; Fruitbot: no lateral input)"),
    "zigzag": (_zigzag, "8 steps left, 8 steps right, repeated (actions 1 and 7)"),
    "up_fire": (_up_fire, "actions 5 and 9 alternating, 5 first (Starpilot: up, fire right, up, ...)"),
}


def make_policy(name: str, num_envs: int, seed: int = 0) -> Policy:
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}; valid policies: {sorted(POLICIES)}")
    return POLICIES[name][0](num_envs, seed)
