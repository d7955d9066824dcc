"""What the adapters share: gymnasium/SB3 seeds as level streams, and timeouts as truncation.

A library seed ``s`` for environment i of a :class:`VecGame` made with ``seed=S`` (the level
family, Procgen's ``rand_seed``) means: environment i plays, from its first level on, the
levels that environment ``s`` of ``envs.make(task, num_envs > s, seed=S)`` plays
(``VecGame.reset(stream=...)``). So seed ``s + i`` for environment i, which is what
gymnasium and SB3 give for an integer seed ``s``, is at ``s = 0`` exactly the game's own
streams (``envs.make(task, n, seed=S)``), and equal seeds give equal levels in any slot and
in a single-environment :class:`~envs.adapters.gymnasium_env.GymnasiumEnv` made with the same
``S``. An environment without a seed (``None``) is not reseeded: it keeps its stream and
stays on its current level if that has not been played yet (no step since it started),
else moves on to its next level. The first reset of an unseeded game starts every
environment on its first level.
"""

from __future__ import annotations

import numbers

import numpy as np

SEED_LIMIT = 2**32  # level streams are 32-bit keys


def is_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, (bool, np.bool_))


def _check_one(value, where: str) -> int:
    if not is_int(value):
        raise TypeError(f"{where} must be an integer in [0, 2**32) or None, got {type(value).__name__} {value!r}")
    if not 0 <= int(value) < SEED_LIMIT:
        raise ValueError(f"{where} must be an integer in [0, 2**32), got {int(value)}")
    return int(value)


def check_seed(seed, num_envs: int, name: str = "seed") -> int:
    """An integer seed for ``num_envs`` environments (environment i gets ``seed + i``)."""
    if not is_int(seed):
        raise TypeError(f"{name} must be an integer in [0, 2**32 - {num_envs}] or None, "
                        f"got {type(seed).__name__} {seed!r}")
    top = SEED_LIMIT - num_envs
    if not 0 <= int(seed) <= top:
        raise ValueError(f"{name} must be an integer in [0, 2**32 - {num_envs}] (environment i gets "
                         f"{name} + i, below 2**32), got {int(seed)}")
    return int(seed)


def per_env_seeds(seed, num_envs: int, name: str = "seed") -> list[int | None]:
    """gymnasium's forms of a vector seed: ``None``, an integer (environment i gets
    ``seed + i``) or one integer or ``None`` per environment."""
    if seed is None:
        return [None] * num_envs
    if isinstance(seed, np.ndarray) and seed.ndim == 0:
        seed = seed.item()
    if is_int(seed):
        start = check_seed(seed, num_envs, name)
        return [start + i for i in range(num_envs)]
    if isinstance(seed, (str, bytes, dict)) or not hasattr(seed, "__len__"):
        raise TypeError(f"{name} must be None, an integer, or a list of {num_envs} integers or None "
                        f"(one per environment), got {type(seed).__name__} {seed!r}")
    seeds = list(seed)
    if len(seeds) != num_envs:
        raise ValueError(f"{name}: a list of seeds needs one per environment ({num_envs}), got {len(seeds)}")
    return [None if s is None else _check_one(s, f"{name}[{i}]") for i, s in enumerate(seeds)]


def reset_with_seeds(game, seeds: list[int | None]):
    """``game.reset`` with per-environment seeds (``None``: not reseeded); see the module doc."""
    if game.state is None and all(s is None for s in seeds):
        return game.reset()
    if game.state is None:
        episode = [0] * game.num_envs
    else:
        episode = (game.episode + (game.state["t"] > 0)).tolist()  # a played level is not replayed
    stream = None  # the streams stay as they are
    if any(s is not None for s in seeds):
        stream = list(range(game.num_envs)) if game.stream is None else game.stream.tolist()
        for i, s in enumerate(seeds):
            if s is not None:
                stream[i], episode[i] = s, 0
    return game.reset(stream=stream, episode=episode)


def timed_out(game, done, info):
    """Which ``done`` are a timeout (gymnasium's truncation), not the game's own end: the
    episode reached the task's ``timeout`` without completing its level. (A death on the
    timeout step itself counts as a timeout: the engine reports one ``done``.)"""
    return done & ~info["prev_level_complete"] & (info["episode_length"] >= game.timeout)
