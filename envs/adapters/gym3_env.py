"""The gym3 ``Env`` interface (``observe``/``act``/``get_info``) over our games, with the
constructor of procgen's ``ProcgenGym3Env``, so code written for the real Procgen runs on
our tasks by changing one import:

    from envs.adapters.gym3_env import ProcgenGym3Env
    env = ProcgenGym3Env(num=64, env_name="starpilot/dodge", distribution_mode="easy")
"""

from __future__ import annotations

import numpy as np
import gym3
from gym3 import types

from envs.core import NUM_ACTIONS, VecGame


class Gym3Env(gym3.Env):
    """A gym3 environment driven by a :class:`VecGame`. ``first`` is true on the first
    observation of every episode, as in Procgen."""

    def __init__(self, game: VecGame):
        self.game = game
        ob_space = types.DictType(rgb=types.TensorType(eltype=types.Discrete(256, dtype_name="uint8"), shape=(64, 64, 3)))
        super().__init__(ob_space=ob_space, ac_space=types.TensorType(eltype=types.Discrete(NUM_ACTIONS), shape=()),
                         num=game.num_envs)
        self._obs = game.reset().cpu().numpy()
        self._reward = np.zeros(game.num_envs, dtype=np.float32)
        self._first = np.ones(game.num_envs, dtype=bool)
        seeds = game.level_seed.cpu().numpy()
        self._info = [{"level_seed": int(s), "prev_level_seed": 0, "prev_level_complete": 0} for s in seeds]

    def observe(self):
        return self._reward, {"rgb": self._obs}, self._first

    def get_info(self):
        return self._info

    def act(self, ac):
        obs, reward, done, info = self.game.step(np.asarray(ac))
        self._obs, self._reward, self._first = obs.cpu().numpy(), reward.cpu().numpy(), done.cpu().numpy()
        seeds, prev = info["level_seed"].cpu().numpy(), info["prev_level_seed"].cpu().numpy()
        complete = info["prev_level_complete"].cpu().numpy()
        self._info = [{"level_seed": int(seeds[i]), "prev_level_seed": int(prev[i]),
                       "prev_level_complete": int(complete[i])} for i in range(self.num)]


# Procgen options that change nothing in our games, with the only value we support.
_FIXED_OPTIONS = {"use_backgrounds": False, "use_generated_assets": False, "paint_vel_info": False,
                  "use_sequential_levels": False, "center_agent": True}


def ProcgenGym3Env(num: int, env_name: str, distribution_mode: str = "easy", num_levels: int = 0,
                   start_level: int = 0, rand_seed: int | None = None, restrict_themes: bool = True,
                   use_monochrome_assets: bool = False, device: str = "cpu", num_threads: int | None = None,
                   **options) -> Gym3Env:
    """Drop-in for ``procgen.ProcgenGym3Env``: ``env_name`` is a game ("starpilot") or any of
    our task names ("starpilot/dodge", "my_split.yaml#x"). Only easy mode exists; options
    that the real game has and ours cannot honour are refused by name."""
    from envs import make

    if distribution_mode != "easy":
        raise ValueError(f"distribution_mode={distribution_mode!r}: only 'easy' is implemented")
    for key, value in options.items():
        if key not in _FIXED_OPTIONS:
            raise TypeError(f"unknown option {key!r}; valid options: {sorted(_FIXED_OPTIONS)}")
        if key != "center_agent" and value != _FIXED_OPTIONS[key]:
            raise ValueError(f"{key}={value!r} is not supported: our games support only {key}={_FIXED_OPTIONS[key]}")
    task = env_name if "/" in env_name or "#" in env_name else f"{env_name}/original"
    seed = int(np.random.SeedSequence().entropy % (2**31)) if rand_seed is None else rand_seed
    return Gym3Env(make(task, num_envs=num, seed=seed, num_levels=num_levels, start_level=start_level,
                        device=device, monochrome=use_monochrome_assets))
