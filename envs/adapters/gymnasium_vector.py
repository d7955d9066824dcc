"""The gymnasium vector-env API (``gymnasium.vector.VectorEnv``) over a :class:`VecGame`.

Autoreset happens in the same step (``AutoresetMode.SAME_STEP``): the observation returned
with ``terminations[i]`` is the first frame of the next level. Procgen never renders the
terminal frame, so ``infos`` has no ``final_obs``; it carries ``episode_return``,
``episode_length``, ``level_seed`` and ``level_complete`` arrays (valid where done).
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv

from envs.core import NUM_ACTIONS, VecGame


class GymnasiumVectorEnv(VectorEnv):
    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": ["rgb_array"]}

    def __init__(self, game: VecGame):
        self.game = game
        self.num_envs = game.num_envs
        self.single_observation_space = spaces.Box(0, 255, (64, 64, 3), np.uint8)
        self.single_action_space = spaces.Discrete(NUM_ACTIONS)
        self.observation_space = spaces.Box(0, 255, (self.num_envs, 64, 64, 3), np.uint8)
        self.action_space = spaces.MultiDiscrete(np.full(self.num_envs, NUM_ACTIONS))
        self.render_mode = "rgb_array"

    def reset(self, *, seed: int | None = None, options=None):
        if seed is not None:
            self.game.seed = int(seed)
        obs = self.game.reset().cpu().numpy()
        return obs, {"level_seed": self.game.level_seed.cpu().numpy()}

    def step(self, actions):
        obs, reward, done, info = self.game.step(np.asarray(actions))
        done = done.cpu().numpy()
        infos = {
            "level_seed": info["prev_level_seed"].cpu().numpy(),
            "level_complete": info["prev_level_complete"].cpu().numpy(),
            "episode_return": info["episode_return"].cpu().numpy(),
            "episode_length": info["episode_length"].cpu().numpy(),
            "_episode_return": done,
            "_episode_length": done,
        }
        return obs.cpu().numpy(), reward.cpu().numpy(), done, np.zeros_like(done), infos

    def render(self):
        return self.game.render().cpu().numpy()
