"""Procgen suites load from benchmarks/*.yaml at a preset, and every bad value is named with
its file and key."""

import pytest
import yaml

from crl_merge.procgen.suite import SUPER, load_suite
from envs.schema import ConfigError


@pytest.mark.parametrize("name", ["starpilot", "fruitbot"])
def test_builtin_suites_follow_the_thesis_protocol(name):
    paper = load_suite(name, "paper")
    assert paper.tasks[SUPER].name == f"{name}/super"
    assert len(paper.sub_tasks) == 2
    assert paper.training.total_steps == 25_000_000 and paper.evaluation.episodes == 5000
    assert paper.evaluation.level_seed == 5 and paper.ppo.learning_rate == 5e-4 and paper.ppo.gamma == 0.999
    grid = paper.grid()
    assert len(grid) == 15  # 5 upper bounds + 5 per sub-task
    first, second = paper.sub_tasks
    assert [j.seed_name for j in grid if j.task_key == first] == ["00", "11", "22", "33", "44"]
    assert [j.seed_name for j in grid if j.task_key == second] == ["01", "12", "23", "34", "40"]
    smoke = load_suite(name, "smoke")
    assert len(smoke.grid()) == 6
    assert {r for r, _, _ in smoke.merge_pairs()} == {"same_init", "diff_init"}


def test_a_preset_overrides_sections_key_by_key():
    quick = load_suite("starpilot", "quick")
    assert quick.training.total_steps == 300_000 and quick.training.seeds_per_task == 3
    assert quick.training.precision == "bf16" and quick.training.policy == "shared"  # untouched keys stay
    assert quick.evaluation.episodes == 500 and quick.evaluation.level_seed == 5  # untouched keys stay
    smoke = load_suite("starpilot", "smoke")
    assert smoke.ppo.n_envs == 8 and smoke.ppo.gamma == 0.999 and smoke.merge.states == 32
    assert smoke.merge.methods == quick.merge.methods


def write_suite(tmp_path, mutate):
    data = yaml.safe_load(open("benchmarks/starpilot.yaml"))
    mutate(data)
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d.update(colour="red"), "suite.yaml: unknown key(s) ['colour']"),
    (lambda d: d["ppo"].update(learning_rat=1e-3), "ppo: unknown key(s) ['learning_rat']; valid keys: ['adam_eps'"),
    (lambda d: d["ppo"].update(gamma=1.5), "ppo.gamma = 1.5 is out of range"),
    (lambda d: d["ppo"].update(n_envs="64"), "ppo.n_envs must be an integer, got '64'"),
    (lambda d: d["presets"]["quick"]["training"].update(total_steps=-1),
     "training.total_steps = -1 is out of range: allowed value ≥ 1"),
    (lambda d: d["presets"].update(huge={"training": {"total_steps": 1}}), "unknown preset(s) ['huge']"),
    (lambda d: d["presets"]["quick"].update(total_steps=1),
     "convert the file by moving presets.quick.total_steps → presets.quick.training.total_steps"),
    (lambda d: d["evaluation"].update(actions="argmax"), "evaluation.actions is 'argmax'; allowed: ['stochastic'"),
    (lambda d: d["evaluation"].update(rule="last"), "evaluation.rule is 'last'; allowed: ['per_env', 'thesis']"),
    (lambda d: d["seeds"]["dodge"].append([1]), "seeds.dodge[5] must be [init_seed, level_seed]"),
    (lambda d: d["seeds"].pop("shoot"), "seeds must list seed pairs for exactly"),
    (lambda d: d["sub_tasks"].update(dodge="starpilot/dodgy"), "sub_tasks.dodge: task name: unknown task 'starpilot/dodgy'"),
    (lambda d: d["sub_tasks"].update(calm={"base": "starpilot/super", "overrides": {"enemies_shoot": False}}),
     "sub_tasks.calm: unknown key(s) ['enemies_shoot']"),
    (lambda d: d["sub_tasks"].update(dodge="fruitbot/fruits"), "task 'dodge' is a fruitbot task"),
    (lambda d: d["sub_tasks"].update(third="starpilot/super"), "needs exactly two sub-tasks"),
    (lambda d: d["merge"]["rounds"].update(odd=[["00", "02"]]), "merge.rounds.odd[0] = ['00', '02']"),
    (lambda d: d["merge"]["methods"].append({"method": "soup"}), "needs 'method', one of"),
    (lambda d: d["merge"]["methods"].append({"method": "rebasin", "alpha": [1.5]}),
     "alpha = 1.5 is out of range: allowed 0.0 ≤ value ≤ 1.0"),
    (lambda d: d["merge"]["methods"].append({"method": "average", "alpha": [0.5]}), "listed twice: ['average-a0.5']"),
    (lambda d: d["merge"].update(methods=[]), "merge.methods must be a non-empty list"),
    (lambda d: d["merge"].pop("rounds"), "merge: missing key(s) ['rounds']"),
    (lambda d: [d.pop("merge"), d["presets"]["quick"].pop("merge")], "missing key(s) ['merge']"),
    (lambda d: d["reference"].update({"upperbound": 3.0}), "reference: unknown row(s) ['upperbound']"),
])
def test_bad_suites_name_the_file_and_key(tmp_path, mutate, expected):
    path = write_suite(tmp_path, mutate)
    with pytest.raises(ConfigError) as err:
        load_suite(path, "quick")
    assert expected in str(err.value)
    assert str(path) in str(err.value)


def test_a_yaml_syntax_error_names_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="broken.yaml: not valid YAML"):
        load_suite(path, "quick")


def test_a_user_split_with_overrides_becomes_a_task(tmp_path):
    path = write_suite(tmp_path, lambda d: d["sub_tasks"].update(
        shoot={"base": "starpilot/super", "overrides": {"enemies_fire": False, "group_size": [1, 2]}}))
    suite = load_suite(path, "quick")
    assert suite.tasks["shoot"].config.group_size == (1, 2) and not suite.tasks["shoot"].config.enemies_fire


def test_unknown_suite_and_preset_list_the_valid_ones():
    with pytest.raises(ConfigError, match="built-in suites: .*starpilot"):
        load_suite("starpilott", "quick")
    with pytest.raises(ConfigError, match=r"unknown preset 'fast'; allowed: \['smoke', 'quick', 'paper'\]"):
        load_suite("starpilot", "fast")


def test_the_readme_example_split_is_a_valid_suite():
    suite = load_suite("benchmarks/examples/starpilot_hunt_evade.yaml", "smoke")
    assert suite.sub_tasks == ("hunt", "evade") and not suite.tasks["evade"].config.player_can_fire
    assert {r for r, _, _ in suite.merge_pairs()} == {"same_init", "diff_init"}


def test_each_method_of_the_table_is_one_line_of_a_plan(tmp_path):
    from crl_merge.merge import MERGE_METHODS

    def every_method(d):
        d["merge"]["methods"] = [{"method": m} for m in MERGE_METHODS]
        del d["reference"]  # it names rows of the thesis's plan

    path = write_suite(tmp_path, every_method)
    rows = [m.row_id for m in load_suite(path, "quick").merge.methods]
    assert rows == ["average-a0.5", "rebasin-a0.5-ab", "activation_matching-a0.5-ab", "fisher", "task_arithmetic-s1",
                    "ties-d0.2-s1", "merge_many", "slerp-a0.5", "dare-d0.2-s1", "breadcrumbs-d0.2-o0.01-s1", "model_stock",
                    "ensemble"]


def test_flags_are_named_in_the_row_and_refused_where_they_do_not_apply(tmp_path):
    def plan(methods):
        def mutate(d):
            d["merge"]["methods"] = methods
            del d["reference"]
        return load_suite(write_suite(tmp_path, mutate), "quick").merge.methods

    assert [m.row_id for m in plan([{"method": "fisher", "exact": True}, {"method": "average", "repair": True}])] == [
        "fisher-exact", "average-a0.5-repair"]
    with pytest.raises(ConfigError, match=r"methods\[0\] \(ties\): unknown key\(s\) \['repair'\]"):
        plan([{"method": "ties", "repair": True}])
