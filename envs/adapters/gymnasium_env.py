"""A single-environment ``gymnasium.Env`` over a one-environment :class:`VecGame`:

    from envs.adapters.gymnasium_env import GymnasiumEnv
    env = GymnasiumEnv("starpilot/dodge", seed=0, render_mode="rgb_array")
    obs, info = env.reset(seed=42)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())

It passes gymnasium's and stable-baselines3's ``check_env``; wrap it in SB3's ``DummyVecEnv``
or gymnasium's vector envs like any other (for many environments
:class:`~envs.adapters.gymnasium_vector.GymnasiumVectorEnv` is far faster).
"""

from __future__ import annotations

import gymnasium
import numpy as np
from gymnasium import spaces

from envs.adapters._common import check_seed, reset_with_seeds, timed_out
from envs.core import NUM_ACTIONS

RENDER_MODES = ["rgb_array"]


class GymnasiumEnv(gymnasium.Env):
    """One environment of ``task`` (a task name or :class:`envs.Task`); ``seed``,
    ``num_levels``, ``start_level``, ``levels``, ``overrides``, ``device`` and ``monochrome``
    as in :func:`envs.make` (``seed`` is the level family, Procgen's ``rand_seed``).

    Seeds. ``reset(seed=s)`` (an integer in ``[0, 2**32)``) restarts on the levels that
    environment ``s`` of ``envs.make(task, num_envs > s, seed=seed)`` plays: the same levels
    as environment i of a :class:`~envs.adapters.gymnasium_vector.GymnasiumVectorEnv` of that
    game given seed ``s`` for it, and ``reset(seed=0)`` is the first ``reset()``'s levels
    (``envs.make(task, 1, seed=seed)``'s). ``reset()`` without a seed reseeds nothing: the
    first starts on the first level, later ones move on to the next level of the stream unless
    the current one has not been played yet (just after an episode ended, or after a reset).
    ``options`` must be empty (there are none).

    Steps. ``terminated`` when the game ends the episode (death or level complete),
    ``truncated`` when the task's ``timeout`` does (a death on the timeout step itself counts
    as a timeout). As in Procgen the terminal frame is never rendered: the observation that
    comes with the episode's end is the first frame of the next level, which the engine has
    already loaded, and the following ``reset()`` starts on that level. ``info`` holds
    ``level_seed`` (the level the step was played in) and ``level_complete``.

    ``render_mode``: ``None`` or ``"rgb_array"`` (the 64×64 observation frame).
    """

    metadata = {"render_modes": RENDER_MODES, "render_fps": 15}

    def __init__(self, task, seed: int = 0, num_levels: int = 0, start_level: int = 0, levels: str = "train",
                 overrides: dict | None = None, device: str = "cpu", monochrome: bool = False,
                 render_mode: str | None = None):
        from envs import make

        if render_mode is not None and render_mode not in RENDER_MODES:
            raise ValueError(f"render_mode={render_mode!r}: {type(self).__name__} supports only "
                             f"{RENDER_MODES} or None")
        self.game = make(task, num_envs=1, seed=seed, num_levels=num_levels, start_level=start_level,
                         device=device, levels=levels, overrides=overrides, monochrome=monochrome)
        self.render_mode = render_mode
        self.observation_space = spaces.Box(0, 255, (64, 64, 3), np.uint8)
        self.action_space = spaces.Discrete(NUM_ACTIONS)

    @staticmethod
    def _frame(frames) -> np.ndarray:
        return frames[0].contiguous().cpu().numpy()

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if options:
            raise ValueError(f"options={options!r}: {type(self).__name__}.reset takes no options")
        if seed is not None:
            seed = check_seed(seed, 1)
        super().reset(seed=seed)
        obs = reset_with_seeds(self.game, [seed])
        return self._frame(obs), {"level_seed": int(self.game.level_seed[0])}

    def step(self, action):
        a = np.asarray(action)
        if a.shape not in ((), (1,)):
            raise ValueError(f"action must be one integer in 0..{NUM_ACTIONS - 1}, got shape {a.shape}")
        obs, reward, done, info = self.game.step(a.reshape(1))
        truncated = bool(timed_out(self.game, done, info)[0])
        terminated = bool(done[0]) and not truncated
        return self._frame(obs), float(reward[0]), terminated, truncated, {
            "level_seed": int(info["prev_level_seed"][0]), "level_complete": bool(info["prev_level_complete"][0])}

    def render(self):
        if self.render_mode is None:
            gymnasium.logger.warn(f"{type(self).__name__}.render() without a render_mode returns nothing; "
                                  "make it with render_mode='rgb_array'")
            return None
        if self.game.state is None:
            raise RuntimeError("call reset() before render()")
        return self._frame(self.game.render())

    def close(self):
        pass
