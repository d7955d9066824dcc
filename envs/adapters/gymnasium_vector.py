"""The gymnasium vector-env API (``gymnasium.vector.VectorEnv``) over a :class:`VecGame`.

Autoreset happens in the same step (``AutoresetMode.SAME_STEP``): the observation returned
with ``terminations[i]`` (or ``truncations[i]``) is the first frame of the next level.
Procgen never renders the terminal frame, so ``infos`` has no ``final_obs``; it carries
``episode_return``, ``episode_length``, ``level_seed`` and ``level_complete`` arrays (valid
where done).
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv

from envs.adapters._common import is_int, per_env_seeds, reset_with_seeds, timed_out
from envs.core import NUM_ACTIONS, VecGame


class GymnasiumVectorEnv(VectorEnv):
    """``reset(seed=...)`` as gymnasium's vector envs take it, mapped onto level streams:

    * ``seed=None``: no environment is reseeded. The first reset starts each on the first
      level of the game's own stream (``envs.make(task, n, seed=S)``'s levels); later ones
      move each environment that has played some of its level on to its next level (one
      that has just started a level stays on it).
    * ``seed=s`` (an integer in ``[0, 2**32 - n]``): environment i gets seed ``s + i``;
    * ``seed=[s_0, ..., s_{n-1}]`` (one integer or ``None`` per environment): environment i
      gets ``s_i`` (``None``: not reseeded, as above).

    Environment i with seed ``s`` restarts on the levels that environment ``s`` of
    ``envs.make(task, num_envs > s, seed=S)`` plays, ``S`` being the game's seed (the level
    family, Procgen's ``rand_seed``): ``reset(seed=0)`` gives the game's own levels, equal
    seeds give equal levels (in any slot, and in a :class:`~envs.adapters.gymnasium_env.GymnasiumEnv`
    of the same task and ``seed=S``), and ``levels="eval"`` games keep their held-out family.
    Anything else is refused by name, as are reset ``options`` (there are none; gymnasium's
    ``reset_mask`` is not supported). Timeouts (the task's ``timeout``) are truncations.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": ["rgb_array"]}

    def __init__(self, game: VecGame):
        self.game = game
        self.num_envs = game.num_envs
        self.single_observation_space = spaces.Box(0, 255, (64, 64, 3), np.uint8)
        self.single_action_space = spaces.Discrete(NUM_ACTIONS)
        self.observation_space = spaces.Box(0, 255, (self.num_envs, 64, 64, 3), np.uint8)
        self.action_space = spaces.MultiDiscrete(np.full(self.num_envs, NUM_ACTIONS))
        self.render_mode = "rgb_array"

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict | None = None):
        if options:
            raise ValueError(f"options={options!r}: {type(self).__name__}.reset takes no options "
                             "(reset_mask is not supported: every environment is reset)")
        seeds = per_env_seeds(seed, self.num_envs)
        if is_int(seed):  # as VectorEnv.reset does
            super().reset(seed=seeds[0])
        obs = reset_with_seeds(self.game, seeds).cpu().numpy()
        return obs, {"level_seed": self.game.level_seed.cpu().numpy()}

    def step(self, actions):
        obs, reward, done, info = self.game.step(np.asarray(actions))
        truncated = timed_out(self.game, done, info).cpu().numpy()
        done = done.cpu().numpy()
        infos = {
            "level_seed": info["prev_level_seed"].cpu().numpy(),
            "level_complete": info["prev_level_complete"].cpu().numpy(),
            "episode_return": info["episode_return"].cpu().numpy(),
            "episode_length": info["episode_length"].cpu().numpy(),
            "_episode_return": done,
            "_episode_length": done,
        }
        return obs.cpu().numpy(), reward.cpu().numpy(), done & ~truncated, truncated, infos

    def render(self):
        return self.game.render().cpu().numpy()
