"""Suites load from benchmarks/*.yaml, and every bad value is named with its file and key."""

import pytest
import yaml

from crl_merge.registry import SUPER, load_suite
from envs.config import ConfigError


@pytest.mark.parametrize("name", ["starpilot", "fruitbot"])
def test_builtin_suites_follow_the_thesis_protocol(name):
    suite = load_suite(name)
    assert suite.tasks[SUPER].name == f"{name}/super"
    assert len(suite.sub_tasks) == 2
    paper = suite.preset("paper")
    assert paper.total_steps == 25_000_000 and paper.evaluation.episodes == 5000
    assert paper.evaluation.level_seed == 5 and paper.ppo.learning_rate == 5e-4 and paper.ppo.gamma == 0.999
    grid = suite.grid("paper")
    assert len(grid) == 15  # 5 upper bounds + 5 per sub-task
    first, second = suite.sub_tasks
    assert [j.seed_name for j in grid if j.task_key == first] == ["00", "11", "22", "33", "44"]
    assert [j.seed_name for j in grid if j.task_key == second] == ["01", "12", "23", "34", "40"]
    assert len(suite.grid("smoke")) == 6
    assert {r for r, _, _ in suite.merge_pairs("smoke")} == {"same_init", "diff_init"}


def write_suite(tmp_path, mutate):
    data = yaml.safe_load(open("benchmarks/starpilot.yaml"))
    mutate(data)
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d.update(colour="red"), "unknown key(s) ['colour']"),
    (lambda d: d["ppo"].update(learning_rat=1e-3), "unknown PPO key(s) ['learning_rat']"),
    (lambda d: d["ppo"].update(gamma=1.5), "ppo.gamma = 1.5 is out of range"),
    (lambda d: d["ppo"].update(n_envs="64"), "ppo.n_envs must be int"),
    (lambda d: d["presets"]["quick"].update(total_steps=-1), "presets.quick.total_steps must be an integer ≥ 1"),
    (lambda d: d["presets"].update(huge={"total_steps": 1}), "unknown preset(s) ['huge']"),
    (lambda d: d["evaluation"].update(actions="argmax"), "evaluation.actions must be one of"),
    (lambda d: d["seeds"]["dodge"].append([1]), "seeds.dodge.5 must be [init_seed, level_seed]"),
    (lambda d: d["seeds"].pop("shoot"), "seeds must list seed pairs for exactly"),
    (lambda d: d["sub_tasks"].update(dodge="starpilot/dodgy"), "unknown task 'starpilot/dodgy'"),
    (lambda d: d["sub_tasks"].update(calm={"base": "starpilot/super", "overrides": {"enemies_shoot": False}}),
     "unknown key(s) ['enemies_shoot']"),
    (lambda d: d["sub_tasks"].update(dodge="fruitbot/fruits"), "task 'dodge' is a fruitbot task"),
    (lambda d: d["sub_tasks"].update(third="starpilot/super"), "needs exactly two sub-tasks"),
    (lambda d: d["merge"]["rounds"].update(odd=[["00", "02"]]), "merge.rounds.odd.0 = ['00', '02']"),
    (lambda d: d["merge"]["methods"].append({"method": "slerp"}), "needs 'method', one of"),
    (lambda d: d["merge"]["methods"].append({"method": "rebasin", "alpha": [1.5]}), "alpha must be a number in [0.0, 1.0]"),
    (lambda d: d["merge"]["methods"].append({"method": "average", "alpha": [0.5]}), "listed twice: ['average-a0.5']"),
])
def test_bad_suites_name_the_file_and_key(tmp_path, mutate, expected):
    path = write_suite(tmp_path, mutate)
    with pytest.raises(ConfigError) as err:
        load_suite(path)
    assert expected in str(err.value)
    assert str(path) in str(err.value) or "unknown task" in str(err.value) or "unknown key(s) ['enemies_shoot']" in str(err.value)


def test_a_user_split_with_overrides_becomes_a_task(tmp_path):
    path = write_suite(tmp_path, lambda d: d["sub_tasks"].update(
        shoot={"base": "starpilot/super", "overrides": {"enemies_fire": False, "group_size": [1, 2]}}))
    suite = load_suite(path)
    assert suite.tasks["shoot"].config.group_size == (1, 2) and not suite.tasks["shoot"].config.enemies_fire


def test_unknown_suite_and_preset_list_the_valid_ones():
    with pytest.raises(ConfigError, match="built-in suites: .*starpilot"):
        load_suite("starpilott")
    with pytest.raises(ConfigError, match="presets: \\['paper', 'quick', 'smoke'\\]"):
        load_suite("starpilot").preset("fast")


def test_the_readme_example_split_is_a_valid_suite():
    suite = load_suite("benchmarks/examples/starpilot_hunt_evade.yaml")
    assert suite.sub_tasks == ("hunt", "evade") and not suite.tasks["evade"].config.player_can_fire
    assert {r for r, _, _ in suite.merge_pairs("smoke")} == {"same_init", "diff_init"}
