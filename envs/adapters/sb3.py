"""A stable-baselines3 ``VecEnv`` over a :class:`envs.core.VecGame`.

Observations are ``uint8 [64, 64, 3]`` (SB3's ``CnnPolicy`` transposes and scales them).
Each finished episode's info carries ``{"episode": {"r", "l"}}`` like SB3's ``Monitor``, so
``ep_rew_mean`` is logged without a wrapper. As in Procgen, the terminal frame is never
rendered, so there is no ``terminal_observation``; an episode cut by the task's ``timeout``
has ``"TimeLimit.truncated": True`` in its info, as SB3 marks truncations (the 1000-step
timeout is out of reach in both games).

Seeds as in SB3: ``seed(s)`` gives environment i seed ``s + i`` for the next ``reset()`` only
(``seed()``: a random ``s``) and returns those seeds. Environment i with seed ``s + i`` plays
what it would after ``GymnasiumVectorEnv.reset(seed=s)``: the levels of environment ``s + i``
of ``envs.make(task, seed=S)``, ``S`` being the game's seed (``seed(0)`` gives the game's own
levels; see ``envs/adapters/_common.py``). Without a seed, ``reset()`` reseeds nothing: the
first starts every environment on its first level, later ones move each environment that has
played some of its level on to its next one. Reset options (``set_options``) are refused: there
are none. Note that SB3's algorithms call ``env.seed(seed)`` when given a ``seed``, so that seed
also picks the levels.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from envs.adapters._common import SEED_LIMIT, check_seed, per_env_seeds, reset_with_seeds, timed_out
from envs.core import NUM_ACTIONS, VecGame


class SB3VecEnv(VecEnv):
    render_mode = "rgb_array"

    def __init__(self, game: VecGame):
        self.game = game
        super().__init__(game.num_envs, spaces.Box(0, 255, (64, 64, 3), np.uint8), spaces.Discrete(NUM_ACTIONS))
        self._actions = None

    def seed(self, seed: int | None = None) -> list[int]:
        """Seeds ``seed + i`` for environment i at the next ``reset()`` (SB3's semantics); returns them."""
        if seed is None:  # SB3 draws one at random too; here small enough that seed + i stays a valid seed
            seed = int(np.random.randint(0, SEED_LIMIT - self.num_envs + 1, dtype=np.int64))
        start = check_seed(seed, self.num_envs)
        self._seeds = [start + i for i in range(self.num_envs)]
        return self._seeds

    def reset(self):
        if any(self._options):
            raise ValueError(f"options={self._options!r} (set_options): {type(self).__name__}'s environments take "
                             "no reset options")
        seeds = per_env_seeds(self._seeds, self.num_envs, "seeds")  # set by seed(), used once, as in SB3
        self._reset_seeds()
        obs = reset_with_seeds(self.game, seeds).cpu().numpy()
        self.reset_infos = [{"level_seed": int(s)} for s in self.game.level_seed.cpu().numpy()]
        return obs

    def step_async(self, actions):
        self._actions = actions

    def step_wait(self):
        obs, reward, done, info = self.game.step(np.asarray(self._actions).reshape(self.num_envs))
        done_np = done.cpu().numpy()
        ret, length = info["episode_return"].cpu().numpy(), info["episode_length"].cpu().numpy()
        level_seed, complete = info["prev_level_seed"].cpu().numpy(), info["prev_level_complete"].cpu().numpy()
        truncated = timed_out(self.game, done, info).cpu().numpy()
        infos = [{"level_seed": int(level_seed[i]), "level_complete": bool(complete[i])} for i in range(self.num_envs)]
        for i in np.nonzero(done_np)[0]:
            infos[i]["episode"] = {"r": float(ret[i]), "l": int(length[i])}
            infos[i]["TimeLimit.truncated"] = bool(truncated[i])
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
