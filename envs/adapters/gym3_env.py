"""The gym3 ``Env`` interface (``observe``/``act``/``get_info``) over our games, with the
constructor of procgen's ``ProcgenGym3Env``, so code written for the real Procgen runs on
our tasks by changing one import:

    from envs.adapters.gym3_env import ProcgenGym3Env
    env = ProcgenGym3Env(num=64, env_name="starpilot/dodge", distribution_mode="easy")
"""

from __future__ import annotations

import dataclasses

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


# Procgen options our games cannot change, with the only value we support.
_FIXED_OPTIONS = {"use_backgrounds": False, "use_generated_assets": False, "paint_vel_info": False,
                  "use_sequential_levels": False, "debug": False, "debug_mode": 0, "resource_root": None,
                  "render_mode": None}

# What ``restrict_themes=False`` means for the stock games (procgen/src/games/*.cpp, easy mode):
# every entity picks its sprite among its type's whole list. Starpilot: 7 ship sprites (one per
# spawn group), 4 rockets (one per level; each sets the rocket's width). Fruitbot easy draws a
# fruit's and a treat's sprite with randn(2), so only the first two of each list of six occur;
# each present box picks one of three.
UNRESTRICTED_THEMES = {
    "starpilot": {"enemy_sprites": [f"spaceShips_00{i}.png" for i in range(1, 8)],
                  "rocket_sprites": [f"spaceRockets_00{i}.png" for i in range(1, 5)]},
    "fruitbot": {"fruit_sprites": ["fruit1.png", "fruit2.png"], "treat_sprites": ["food1.png", "food2.png"],
                 "present_sprites": ["present1.png", "present2.png", "present3.png"]},
}


def _first_sprites(config) -> dict:
    """Overrides that keep only the first sprite of every sprite list (Procgen's theme 0)."""
    return {f.name: [getattr(config, f.name)[0]] for f in dataclasses.fields(config)
            if f.name.endswith("_sprites") and len(getattr(config, f.name)) > 1}


def ProcgenGym3Env(num: int, env_name: str, distribution_mode: str = "easy", num_levels: int = 0,
                   start_level: int = 0, rand_seed: int | None = None, restrict_themes: bool = False,
                   center_agent: bool = True, use_monochrome_assets: bool = False, device: str = "cpu",
                   num_threads: int | None = None, **options) -> Gym3Env:
    """Drop-in for ``procgen.ProcgenGym3Env``: ``env_name`` is a game ("starpilot") or any of
    our task names ("starpilot/dodge", "my_split.yaml#x"). Options that the real game has and
    ours cannot honour are refused by name.

    ``restrict_themes``: a bare game name is the stock game, with every entity choosing its
    sprite among the game's whole lists (``False``, see ``UNRESTRICTED_THEMES``) or drawn with
    the first sprite of each (``True``: the task ``<game>/original``). A task name keeps the
    sprite lists its config gives (the thesis tasks are defined as the thesis ran them, with
    ``restrict_themes=False``); ``True`` cuts each list to its first sprite, as Procgen's theme
    0 (where a sprite sizes a box, e.g. a fruit or the rocket, its box follows).

    ``center_agent``: Starpilot's camera shows the whole world whatever it is (the real game
    sets it to false itself); Fruitbot's camera follows the agent, and ``center_agent=False``
    (the whole 10×60 level in one frame) is refused.

    Where the defaults differ from ``procgen.ProcgenGym3Env``'s: ``distribution_mode`` is
    ``"easy"`` (procgen: ``"hard"``; only easy exists here) and ``use_backgrounds`` is
    ``False`` (procgen: ``True``; backgrounds are not drawn here, and ``True`` is refused).
    ``num_threads`` is accepted and ignored (the engine picks its own; procgen: 4 threads).
    ``device`` is ours (a torch device). The other defaults are procgen's:
    ``restrict_themes=False``, ``center_agent=True``, ``use_monochrome_assets=False``,
    ``use_generated_assets=False``, ``paint_vel_info=False``, ``use_sequential_levels=False``,
    ``num_levels=0``, ``start_level=0``, a random ``rand_seed``.
    """
    from envs import get_task, make

    if distribution_mode != "easy":
        raise ValueError(f"distribution_mode={distribution_mode!r}: only 'easy' is implemented")
    for key, value in options.items():
        if key not in _FIXED_OPTIONS:
            raise TypeError(f"unknown option {key!r}; valid options: "
                            f"{sorted(set(_FIXED_OPTIONS) | {'restrict_themes', 'center_agent'})}")
        if value != _FIXED_OPTIONS[key]:
            raise ValueError(f"{key}={value!r} is not supported: our games support only {key}={_FIXED_OPTIONS[key]!r}")
    for key, value in (("restrict_themes", restrict_themes), ("center_agent", center_agent)):
        if not isinstance(value, bool):
            raise TypeError(f"{key} must be true or false, got {value!r}")
    bare = "/" not in env_name and "#" not in env_name
    task = get_task(f"{env_name}/original" if bare else env_name)
    if task.game == "fruitbot" and not center_agent:
        raise ValueError("center_agent=False is not supported for fruitbot: our Fruitbot camera always follows "
                         "the agent (procgen would show the whole level); use center_agent=True")
    if bare and not restrict_themes:
        task = get_task(task.name, UNRESTRICTED_THEMES[task.game])
        task = dataclasses.replace(task, name=env_name)
    elif not bare and restrict_themes and _first_sprites(task.config):
        task = dataclasses.replace(task, config=task.config.with_overrides(_first_sprites(task.config)))
    seed = int(np.random.SeedSequence().entropy % (2**31)) if rand_seed is None else rand_seed
    return Gym3Env(make(task, num_envs=num, seed=seed, num_levels=num_levels, start_level=start_level,
                        device=device, monochrome=use_monochrome_assets))
