"""crl-merge environments: Procgen's Starpilot and Fruitbot as batched torch programs."""

from __future__ import annotations

from envs.config import FruitbotConfig, StarpilotConfig
from envs.schema import ConfigError
from envs.core import NUM_ACTIONS, VecGame
from envs.tasks import Task, builtin_tasks, get_task

EVAL_SEED = 5  # the thesis evaluates every model on level-generation seed 5 (protocols A)


def make(task: str | Task, num_envs: int = 64, seed: int = 0, num_levels: int = 0, start_level: int = 0,
         device: str = "cpu", levels: str = "train", overrides: dict | None = None,
         monochrome: bool = False) -> VecGame:
    """A batched environment for ``task``: a built-in name (see :func:`builtin_tasks`), or
    ``"file.yaml#name"``. ``overrides`` change config keys on top of the task's."""
    if not isinstance(task, Task):
        task = get_task(task, overrides)
    elif overrides:
        task = Task(task.name, task.config.with_overrides(overrides, source=f"task '{task.name}'"))
    return VecGame(task, num_envs, seed=seed, num_levels=num_levels, start_level=start_level,
                   device=device, levels=levels, monochrome=monochrome)


__all__ = ["make", "get_task", "builtin_tasks", "Task", "VecGame", "ConfigError", "StarpilotConfig",
           "FruitbotConfig", "NUM_ACTIONS", "EVAL_SEED"]
