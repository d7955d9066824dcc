"""Tasks by name: a game plus a validated config, defined in YAML (built-in or a user's file).

A task file has one top-level key, ``tasks``, mapping names to entries with either
``game: <starpilot|fruitbot>`` (the stock rules) or ``base: <task name>``, and optional
``overrides: {key: value}``. ``base`` may name a built-in task or one in the same file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from envs.config import GAME_CONFIGS, GameConfig
from envs.schema import ConfigError

BUILTIN_FILE = Path(__file__).with_name("tasks.yaml")
ENTRY_KEYS = {"game", "base", "overrides"}


@dataclass(frozen=True)
class Task:
    name: str
    config: GameConfig

    @property
    def game(self) -> str:
        return self.config.game


def _read_task_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"task file {path} does not exist")
    with open(path) as f:
        data = yaml.safe_load(f)
    if not isinstance(data, dict) or set(data) != {"tasks"} or not isinstance(data["tasks"], dict):
        raise ConfigError(f"{path}: a task file must have exactly one top-level key 'tasks' mapping names to entries")
    return data["tasks"]


def _resolve(name: str, entries: dict[str, Any], source: str, builtin: dict[str, Any], seen: tuple = ()) -> Task:
    if name in seen:
        raise ConfigError(f"{source}: task '{name}' inherits from itself via {' → '.join(seen + (name,))}")
    if name in entries:
        entry, where = entries[name], source
    elif name in builtin:
        entry, where = builtin[name], str(BUILTIN_FILE)
    else:
        raise ConfigError(f"{source}: unknown task '{name}'; valid tasks: {sorted(set(entries) | set(builtin))}")
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: task '{name}' must be a mapping with keys {sorted(ENTRY_KEYS)}")
    unknown = sorted(set(entry) - ENTRY_KEYS)
    if unknown:
        raise ConfigError(f"{where}: task '{name}' has unknown key(s) {unknown}; valid keys: {sorted(ENTRY_KEYS)}")
    if ("game" in entry) == ("base" in entry):
        raise ConfigError(f"{where}: task '{name}' needs exactly one of 'game' or 'base'")
    if "game" in entry:
        if entry["game"] not in GAME_CONFIGS:
            raise ConfigError(f"{where}: task '{name}': unknown game {entry['game']!r}; valid games: {sorted(GAME_CONFIGS)}")
        config = GAME_CONFIGS[entry["game"]]()
    else:
        config = _resolve(entry["base"], entries, source, builtin, seen + (name,)).config
    config = config.with_overrides(entry.get("overrides") or {}, source=f"{where}: task '{name}'")
    return Task(name, config)


def builtin_tasks() -> list[str]:
    return list(_read_task_file(BUILTIN_FILE))


def get_task(spec: str, overrides: dict[str, Any] | None = None) -> Task:
    """Resolve ``"starpilot/dodge"`` or ``"path/to/file.yaml#name"`` (``#name`` optional when
    the file defines one task) to a :class:`Task`, with optional extra ``overrides``."""
    builtin = _read_task_file(BUILTIN_FILE)
    if not isinstance(spec, str):
        raise ConfigError(f"a task is named by a string, got {spec!r}")
    path_part, _, name = spec.partition("#")
    if path_part.endswith((".yaml", ".yml")):
        path = Path(path_part)
        entries = _read_task_file(path)
        if not name:
            if len(entries) != 1:
                raise ConfigError(f"{path} defines {len(entries)} tasks; name one with '{path}#NAME', one of {sorted(entries)}")
            name = next(iter(entries))
        task = _resolve(name, entries, str(path), builtin)
        task = Task(f"{path}#{name}", task.config)
    else:
        task = _resolve(spec, {}, "task name", builtin)
    if overrides:
        task = Task(task.name, task.config.with_overrides(overrides, source=f"task '{task.name}'"))
    return task
