"""`benchmarks/resolution_by_episodes.py`: the resolution it reads from the first n episodes
of a run's records is the resolution of the same run evaluated with n episodes."""

import json
import sys
from pathlib import Path

import pytest
import yaml

from crl_merge.cli import main as crl_merge
from crl_merge.procgen import layout
from crl_merge.procgen.report import collect, leaderboard, resolution
from crl_merge.procgen.suite import SUPER, load_suite
from crl_merge.store import RunStore

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from resolution_by_episodes import main as resolution_by_episodes  # noqa: E402


def small_suite(tmp_path: Path, episodes: int, rule: str = "thesis") -> Path:
    """The Fruitbot suite's smoke preset with two merge methods, no continual rows, and
    ``episodes`` per evaluation on a model's own task (the super-task for merges)."""
    suite = yaml.safe_load(open("benchmarks/fruitbot.yaml"))
    del suite["reference"], suite["merge"]["continual"]
    suite["merge"]["methods"] = [{"method": "average", "alpha": [0.5]}, {"method": "rebasin", "alpha": [0.5]}]
    suite["evaluation"]["rule"] = rule
    suite["presets"]["smoke"] = {"training": {"total_steps": 512, "seeds_per_task": 2},
                                 "ppo": {"n_envs": 8, "n_steps": 64, "batch_size": 256, "n_epochs": 1},
                                 "evaluation": {"episodes": episodes, "cross_episodes": 8, "num_envs": 8,
                                                "retention_episodes": None},
                                 "merge": {"states": 32}}
    path = tmp_path / f"suite-{episodes}-{rule}.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


def test_the_first_episodes_of_a_run_give_the_resolution_of_a_shorter_evaluation(tmp_path, capsys):
    store = tmp_path / "runs"
    run = ["--preset", "smoke", "--device", "cpu", "--store", str(store), "--results", str(tmp_path / "results")]
    long_suite, short_suite = small_suite(tmp_path, 24), small_suite(tmp_path, 10)
    assert crl_merge(["run", str(long_suite), *run]) == 0
    capsys.readouterr()
    resolution_by_episodes([str(long_suite), "--preset", "smoke", "--store", str(store), "--episodes", "10", "24"])
    read = dict(line.split(" episodes: ") for line in capsys.readouterr().out.splitlines())

    suite = load_suite(str(long_suite), "smoke")
    merge = next((store / "fruitbot" / "smoke" / "merges").rglob(f"{layout.evaluation(SUPER)}.json"))
    long_record = json.loads(merge.read_text())
    assert read["24"] == resolution(leaderboard(suite, collect(suite, RunStore(store))))
    with pytest.raises(SystemExit, match="a record holds 24 episodes, fewer than 30"):
        resolution_by_episodes([str(long_suite), "--preset", "smoke", "--store", str(store), "--episodes", "30"])

    assert crl_merge(["run", str(short_suite), *run]) == 0  # the same models, each re-evaluated with 10 episodes
    short_record = json.loads(merge.read_text())
    assert short_record["returns"] == long_record["returns"][:10]
    suite = load_suite(str(short_suite), "smoke")
    assert read["10"] == resolution(leaderboard(suite, collect(suite, RunStore(store))))
    assert read["10"] != read["24"]


def test_what_cannot_be_read_is_refused(tmp_path):
    per_env = small_suite(tmp_path, 24, rule="per_env")
    with pytest.raises(SystemExit, match="evaluation.rule is 'per_env'"):
        resolution_by_episodes([str(per_env), "--preset", "smoke", "--episodes", "10"])
    with pytest.raises(SystemExit, match=r"--episodes must be at least 2 .*got \[1\]"):
        resolution_by_episodes([str(small_suite(tmp_path, 24)), "--preset", "smoke", "--episodes", "1", "10"])
