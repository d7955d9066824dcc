"""A stable-baselines3 ``VecEnv`` over a :class:`envs.core.VecGame`.

Observations are ``uint8 [64, 64, 3]`` (SB3's ``CnnPolicy`` transposes and scales them).
Each finished episode's info carries ``{"episode": {"r", "l"}}`` like SB3's ``Monitor``, so
``ep_rew_mean`` is logged without a wrapper. As in Procgen, the terminal frame is never
rendered, so there is no ``terminal_observation``; episodes only end by termination in
practice (the 1000-step timeout is out of reach in both games).
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from envs.core import NUM_ACTIONS, VecGame


class SB3VecEnv(VecEnv):
    render_mode = "rgb_array"

    def __init__(self, game: VecGame):
        self.game = game
        super().__init__(game.num_envs, spaces.Box(0, 255, (64, 64, 3), np.uint8), spaces.Discrete(NUM_ACTIONS))
        self._actions = None

    def reset(self):
        return self.game.reset().cpu().numpy()

    def step_async(self, actions):
        self._actions = actions

    def step_wait(self):
        obs, reward, done, info = self.game.step(np.asarray(self._actions).reshape(self.num_envs))
        done_np = done.cpu().numpy()
        ret, length = info["episode_return"].cpu().numpy(), info["episode_length"].cpu().numpy()
        level_seed, complete = info["prev_level_seed"].cpu().numpy(), info["prev_level_complete"].cpu().numpy()
        infos = [{"level_seed": int(level_seed[i]), "level_complete": bool(complete[i])} for i in range(self.num_envs)]
        for i in np.nonzero(done_np)[0]:
            infos[i]["episode"] = {"r": float(ret[i]), "l": int(length[i])}
        return obs.cpu().numpy(), reward.cpu().numpy(), done_np, infos

    def close(self):
        pass

    def get_attr(self, attr_name, indices=None):
        return [getattr(self, attr_name)] * len(self._get_indices(indices))

    def set_attr(self, attr_name, value, indices=None):
        raise AttributeError(f"{type(self).__name__} has no per-environment attributes to set ({attr_name!r})")

    def env_method(self, method_name, *method_args, indices=None, **method_kwargs):
        raise AttributeError(f"{type(self).__name__} has no per-environment methods ({method_name!r})")

    def env_is_wrapped(self, wrapper_class, indices=None):
        return [False] * len(self._get_indices(indices))

    def get_images(self):
        return list(self.game.render().cpu().numpy())
