"""The batched environment: a game's pure (state, action) functions plus auto-reset,
level-seed streams, action checking and rendering, for ``num_envs`` environments at once.

A game module implements the :class:`Game` protocol. Its state is a ``dict`` of tensors,
each with a leading ``[num_envs]`` dimension, and must hold ``"t"``, the steps taken in the
current episode. :class:`VecGame` keeps that state on one torch device and never loops over
environments in Python.
"""

from __future__ import annotations

from typing import Protocol

import torch

from envs import rng
from envs.config import GameConfig
from envs.render import Renderer, SpriteBatch, TextureSpec

NUM_ACTIONS = 15
LEVEL_STREAMS = {"train": 0, "eval": 1}


class Game(Protocol):
    """What a game module provides (see ``envs/games/``)."""

    textures: list[TextureSpec]

    def __init__(self, config: GameConfig, device: torch.device): ...

    def generate(self, level_seed: torch.Tensor) -> dict[str, torch.Tensor]:
        """Fresh levels (``t == 0``) for a batch of level seeds."""

    def step(self, state: dict[str, torch.Tensor], action: torch.Tensor):
        """One step: returns ``(state, reward float32, done bool, level_complete bool)``."""

    def camera(self, state: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, float]:
        """Camera centre ``(cx, cy)`` in world units and the scale in pixels per unit."""

    def sprites(self, state: dict[str, torch.Tensor]) -> list[SpriteBatch]:
        """Everything to draw, in slot form."""


class VecGame:
    """``num_envs`` copies of a task, stepped together on ``device``.

    ``seed`` keys the level-seed stream (Procgen's ``rand_seed``); ``levels="eval"`` draws
    from a separate, held-out stream for the same seed. ``num_levels``/``start_level`` as in
    Procgen: 0 levels means the unbounded level set.
    """

    def __init__(self, task, num_envs: int, seed: int = 0, num_levels: int = 0, start_level: int = 0,
                 device: str | torch.device = "cpu", levels: str = "train", monochrome: bool = False):
        from envs.games import GAMES

        if not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        if not isinstance(num_levels, int) or num_levels < 0:
            raise ValueError(f"num_levels must be an integer ≥ 0 (0 = unbounded), got {num_levels!r}")
        if not isinstance(start_level, int) or not 0 <= start_level < 2**31:
            raise ValueError(f"start_level must be an integer in [0, 2**31), got {start_level!r}")
        if levels not in LEVEL_STREAMS:
            raise ValueError(f"levels must be one of {sorted(LEVEL_STREAMS)}, got {levels!r}")
        self.task = task
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.seed, self.num_levels, self.start_level = seed, num_levels, start_level
        self.domain = LEVEL_STREAMS[levels]
        self.game = GAMES[task.game](task.config, self.device)
        self.renderer = Renderer(self.game.textures, self.device, monochrome=monochrome)
        self.env_index = torch.arange(num_envs, device=self.device)
        self.state: dict[str, torch.Tensor] | None = None

    # -- level seeds -------------------------------------------------------------------
    def _level_seeds(self, env_index: torch.Tensor, episode: torch.Tensor) -> torch.Tensor:
        return rng.level_seeds(self.seed, self.domain, env_index, episode, self.num_levels, self.start_level)

    # -- API -----------------------------------------------------------------------------
    def reset(self) -> torch.Tensor:
        """Start every environment on its first level; returns the observations."""
        self.episode = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)
        self.level_seed = self._level_seeds(self.env_index, self.episode)
        self.state = self.game.generate(self.level_seed)
        self.episode_return = torch.zeros(self.num_envs, dtype=torch.float32, device=self.device)
        self.next_seed = self._level_seeds(self.env_index, self.episode + 1)
        self.next_level = self.game.generate(self.next_seed)
        self.next_stale = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        return self.render()

    def _refresh_next_levels(self, envs: torch.Tensor) -> None:
        """Pre-generate the next level of ``envs`` (one batched ``generate`` for all of them)."""
        seeds = self._level_seeds(envs, self.episode[envs] + 1)
        fresh = self.game.generate(seeds)
        self.next_level = {k: v.index_copy(0, envs, fresh[k]) for k, v in self.next_level.items()}
        self.next_seed = self.next_seed.index_copy(0, envs, seeds)
        self.next_stale = self.next_stale.index_fill(0, envs, False)

    def step(self, action: torch.Tensor):
        """Advance every environment; finished ones start a new level at once.

        Returns ``(obs, reward, done, info)``. As in Procgen, the observation that comes
        with ``done`` is the first frame of the next level. ``info`` holds tensors:
        ``level_seed`` (the level now loaded), ``prev_level_seed`` (the level this step was
        played in), ``prev_level_complete``, and for environments where ``done``,
        ``episode_return`` and ``episode_length`` of the episode that just ended.
        """
        if self.state is None:
            raise RuntimeError("call reset() before step()")
        action = self.check_action(action)
        state, reward, done, complete = self.game.step(self.state, action)
        done = done | (state["t"] >= self.task.config.timeout)
        self.episode_return = self.episode_return + reward
        info = {"prev_level_seed": self.level_seed, "prev_level_complete": complete,
                "episode_return": torch.where(done, self.episode_return, 0.0),
                "episode_length": torch.where(done, state["t"], 0)}
        self.episode_return = torch.where(done, 0.0, self.episode_return)
        ended = done.nonzero().squeeze(1)
        if ended.numel():
            # Each environment's next level is generated ahead of time; swap it in, and only
            # generate now for one whose next level was already used and not yet replaced.
            used_up = ended[self.next_stale[ended]]
            if used_up.numel():
                self._refresh_next_levels(used_up)
            state = {k: v.index_copy(0, ended, self.next_level[k][ended]) for k, v in state.items()}
            self.level_seed = self.level_seed.index_copy(0, ended, self.next_seed[ended])
            self.episode = self.episode.index_add(0, ended, torch.ones_like(ended))
            self.next_stale = self.next_stale.index_fill(0, ended, True)
            stale = self.next_stale.nonzero().squeeze(1)
            if stale.numel() >= max(1, self.num_envs // 8):  # amortise: regenerate in batches
                self._refresh_next_levels(stale)
        self.state = state
        info["level_seed"] = self.level_seed
        return self.render(), reward, done, info

    def render(self) -> torch.Tensor:
        """``[num_envs, 64, 64, 3]`` uint8 frames of the current state."""
        cx, cy, scale = self.game.camera(self.state)
        return self.renderer.render(cx, cy, scale, self.game.sprites(self.state))

    def check_action(self, action) -> torch.Tensor:
        """Actions as an int64 tensor on the device; anything outside 0..14 or misshaped is an error."""
        action = torch.as_tensor(action, device=self.device)
        if action.dtype.is_floating_point or action.dtype == torch.bool or action.is_complex():
            raise TypeError(f"actions must be integers in 0..{NUM_ACTIONS - 1}, got dtype {action.dtype}")
        if tuple(action.shape) != (self.num_envs,):
            raise ValueError(f"actions must have shape ({self.num_envs},), got {tuple(action.shape)}")
        action = action.long()
        if bool(((action < 0) | (action >= NUM_ACTIONS)).any()):
            bad = action[(action < 0) | (action >= NUM_ACTIONS)].tolist()
            raise ValueError(f"actions must be in 0..{NUM_ACTIONS - 1}; got {bad[:8]}")
        return action
