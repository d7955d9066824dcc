"""The batched environment: a game's pure (state, action) functions plus auto-reset,
level-seed streams, action checking and rendering, for ``num_envs`` environments at once.

A game module implements the :class:`Game` protocol. Its state is a ``dict`` of tensors,
each with a leading ``[num_envs]`` dimension, and must hold ``"t"``, the steps taken in the
current episode. :class:`VecGame` keeps that state on one torch device and never loops over
environments in Python.

Speed. At the batch sizes RL uses on a CPU (tens of environments) a step costs what its
number of tensor operations costs, so the games and the renderer are written for few
operations, and the engine's work runs
* in ``torch.inference_mode`` (no autograd or view bookkeeping). ``env.state`` and the
  other internal tensors are therefore inference tensors (modify them, if at all, inside
  ``torch.inference_mode()``); the frames, rewards, dones and info a step returns are
  ordinary tensors;
* on one intra-op thread on the CPU (the tensors are far below the size where threads pay
  off, and waiting for a busy second core costs milliseconds);
* in place: ``game.step(state, action, inplace=True)`` updates the one state table, so the
  games keep views of it and the renderer keeps its gather plans.
On the CPU, reading data on the host is free, so steps skip work by looking at the data
(only the finished environments are reset, only visible sprites drawn, only live bullets
tested). Other devices take the sync-free forms instead (``sync_free=True``, which the
tests run on the CPU against the default and which give the same results): ``step``
never waits for the device: no ``.item()``, no ``nonzero``, no data-dependent shapes,
auto-reset by ``where`` with next levels generated in fixed-size batches (see
``_reset_static``). Pass ``validate=False`` to skip the one check that does synchronise,
the range check of the actions.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Protocol

import torch

from envs import randgen, rng
from envs.config import GameConfig
from envs.render import Renderer, SpriteBatch, TextureSpec

NUM_ACTIONS = 15
LEVEL_STREAMS = {"train": 0, "eval": 1}
SINGLE_THREAD_ENVS = 256  # up to this many environments, CPU steps run on one intra-op thread


class Game(Protocol):
    """What a game module provides (see ``envs/games/``)."""

    textures: list[TextureSpec]
    min_episode_length: int  # no episode ends in fewer steps (timeouts aside)

    def __init__(self, config: GameConfig, device: torch.device): ...

    def generate(self, level_seed: torch.Tensor) -> dict[str, torch.Tensor]:
        """Fresh levels (``t == 0``) for a batch of level seeds; row i depends on seed i only."""

    def step(self, state: dict[str, torch.Tensor], action: torch.Tensor, inplace: bool = False):
        """One step: returns ``(state, reward float32, done bool, level_complete bool)``.
        ``inplace`` may update and return ``state`` itself instead of a new one."""

    def camera(self, state: dict[str, torch.Tensor]) -> tuple:
        """Camera centre ``(cx, cy)`` in world units (floats or ``[N]`` tensors) and the scale
        in pixels per unit."""

    def sprites(self, state: dict[str, torch.Tensor]) -> list[SpriteBatch]:
        """Everything to draw, in slot form."""


class VecGame:
    """``num_envs`` copies of a task, stepped together on ``device``.

    ``seed`` keys the level-seed stream (Procgen's ``rand_seed``); ``levels="eval"`` draws
    from a separate, held-out stream for the same seed. Environment i plays stream i of its
    seed unless ``reset(stream=...)`` gives it another. ``num_levels``/``start_level`` as in
    Procgen: 0 levels means the unbounded level set.
    With the task config's ``level_stream: procgen`` (``envs/randgen.py``), level seeds and
    levels are the real game's: environment i plays what environment i of
    ``ProcgenGym3Env(rand_seed=seed, num_levels=…, start_level=…)`` plays (``levels="eval"``:
    ``rand_seed = seed + 2**30``, as ``envs.procgen_ref.ProcgenRef``). Drawing those seeds
    and StarPilot's spawn order reads data on the host, so off the CPU that stream's level
    generation synchronises.

    ``sync_free`` (default: on every device but the CPU) makes ``step`` free of host
    synchronisations; on the CPU the default instead skips work that a step does not need
    (finding the finished environments, the visible sprites), which is cheaper there. Both
    give the same results. ``threads``: intra-op threads for CPU steps (default: 1 up to
    256 environments, torch's setting above; ``None`` keeps torch's setting).
    """

    def __init__(self, task, num_envs: int, seed: int = 0, num_levels: int = 0, start_level: int = 0,
                 device: str | torch.device = "cpu", levels: str = "train", monochrome: bool = False,
                 sync_free: bool | None = None, threads: int | None | str = "auto"):
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
        self.sync_free = self.device.type != "cpu" if sync_free is None else bool(sync_free)
        if threads == "auto":
            threads = 1 if self.device.type == "cpu" and num_envs <= SINGLE_THREAD_ENVS else None
        self.threads = threads
        self.game = GAMES[task.game](task.config, self.device)
        self.game.sync_ok = not self.sync_free
        self.renderer = Renderer(self.game.textures, self.device, monochrome=monochrome, compact=not self.sync_free)
        self.env_index = torch.arange(num_envs, device=self.device)
        self.timeout = task.config.timeout
        # sync-free auto-reset: levels generated per step, enough that none is ever missing
        shortest = max(1, min(self.timeout, getattr(self.game, "min_episode_length", 1)))
        self.refresh_size = min(num_envs, math.ceil(num_envs / shortest))
        self.state: dict[str, torch.Tensor] | None = None
        self.stream: torch.Tensor | None = None  # per-environment level streams (None: env i plays stream i)
        self.procgen_seeds: randgen.LevelSeeds | None = None  # level_stream procgen: the streams' generators
        self._ones_cache = torch.ones(0, dtype=torch.int64, device=self.device)

    @contextmanager
    def _engine(self):
        """The setting the engine's work runs in: its thread count, and inference mode (no
        autograd or view bookkeeping: a large share of an operation's cost at these sizes).
        The engine's own tensors (state, next levels, counters) are inference tensors; what
        it returns is made outside (``_out``) and behaves like any other tensor."""
        before = torch.get_num_threads()
        switch = self.threads is not None and before != self.threads
        if switch:
            torch.set_num_threads(self.threads)
        try:
            with torch.inference_mode():
                yield
        finally:
            if switch:
                torch.set_num_threads(before)

    @staticmethod
    def _out(*tensors):
        """Copies of inference tensors that callers may modify in place or use with autograd."""
        with torch.inference_mode(False):
            return [t.clone() for t in tensors]

    # -- level seeds -------------------------------------------------------------------
    def _level_seeds(self, env_index: torch.Tensor, episode: torch.Tensor) -> torch.Tensor:
        if self.procgen_seeds is not None:
            return self.procgen_seeds.draw(env_index, episode)
        stream = env_index if self.stream is None else self.stream.index_select(0, env_index)
        return rng.level_seeds(self.seed, self.domain, stream, episode, self.num_levels, self.start_level)

    def _per_env(self, values, name: str, limit: int) -> torch.Tensor:
        values = torch.as_tensor(values, device=self.device)
        if values.dtype.is_floating_point or values.dtype == torch.bool or values.is_complex():
            raise TypeError(f"{name} must be integers, got dtype {values.dtype}")
        if tuple(values.shape) != (self.num_envs,):
            raise ValueError(f"{name} must have shape ({self.num_envs},), got {tuple(values.shape)}")
        values = values.to(torch.int64, copy=True)
        if bool(((values < 0) | (values >= limit)).any()):
            raise ValueError(f"{name} must be integers in [0, {limit}), got {values.tolist()[:8]}")
        return values

    # -- API -----------------------------------------------------------------------------
    def reset(self, stream=None, episode=None) -> torch.Tensor:
        """Start every environment on its first level; returns the observations.

        ``stream``, ``episode`` (optional, ``num_envs`` integers each): environment i plays
        level stream ``stream[i]`` of this seed (default: the streams it had, at first stream
        i) from its ``episode[i]``-th level on (default 0), i.e. the levels that environment
        ``stream[i]`` of a game with this seed plays from its episode ``episode[i]``. A
        ``stream`` given stays for later resets. The adapters' seeds (``envs/adapters``) use it.
        """
        with self._engine():
            stream = self.stream if stream is None else self._per_env(stream, "stream", 2**32)
            self.episode = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device) if episode is None \
                else self._per_env(episode, "episode", 2**62)
            self.stream = stream
            if self.task.config.level_stream == "procgen":
                self.procgen_seeds = randgen.LevelSeeds(randgen.rand_seed(self.seed, self.domain),
                                                        self.env_index if stream is None else stream,
                                                        self.num_levels, self.start_level)
            self.level_seed = self._level_seeds(self.env_index, self.episode)
            self.state = self.game.generate(self.level_seed)
            self.episode_return = torch.zeros(self.num_envs, dtype=torch.float32, device=self.device)
            self.next_seed = self._level_seeds(self.env_index, self.episode + 1)
            self.next_level = self.game.generate(self.next_seed)
            self.steps = 0
            # levels whose pre-generated successor has been used: a Python set on the CPU,
            # the step it happened (+inf: none) when sync-free
            self.stale: set[int] = set()
            self.stale_since = torch.full((self.num_envs,), math.inf, device=self.device)
            return self._render()

    def step(self, action, validate: bool = True):
        """Advance every environment; finished ones start a new level at once.

        Returns ``(obs, reward, done, info)``. As in Procgen, the observation that comes
        with ``done`` is the first frame of the next level. ``info`` holds tensors:
        ``level_seed`` (the level now loaded), ``prev_level_seed`` (the level this step was
        played in), ``prev_level_complete``, and for environments where ``done``,
        ``episode_return`` and ``episode_length`` of the episode that just ended.

        ``validate=False`` skips the range check of the actions (the only part of a step
        that waits for the device): for trusted callers, e.g. a trainer sampling them from a
        categorical distribution. Actions of the wrong shape or dtype are still an error.
        """
        if self.state is None:
            raise RuntimeError("call reset() before step()")
        with self._engine():
            action = self.check_action(action, validate)
            state, reward, done, complete = self.game.step(self.state, action, inplace=True)
            done = done | (state["t"] >= self.timeout)
            self.episode_return += reward
            ended_return = torch.where(done, self.episode_return, 0.0)
            ended_length = torch.where(done, state["t"], 0)
            self.episode_return.masked_fill_(done, 0.0)
            prev_seed = self.level_seed
            self.steps += 1
            if self.sync_free:
                state = self._reset_static(state, done)
            else:
                self._reset_compact(state, done)
            self.state = state
            obs = self._render()
        reward, done, complete, ended_return, ended_length, prev_seed, seed = self._out(
            reward, done, complete, ended_return, ended_length, prev_seed, self.level_seed)
        info = {"prev_level_seed": prev_seed, "prev_level_complete": complete, "episode_return": ended_return,
                "episode_length": ended_length, "level_seed": seed}
        return obs, reward, done, info

    def _refresh(self, envs: torch.Tensor) -> None:
        """Generate the next level of ``envs`` (one batched ``generate``) in place."""
        seeds = self._level_seeds(envs, self.episode.index_select(0, envs) + 1)
        fresh = self.game.generate(seeds)
        for k, v in self.next_level.items():
            v.index_copy_(0, envs, fresh[k])
        self.next_seed.index_copy_(0, envs, seeds)

    def _reset_compact(self, state, done) -> None:
        """Auto-reset where reading ``done`` on the host is free (the CPU): only finished
        environments are touched, and next levels are generated in batches: when N/2 have
        been used, or when one is needed again before that."""
        ended = done.nonzero().squeeze(1)
        if not ended.shape[0]:
            return
        ended_list = ended.tolist()
        if not self.stale.isdisjoint(ended_list):  # one finished again before its next level was made
            self._refresh(torch.tensor(sorted(self.stale), device=self.device))
            self.stale.clear()
        for k, v in state.items():
            v.index_copy_(0, ended, self.next_level[k].index_select(0, ended))
        self.level_seed = self.level_seed.index_copy(0, ended, self.next_seed.index_select(0, ended))
        self.episode.index_add_(0, ended, self._ones(ended.shape[0]))
        self.stale.update(ended_list)
        if len(self.stale) >= max(1, self.num_envs // 2):  # amortise: regenerate in batches
            self._refresh(torch.tensor(sorted(self.stale), device=self.device))
            self.stale.clear()

    def _ones(self, n: int) -> torch.Tensor:
        if self._ones_cache.shape[0] < n:
            self._ones_cache = torch.ones(n, dtype=torch.int64, device=self.device)
        return self._ones_cache[:n]

    def _reset_static(self, state, done):
        """Auto-reset without host synchronisation. Every step regenerates the next level of
        the ``refresh_size`` environments whose next level has been used longest ago (first
        those that finish now), then every finished environment swaps its next level in.
        With ``refresh_size = ceil(N / L)``, L the shortest possible episode, a used next level
        is always replaced before its environment can finish again."""
        now = float(self.steps)
        priority = torch.where(done & (self.stale_since < math.inf), -math.inf, self.stale_since)
        chosen = torch.topk(priority, self.refresh_size, largest=False, sorted=False).indices
        self._refresh(chosen)
        self.stale_since.index_fill_(0, chosen, math.inf)
        for k, v in state.items():
            torch.where(done.view(-1, *[1] * (v.dim() - 1)), self.next_level[k], v, out=v)
        self.level_seed = torch.where(done, self.next_seed, self.level_seed)
        self.episode += done
        self.stale_since = torch.where(done, now, self.stale_since)
        return state

    def render(self) -> torch.Tensor:
        """``[num_envs, 64, 64, 3]`` uint8 frames of the current state."""
        with self._engine():
            return self._render()

    def _render(self) -> torch.Tensor:
        cx, cy, scale = self.game.camera(self.state)
        return self.renderer.render(cx, cy, scale, self.game.sprites(self.state))

    def check_action(self, action, validate: bool = True) -> torch.Tensor:
        """Actions as an int64 tensor on the device; anything outside 0..14 or misshaped is an
        error (the range check, which reads the actions on the host, only with ``validate``)."""
        action = torch.as_tensor(action, device=self.device)
        if action.dtype.is_floating_point or action.dtype == torch.bool or action.is_complex():
            raise TypeError(f"actions must be integers in 0..{NUM_ACTIONS - 1}, got dtype {action.dtype}")
        if tuple(action.shape) != (self.num_envs,):
            raise ValueError(f"actions must have shape ({self.num_envs},), got {tuple(action.shape)}")
        action = action.long()
        if validate and bool((action // NUM_ACTIONS).any()):  # nonzero exactly outside 0..14
            bad = action[(action < 0) | (action >= NUM_ACTIONS)].tolist()
            raise ValueError(f"actions must be in 0..{NUM_ACTIONS - 1}; got {bad[:8]}")
        return action
