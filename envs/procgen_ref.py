"""The real Procgen (procgen-mirror + gym3) behind the :class:`envs.core.VecGame` interface.

It is the ground truth our games are checked against. Only what the real game can do is
offered: the stock easy rules, drawn with ``use_backgrounds=False, restrict_themes=True``,
plus two thesis changes that a wrapper can make exactly — a survival bonus (added on every
step that does not end in a death, or on every step with ``survival_bonus_on_death``) and
disabled fire (actions 9–14 sent as action 4). Any other config change needs rules the real
game does not have and is refused by name.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import warnings

import numpy as np
import torch

from envs import randgen
from envs.config import GameConfig
from envs.schema import ConfigError
from envs.core import LEVEL_STREAMS, NUM_ACTIONS
from envs.tasks import Task, get_task

WRAPPABLE = {"starpilot": {"survival_bonus", "survival_bonus_on_death", "player_can_fire"},
             "fruitbot": {"survival_bonus", "survival_bonus_on_death"}}
VISUAL = {"starpilot": {"enemy_sprites", "rocket_sprites"},
          "fruitbot": {"fruit_sprites", "treat_sprites", "present_sprites"}}
# Changing these sprites changes collision boxes (the rocket's width, a fruit's box), not only looks.
SHAPE_SETTING = {"rocket_sprites", "fruit_sprites", "treat_sprites"}
# Not a rule: which levels our engine plays (the real game always plays its own stream).
NOT_RULES = {"level_stream"}


def _import_procgen():
    """Import procgen, muting the legacy ``gym`` banner it triggers on import."""
    with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            from procgen import ProcgenGym3Env
        except ImportError as e:  # pragma: no cover - depends on the install
            raise ImportError("the real Procgen needs the 'procgen' extra: pip install 'crl-merge[procgen]'") from e
    return ProcgenGym3Env


def unsupported_changes(config: GameConfig, allow_visual_differences: bool = False) -> list[str]:
    """Config keys that differ from the stock game and that no wrapper can reproduce."""
    stock = type(config)()
    changed = [f.name for f in dataclasses.fields(config) if getattr(config, f.name) != getattr(stock, f.name)]
    allowed = WRAPPABLE[config.game] | NOT_RULES | (VISUAL[config.game] - SHAPE_SETTING if allow_visual_differences else set())
    return [k for k in changed if k not in allowed]


class ProcgenRef:
    """``num_envs`` real Procgen environments, with the same ``reset``/``step`` as ``VecGame``.

    Tensors come back on the CPU. ``seed`` is Procgen's ``rand_seed``; ``levels="eval"``
    offsets it so evaluation levels come from a different stream than training ones.
    ``allow_visual_differences`` accepts sprite changes that only alter the picture (the
    real game keeps drawing its theme-0 sprites).
    """

    def __init__(self, task: str | Task, num_envs: int, seed: int = 0, num_levels: int = 0, start_level: int = 0,
                 levels: str = "train", allow_visual_differences: bool = False):
        self.task = task if isinstance(task, Task) else get_task(task)
        bad = unsupported_changes(self.task.config, allow_visual_differences)
        if bad:
            raise ConfigError(
                f"task '{self.task.name}' changes {bad}, which the real Procgen cannot do; it supports the stock "
                f"game plus {sorted(WRAPPABLE[self.task.game])}"
                + ("" if allow_visual_differences else " (sprite-only changes with allow_visual_differences=True)"))
        if levels not in LEVEL_STREAMS:
            raise ValueError(f"levels must be one of {sorted(LEVEL_STREAMS)}, got {levels!r}")
        self.num_envs = num_envs
        self.rand_seed = randgen.rand_seed(seed, LEVEL_STREAMS[levels])
        self.num_levels, self.start_level = num_levels, start_level
        self.env = None

    def reset(self) -> torch.Tensor:
        ProcgenGym3Env = _import_procgen()
        self.env = ProcgenGym3Env(num=self.num_envs, env_name=self.task.game, distribution_mode="easy",
                                  num_levels=self.num_levels, start_level=self.start_level, rand_seed=self.rand_seed,
                                  use_backgrounds=False, restrict_themes=True)
        self.episode_return = np.zeros(self.num_envs, dtype=np.float32)
        self.episode_length = np.zeros(self.num_envs, dtype=np.int64)
        _, obs, _ = self.env.observe()
        return torch.from_numpy(obs["rgb"].copy())

    def step(self, action):
        if self.env is None:
            raise RuntimeError("call reset() before step()")
        action = np.asarray(torch.as_tensor(action).cpu())
        if action.shape != (self.num_envs,) or not np.issubdtype(action.dtype, np.integer):
            raise ValueError(f"actions must be integers of shape ({self.num_envs},), got {action.dtype} {action.shape}")
        if ((action < 0) | (action >= NUM_ACTIONS)).any():
            raise ValueError(f"actions must be in 0..{NUM_ACTIONS - 1}")
        config = self.task.config
        if not getattr(config, "player_can_fire", True):
            action = np.where(action >= 9, 4, action)
        self.env.act(action.astype(np.int32))
        reward, obs, done = self.env.observe()
        infos = self.env.get_info()
        complete = np.array([bool(i["prev_level_complete"]) for i in infos])
        died = done & ~complete
        paid = np.ones_like(died) if config.survival_bonus_on_death else ~died
        reward = reward.astype(np.float32) + np.where(paid, config.survival_bonus, 0.0).astype(np.float32)
        self.episode_return += reward
        self.episode_length += 1
        info = {
            "level_seed": torch.tensor([i["level_seed"] for i in infos]),
            "prev_level_seed": torch.tensor([i["prev_level_seed"] for i in infos]),
            "prev_level_complete": torch.from_numpy(complete),
            "episode_return": torch.from_numpy(np.where(done, self.episode_return, 0.0).astype(np.float32)),
            "episode_length": torch.from_numpy(np.where(done, self.episode_length, 0)),
        }
        self.episode_return[done] = 0.0
        self.episode_length[done] = 0
        return torch.from_numpy(obs["rgb"].copy()), torch.from_numpy(reward), torch.from_numpy(done.copy()), info
