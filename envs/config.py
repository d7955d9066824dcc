"""Game configs: frozen, validated dataclasses that say what a task changes in a game.

Every field carries its allowed type and range in ``metadata``, so a bad override from a
YAML file fails with the key, the value and what is allowed, instead of deep inside a step.
The defaults of each config are the stock Procgen *easy* rules as the real game renders
them with ``restrict_themes=True`` (one sprite per entity type).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping


class ConfigError(ValueError):
    """A task or game config is invalid: the message names the key and what is allowed."""


def _field(default, kind: str, doc: str, lo=None, hi=None):
    return field(default=default, metadata={"kind": kind, "lo": lo, "hi": hi, "doc": doc})


def _check(cls_name: str, name: str, value: Any, meta: Mapping[str, Any]) -> Any:
    """Validate one value against its field metadata; return it normalised (lists → tuples)."""
    kind, lo, hi = meta["kind"], meta["lo"], meta["hi"]
    where = f"{cls_name}.{name}"

    def in_range(v):
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise ConfigError(f"{where} = {value!r} is out of range: allowed {lo} ≤ value ≤ {hi}")

    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        in_range(value)
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        in_range(float(value))
        return float(value)
    if kind == "int_range":
        if (not isinstance(value, (list, tuple)) or len(value) != 2
                or any(isinstance(v, bool) or not isinstance(v, int) for v in value)):
            raise ConfigError(f"{where} must be a pair of integers [low, high] (both inclusive), got {value!r}")
        a, b = value
        if a > b:
            raise ConfigError(f"{where} = {value!r}: low must not exceed high")
        in_range(a)
        in_range(b)
        return (a, b)
    if kind == "sprites":
        if (not isinstance(value, (list, tuple)) or len(value) == 0
                or not all(isinstance(v, str) for v in value)):
            raise ConfigError(f"{where} must be a non-empty list of sprite file names, got {value!r}")
        from envs.render import KNOWN_SPRITES  # local import: render imports config users

        unknown = [v for v in value if v not in KNOWN_SPRITES]
        if unknown:
            raise ConfigError(f"{where}: unknown sprite(s) {unknown}; known sprites: {sorted(KNOWN_SPRITES)}")
        return tuple(value)
    raise AssertionError(f"unknown field kind {kind}")


class GameConfig:
    """Mixin for the game config dataclasses: validation and overrides."""

    game: str = ""

    def __post_init__(self):
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _check(type(self).__name__, f.name, getattr(self, f.name), f.metadata))

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    def with_overrides(self, overrides: Mapping[str, Any], source: str = "overrides"):
        """A copy with ``overrides`` applied; unknown keys are an error listing the valid ones."""
        if not isinstance(overrides, Mapping):
            raise ConfigError(f"{source}: overrides must be a mapping of key: value, got {overrides!r}")
        unknown = sorted(set(overrides) - set(self.keys()))
        if unknown:
            raise ConfigError(
                f"{source}: unknown key(s) {unknown} for game '{self.game}'; valid keys: {self.keys()}")
        try:
            return dataclasses.replace(self, **dict(overrides))
        except ConfigError as e:
            raise ConfigError(f"{source}: {e}") from None

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}


@dataclass(frozen=True)
class StarpilotConfig(GameConfig):
    game = "starpilot"
    kill_reward: float = _field(1.0, "float", "reward for destroying an enemy ship", -1000, 1000)
    finish_reward: float = _field(10.0, "float", "reward for reaching the finish rocket", -1000, 1000)
    survival_bonus: float = _field(
        0.0, "float", "reward added on every step that does not end in the agent's death", -100, 100)
    player_can_fire: bool = _field(True, "bool", "false: actions 9-14 are no-ops (like action 4)")
    enemies_fire: bool = _field(True, "bool", "false: enemy ships never shoot")
    group_size: tuple = _field((1, 5), "int_range", "ships per enemy group, inclusive range", 1, 5)
    enemy_sprites: tuple = _field(("spaceShips_001.png",), "sprites", "one drawn uniformly per enemy group")
    rocket_sprites: tuple = _field(
        ("spaceRockets_001.png",), "sprites", "one drawn uniformly per level; its aspect sets the rocket's width")
    timeout: int = _field(1000, "int", "episode step limit", 1, 100_000)


@dataclass(frozen=True)
class FruitbotConfig(GameConfig):
    game = "fruitbot"
    fruit_reward: float = _field(1.0, "float", "reward per fruit eaten", -1000, 1000)
    treat_reward: float = _field(-4.0, "float", "reward per treat eaten", -1000, 1000)
    present_reward: float = _field(
        10.0, "float", "reward per present box overlapped at the finish (usually two: +20)", -1000, 1000)
    survival_bonus: float = _field(
        0.0, "float", "reward added on every step that does not end by hitting a wall", -100, 100)
    fruit_count: tuple = _field((10, 19), "int_range", "fruits per level, inclusive range", 0, 60)
    treat_count: tuple = _field((10, 19), "int_range", "treats per level, inclusive range", 0, 60)
    fruit_sprites: tuple = _field(("fruit1.png",), "sprites", "one drawn uniformly per fruit; sets its box")
    treat_sprites: tuple = _field(("food1.png",), "sprites", "one drawn uniformly per treat; sets its box")
    timeout: int = _field(1000, "int", "episode step limit", 1, 100_000)


GAME_CONFIGS: dict[str, type[GameConfig]] = {"starpilot": StarpilotConfig, "fruitbot": FruitbotConfig}
