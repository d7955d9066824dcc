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


def test_thesis_variants_inherit_from_the_super_task():
    dodge, shoot = get_task("starpilot/dodge").config, get_task("starpilot/shoot").config
    assert (dodge.player_can_fire, dodge.survival_bonus, dodge.enemies_fire) == (False, 0.1, True)
    assert (shoot.enemies_fire, shoot.survival_bonus, shoot.group_size) == (False, 0.0, (1, 3))
    assert dodge.enemy_sprites == shoot.enemy_sprites == ("spaceShips_001.png", "spaceShips_002.png")
    treats, fruits = get_task("fruitbot/treats").config, get_task("fruitbot/fruits").config
    assert (treats.fruit_count, treats.treat_count, treats.treat_reward, treats.survival_bonus) == ((0, 0), (20, 44), -3.0, 0.05)
    assert (fruits.fruit_count, fruits.treat_count) == ((40, 40), (0, 0))
    assert fruits.fruit_sprites == ("fruit3.png", "fruit5.png")


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
])
def test_bad_values_name_the_key(key, value, message):
    with pytest.raises(ConfigError, match=message):
        get_task("starpilot/original", {key: value})


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
