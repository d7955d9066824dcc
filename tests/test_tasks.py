"""Tasks by name and from YAML files, and the errors a user sees for bad input."""

import pytest

import envs
from envs import ConfigError, get_task


def test_every_builtin_task_resolves():
    names = envs.builtin_tasks()
    assert set(names) == {"starpilot/original", "starpilot/super", "starpilot/dodge", "starpilot/shoot",
                          "fruitbot/original", "fruitbot/super", "fruitbot/treats", "fruitbot/fruits", "fruitbot/empty"}
    for name in names:
        assert get_task(name).game == name.split("/")[0]


def test_thesis_variants_are_the_games_of_the_thesis_code():
    """AleksTat/model-merging-rl, procgen_games/*.cpp (see shared/design/thesis-code-facts.md)."""
    sup, dodge, shoot = (get_task(f"starpilot/{t}").config for t in ("super", "dodge", "shoot"))
    assert (sup.survival_bonus, sup.survival_bonus_on_death, sup.level_end_step) == (0.01, True, 500)
    assert (dodge.player_can_fire, dodge.survival_bonus, dodge.enemies_fire, dodge.level_end_step) == (False, 0.1, True, 200)
    assert dodge.survival_bonus_on_death  # inherited from super
    assert (shoot.enemies_fire, shoot.survival_bonus, shoot.group_size, shoot.level_end_step) == (False, 0.0, (1, 3), 500)
    for c in (sup, dodge, shoot):
        assert c.enemy_sprites == ("spaceShips_002.png", "spaceShips_007.png")
        assert c.rocket_sprites == ("spaceRockets_003.png",)
    fsup, treats, fruits, empty = (get_task(f"fruitbot/{t}").config for t in ("super", "treats", "fruits", "empty"))
    assert (fsup.fruit_count, fsup.treat_count, fsup.present_reward, fsup.present_reward_once) == ((10, 19), (10, 19), 10.0, True)
    assert (treats.fruit_count, treats.treat_count, treats.treat_reward, treats.survival_bonus) == ((0, 0), (20, 43), -3.0, 0.05)
    assert treats.survival_bonus_on_death
    assert (fruits.fruit_count, fruits.treat_count, fruits.survival_bonus) == ((20, 39), (0, 0), 0.0)
    assert (empty.fruit_count, empty.treat_count) == ((0, 0), (0, 0))
    for c in (fsup, treats, fruits, empty):
        assert c.fruit_sprites == ("fruit3.png", "fruit5.png") and c.treat_sprites == ("food1.png", "food3.png")
        assert c.present_sprites == ("present1.png", "present2.png", "present3.png") and c.present_reward_once


def test_original_tasks_are_the_stock_defaults():
    from envs.config import FruitbotConfig, StarpilotConfig

    assert get_task("starpilot/original").config == StarpilotConfig()
    assert get_task("fruitbot/original").config == FruitbotConfig()
    s, f = StarpilotConfig(), FruitbotConfig()
    assert (s.survival_bonus, s.survival_bonus_on_death, s.spawn_enemies, s.level_end_step) == (0.0, False, True, 500)
    assert (f.present_reward_once, f.survival_bonus_on_death, f.present_sprites) == (False, False, ("present1.png",))


def test_unknown_task_lists_the_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown task 'starpilot/dodgy'.*starpilot/dodge"):
        get_task("starpilot/dodgy")


def test_unknown_override_key_is_named_with_the_valid_keys():
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['survival_bonu'\].*survival_bonus"):
        get_task("starpilot/dodge", {"survival_bonu": 1.0})


@pytest.mark.parametrize("key, value, message", [
    ("survival_bonus", "high", "survival_bonus must be a number"),
    ("player_can_fire", 1, "player_can_fire must be true or false"),
    ("group_size", [1, 9], r"group_size = \[1, 9\] is out of range"),
    ("group_size", [3, 1], "low must not exceed high"),
    ("timeout", 0, "timeout = 0 is out of range"),
    ("enemy_sprites", ["nope.png"], r"unknown sprite\(s\) \['nope.png'\]"),
    ("enemy_sprites", [], "non-empty list"),
    ("level_end_step", 0, "level_end_step = 0 is out of range"),
    ("level_end_step", 1001, "level_end_step = 1001 is out of range"),
    ("survival_bonus_on_death", "yes", "survival_bonus_on_death must be true or false"),
    ("spawn_enemies", 0, "spawn_enemies must be true or false"),
])
def test_bad_values_name_the_key(key, value, message):
    with pytest.raises(ConfigError, match=message):
        get_task("starpilot/original", {key: value})


@pytest.mark.parametrize("key, value, message", [
    ("present_reward_once", "once", "present_reward_once must be true or false"),
    ("present_sprites", ["present4.png"], r"unknown sprite\(s\) \['present4.png'\]"),
    ("survival_bonus_on_death", None, "survival_bonus_on_death must be true or false"),
])
def test_bad_fruitbot_values_name_the_key(key, value, message):
    with pytest.raises(ConfigError, match=message):
        get_task("fruitbot/original", {key: value})


def test_task_file_with_base_and_overrides(tmp_path):
    f = tmp_path / "split.yaml"
    f.write_text("tasks:\n"
                 "  calm:\n    base: starpilot/super\n    overrides: {enemies_fire: false}\n"
                 "  calmer:\n    base: calm\n    overrides: {group_size: [1, 2]}\n")
    task = get_task(f"{f}#calmer")
    assert task.name == f"{f}#calmer"
    assert (task.config.enemies_fire, task.config.group_size, task.config.survival_bonus) == (False, (1, 2), 0.01)
    with pytest.raises(ConfigError, match="defines 2 tasks"):
        get_task(str(f))


def test_task_file_errors_name_the_file_and_key(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("tasks:\n  x:\n    base: fruitbot/super\n    overides: {}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: task 'x' has unknown key\(s\) \['overides'\]"):
        get_task(f"{f}#x")
    f.write_text("tasks:\n  x:\n    base: fruitbot/super\n    overrides: {fruit_count: 7}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: task 'x'.*fruit_count must be a pair"):
        get_task(f"{f}#x")
    f.write_text("tasks:\n  x:\n    base: y\n  y:\n    base: x\n")
    with pytest.raises(ConfigError, match="inherits from itself"):
        get_task(f"{f}#x")
    with pytest.raises(ConfigError, match="does not exist"):
        get_task(str(tmp_path / "missing.yaml"))
