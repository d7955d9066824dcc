"""Game configs: frozen, validated dataclasses that say what a task changes in a game.

Every field carries its allowed type and range in ``metadata``, so a bad override from a
YAML file fails with the key, the value and what is allowed, instead of deep inside a step.
The defaults of each config are the stock Procgen *easy* rules as the real game renders
them with ``restrict_themes=True`` (one sprite per entity type).
"""

from __future__ import annotations

from dataclasses import dataclass

from envs.schema import Config, Option, option


def _known_sprites(names: tuple) -> str | None:
    from envs.render import KNOWN_SPRITES  # local import: render imports the configs

    unknown = [n for n in names if n not in KNOWN_SPRITES]
    return f"unknown sprite(s) {unknown}; known sprites: {sorted(KNOWN_SPRITES)}" if unknown else None


def _field(default, kind: str, doc: str, lo=None, hi=None):
    """A game-config field; kind ``sprites`` is a non-empty list of Procgen sprite file names."""
    if kind == "sprites":
        return option(default, "list", doc, item=Option("str"), check=_known_sprites)
    return option(default, kind, doc, lo, hi)


class GameConfig(Config):
    """A game's rules as a frozen, validated dataclass (see :mod:`envs.schema`)."""

    game: str = ""


LEVEL_STREAMS = ("hash", "procgen")


def _level_stream():
    return option("hash", "str", "which levels a level seed and an environment's seed stream give: hash (this "
                  "engine's own counter-based levels, the default) or procgen (the real Procgen game's levels: the "
                  "same rand_seed, num_levels and start_level play the same levels in both)", choices=LEVEL_STREAMS,
                  recorded_at_default=False)  # added later: stores made before it keep their specs


@dataclass(frozen=True)
class StarpilotConfig(GameConfig):
    game = "starpilot"
    kill_reward: float = _field(1.0, "float", "reward for destroying an enemy ship", -1000, 1000)
    finish_reward: float = _field(10.0, "float", "reward for reaching the finish rocket", -1000, 1000)
    survival_bonus: float = _field(
        0.0, "float", "reward added on every step that does not end in the agent's death (and on that one "
        "too with survival_bonus_on_death)", -100, 100)
    survival_bonus_on_death: bool = _field(
        False, "bool", "true: the survival bonus is paid on the step that kills the agent as well, i.e. on every step")
    player_can_fire: bool = _field(True, "bool", "false: actions 9-14 are no-ops (like action 4)")
    enemies_fire: bool = _field(True, "bool", "false: enemy ships never shoot")
    spawn_enemies: bool = _field(True, "bool", "false: no enemy ships at all; the level holds only the finish rocket")
    group_size: tuple = _field((1, 5), "int_range", "ships per enemy group, inclusive range", 1, 5)
    level_end_step: int = _field(
        500, "int", "step at which the finish rocket enters; enemy groups are scheduled to start only up to "
        "this step", 1, 1000)
    enemy_sprites: tuple = _field(("spaceShips_001.png",), "sprites", "one drawn uniformly per enemy group")
    rocket_sprites: tuple = _field(
        ("spaceRockets_001.png",), "sprites", "one drawn uniformly per level; its aspect sets the rocket's width")
    timeout: int = _field(1000, "int", "episode step limit", 1, 100_000)
    level_stream: str = _level_stream()


@dataclass(frozen=True)
class FruitbotConfig(GameConfig):
    game = "fruitbot"
    fruit_reward: float = _field(1.0, "float", "reward per fruit eaten", -1000, 1000)
    treat_reward: float = _field(-4.0, "float", "reward per treat eaten", -1000, 1000)
    present_reward: float = _field(
        10.0, "float", "reward per present box overlapped at the finish (usually two: +20), or once with "
        "present_reward_once", -1000, 1000)
    present_reward_once: bool = _field(
        False, "bool", "true: reaching the presents pays present_reward once, however many boxes the agent overlaps")
    survival_bonus: float = _field(
        0.0, "float", "reward added on every step that does not end by hitting a wall (and on that one too "
        "with survival_bonus_on_death)", -100, 100)
    survival_bonus_on_death: bool = _field(
        False, "bool", "true: the survival bonus is paid on the step that hits a wall as well, i.e. on every step")
    fruit_count: tuple = _field((10, 19), "int_range", "fruits per level, inclusive range", 0, 60)
    treat_count: tuple = _field((10, 19), "int_range", "treats per level, inclusive range", 0, 60)
    fruit_sprites: tuple = _field(("fruit1.png",), "sprites", "one drawn uniformly per fruit; sets its box")
    treat_sprites: tuple = _field(("food1.png",), "sprites", "one drawn uniformly per treat; sets its box")
    present_sprites: tuple = _field(
        ("present1.png",), "sprites", "one drawn uniformly per present box (looks only: every box is 1x1)")
    timeout: int = _field(1000, "int", "episode step limit", 1, 100_000)
    level_stream: str = _level_stream()


GAME_CONFIGS: dict[str, type[GameConfig]] = {"starpilot": StarpilotConfig, "fruitbot": FruitbotConfig}
