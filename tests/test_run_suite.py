"""`crl-merge run` end to end: the smoke preset of each suite trains, evaluates, merges and
writes a leaderboard with every row and column; a run killed with SIGKILL resumes without
redoing finished work or leaving a corrupt artifact."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from crl_merge.checkpoint import load_checkpoint
from crl_merge.cli import main
from crl_merge.procgen import layout
from crl_merge.procgen.continual import continual_jobs
from crl_merge.procgen.protocol import merge_jobs
from crl_merge.procgen.runs import merged_model_evaluations
from crl_merge.procgen.report import MAIN_COLUMNS
from crl_merge.procgen.suite import load_suite


def finished_artifacts_are_intact(store: Path) -> int:
    """Load every artifact a manifest records as finished; returns how many there were."""
    count = 0
    for manifest in store.rglob("manifest.json"):
        run = manifest.parent
        for name, entry in json.loads(manifest.read_text())["artifacts"].items():
            if any(f.endswith(".safetensors") for f in entry["files"]):
                load_checkpoint(run / name)  # checks size and SHA-256
            else:
                for f in entry["files"]:
                    if f.endswith(".json"):
                        json.loads((run / f).read_text())
                    else:
                        assert (run / f).read_text().endswith("\n"), f"{run / f} is cut short"
            count += 1
    return count


@pytest.mark.parametrize("suite_name", ["starpilot", "fruitbot"])
def test_smoke_preset_end_to_end(tmp_path, suite_name):
    args = ["run", suite_name, "--preset", "smoke", "--device", "cpu", "--store", str(tmp_path / "runs"),
            "--results", str(tmp_path / "results"), "--format", "md", "csv", "latex"]
    assert main(args) == 0
    suite = load_suite(suite_name, "smoke")
    for job in suite.grid():
        run = tmp_path / "runs" / Path(*layout.training_parts(suite, job))
        assert (run / "actor.safetensors").is_file() and (run / "curve.csv").is_file()
        for task in suite.tasks:
            record = json.loads((run / f"{layout.evaluation(task)}.json").read_text())
            assert record["episodes"] == len(record["returns"]) == 8  # smoke: episodes = cross_episodes = 8

    out = tmp_path / "results" / suite_name / "smoke"
    board = pd.read_csv(out / "leaderboard.csv")
    retention = [f"retention/{t}" for t in suite.sub_tasks]
    forward = [f"forward_transfer/{t}" for t in suite.sub_tasks]
    assert list(board.columns) == MAIN_COLUMNS + retention + forward
    merges = {f"{r}/{m.row_id}" for r, m, _, _ in merge_jobs(suite)}
    assert {"same_init/average-a0.5", "diff_init/rebasin-a0.25-ba", "same_init/ties-d0.2-s1",
            "diff_init/fisher", "same_init/ensemble"} <= merges
    continual = {f"{r}/{row.row_id}" for r, row, _, _ in continual_jobs(suite)}
    assert continual == {"same_init/federated-average-a0.5-m1", "same_init/federated-rebasin-a0.5-m1-ab",
                         "same_init/checkpoint-average-a0.5-m1-ab"}
    assert set(board.row) == {"upper_bound", "random", *(f"on_super/{t}" for t in suite.sub_tasks), *merges,
                              *continual}
    assert board[board.row.isin(merges | continual)][retention].notna().all().all()
    assert board[~board.row.isin(merges | continual)][retention].isna().all().all()
    assert board[~board.row.isin(continual)][forward].isna().all().all()  # a merge has no learner
    # checkpoint merging trains one learner (A, the first sub-task's model for direction ab)
    assert board.loc[board.row == "same_init/checkpoint-average-a0.5-m1-ab", forward[1]].isna().all()
    assert (board[board.row.isin(continual)].kind.str.startswith("continual (")).all()
    assert board.loc[board.row == "upper_bound", "score"].item() == 100
    assert board.loc[board.row == "random", "score"].item() == 0
    with_thesis = board.dropna(subset=["thesis"]).row
    assert {"upper_bound", "random", "same_init/average-a0.5", "diff_init/rebasin-a0.75-ba"} <= set(with_thesis)
    report = (out / "leaderboard.md").read_text()
    for heading in ("## On the super-task", "## Each model on its own task", "## Cross-evaluation"):
        assert heading in report
    assert ("## Analysis tasks" in report) == bool(suite.analysis_tasks)
    latex = (out / "leaderboard.tex").read_text()
    assert latex.startswith("\\begin{tabular}") and "\\midrule" in latex and "same\\_init/average-a0.5" in latex
    assert board.dropna(subset=["p_over_average"]).row.str.contains("/").all()
    assert (board.iqm_low <= board.iqm).all() and (board.iqm <= board.iqm_high).all()
    for figure in ("alpha.png", "curves.png", "cross_eval.png", "profile.png"):
        assert (out / figure).stat().st_size > 1000 and f"]({figure})" in report

    manifests = {m: m.read_text() for m in (tmp_path / "runs").rglob("manifest.json")}
    files = {f: f.stat().st_mtime_ns for f in (tmp_path / "runs").rglob("*") if f.is_file()}
    assert main(args) == 0  # finished: no training, no evaluation, the same leaderboard
    assert {m: m.read_text() for m in manifests} == manifests  # nothing recorded anew
    assert {f: f.stat().st_mtime_ns for f in (tmp_path / "runs").rglob("*") if f.is_file()} == files  # nothing written
    assert pd.read_csv(out / "leaderboard.csv").equals(board)


def checkpointed(run: Path) -> bool:
    """Whether a resume checkpoint is recorded in the run's manifest (not just being written)."""
    manifest = run / "manifest.json"
    return manifest.exists() and "resume" in json.loads(manifest.read_text())["artifacts"]


def kill_when(command: list[str], env: dict, ready, seconds: float) -> None:
    """Start ``command`` and SIGKILL it as soon as ``ready()`` holds (failing if it exits or
    ``seconds`` pass first, with its output); the finished artifacts must then be intact."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    deadline = time.time() + seconds
    while not ready():
        assert process.poll() is None and time.time() < deadline, process.stdout.read().decode()
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()


def resume_test_suite(tmp_path: Path) -> Path:
    """The Starpilot suite as a SIGKILL test needs it: one model per task, 10 updates with a
    checkpoint after each, one merge (training and its resume are what is tested)."""
    suite = yaml.safe_load(open("benchmarks/starpilot.yaml"))
    del suite["reference"]
    suite["merge"]["methods"] = [{"method": "average"}]
    del suite["merge"]["continual"], suite["evaluation"]["retention_episodes"]
    suite["presets"]["quick"] = {"training": {"total_steps": 2560, "seeds_per_task": 1, "checkpoint_every": 256},
                                 "evaluation": {"episodes": 8, "cross_episodes": 8, "num_envs": 4},
                                 "ppo": {"n_envs": 4, "n_steps": 64, "batch_size": 128, "n_epochs": 1}}
    suite_file = tmp_path / "suite.yaml"
    suite_file.write_text(yaml.safe_dump(suite))
    return suite_file


def test_sigkill_mid_training_then_resume(tmp_path):
    suite_file = resume_test_suite(tmp_path)
    store = tmp_path / "store"
    command = [sys.executable, "-m", "crl_merge.cli", "run", str(suite_file), "--preset", "quick", "--device", "cpu",
               "--store", str(store), "--results", str(tmp_path / "results")]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}

    second_run = store / "starpilot" / "quick" / "train" / "dodge" / "00"
    kill_when(command, env, lambda: checkpointed(second_run), 240)  # the first run finished, the second mid-way
    finished_artifacts_are_intact(store)
    super_run = store / "starpilot" / "quick" / "train" / "super" / "00"
    finished_actor = (super_run / "actor.safetensors").stat().st_mtime_ns

    resumed = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from the checkpoint" in resumed.stderr
    assert "train super00: 2,560/2,560 already trained" in resumed.stderr
    assert (super_run / "actor.safetensors").stat().st_mtime_ns == finished_actor  # not redone
    # 3 models × (actor, critic, curve, 3 evaluations) + the random agent's 3 + one merge's actor and evaluation
    assert finished_artifacts_are_intact(store) == 3 * (3 + 3) + 3 + 2
    assert not list(store.rglob("resume.safetensors"))


def test_sigkill_mid_federated_training_then_resume(tmp_path):
    """A federated pair and a checkpoint-merging pair in one suite: killed while the federated
    pair trains (its resume checkpoint holds both learners), the run resumes it, finishes
    both and puts them on the leaderboard with retention columns."""
    suite_file = resume_test_suite(tmp_path)
    data = yaml.safe_load(suite_file.read_text())
    data["merge"]["continual"] = [{"protocol": "federated", "method": "average", "every": 2},
                                  {"protocol": "checkpoint", "method": "average", "every": 2}]
    data["presets"]["quick"]["evaluation"]["retention_episodes"] = 8
    suite_file.write_text(yaml.safe_dump(data))
    store = tmp_path / "store"
    command = [sys.executable, "-m", "crl_merge.cli", "run", str(suite_file), "--preset", "quick", "--device", "cpu",
               "--store", str(store), "--results", str(tmp_path / "results")]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}

    federated = store / "starpilot" / "quick" / "continual" / "same_init" / "federated-average-a0.5-m2" / "00+01"
    kill_when(command, env, lambda: checkpointed(federated), 400)
    finished_artifacts_are_intact(store)

    resumed = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from the checkpoint" in " ".join(resumed.stderr.split()), resumed.stderr  # (lines wrap)
    assert "train dodge00: 2,560/2,560 already trained" in resumed.stderr  # so the resumed run is a continual one
    # grid: 3 models × (actor, critic, curve, 3 evaluations), 5 snapshots of each sub-task model, the random
    # agent's 3 evaluations, one merge (actor, super-task and 2 retention evaluations); federated: 2 curves,
    # critic, actor, 3 evaluations; checkpoint merging: 1 curve, critic, actor, 3 evaluations
    assert finished_artifacts_are_intact(store) == 3 * 6 + 2 * 5 + 3 + 4 + 7 + 6
    assert not list(store.rglob("resume.safetensors"))
    board = pd.read_csv(tmp_path / "results" / "starpilot" / "quick" / "leaderboard.csv")
    continual = board[board.row.isin(["same_init/federated-average-a0.5-m2", "same_init/checkpoint-average-a0.5-m2-ab"])]
    assert len(continual) == 2 and continual[["retention/dodge", "retention/shoot"]].notna().all().all()


def test_the_leaderboard_warns_when_the_upper_bound_is_not_above_random():
    from crl_merge.procgen.report import upper_bound_warning

    board = pd.DataFrame({"row": ["upper_bound", "random"], "mean_return": [1.5, 2.0]})
    assert "not above the random agent" in upper_bound_warning(board)
    assert upper_bound_warning(board.assign(mean_return=[3.0, 2.0])) is None


def test_the_resolution_is_the_gap_over_each_rounds_median_ci_width():
    from crl_merge.procgen.report import resolution

    board = pd.DataFrame({
        "row": ["upper_bound", "same_init/a", "same_init/b", "same_init/ensemble", "diff_init/a", "random"],
        "kind": ["upper bound", "merge", "continual (federated)", "ensemble (not a merge)", "merge", "random agent"],
        "round": [None, "same_init", "same_init", "same_init", "diff_init", None],
        "n": [3, 3, 3, 3, 2, 1], "ci95": [0.1, 0.2, 0.3, 9.0, 1.0, 0.1], "mean_return": [5.0, 3, 3, 3, 3, 2.0]})
    # same_init: median half-width 0.25 (the ensemble is not a merge) → width 0.5 → 3 / 0.5 = 6
    assert resolution(board) == ("Resolution: UB − random = 3.00, 6.0× the median 95% CI width of the same_init "
                                 "rows (0.50; n = 3), 1.5× the median 95% CI width of the diff_init rows (2.00; n = 2).")
    assert resolution(board[~board["round"].notna() | (board.row == "upper_bound")]) is None


def test_forward_transfer_is_continual_worlds_on_normalised_returns():
    from crl_merge.procgen.report import forward_transfer_score

    def curve(returns, steps=(1, 2, 3, 4)):
        return [{"step": s, "rolling_return": r} for s, r in zip(steps, returns)]

    reference = curve([0, 1, 2, 3])  # normalised by random 0 and source 4: AUC 0.375
    assert forward_transfer_score(reference, reference, 0.0, 4.0) == 0
    # AUC 0.6875: 100·(0.6875 − 0.375)/(1 − 0.375) = 50
    assert forward_transfer_score(curve([2, 2, 3, 4]), reference, 0.0, 4.0) == pytest.approx(50)
    assert forward_transfer_score(curve([-1, 0, 1, 2]), reference, 0.0, 4.0) < 0  # slower than alone
    # steps only one curve logged and steps without a finished episode yet (NaN) are left out
    with_gaps = curve([math.nan, 2, 3, 4, 9], steps=(1, 2, 3, 4, 5))
    assert forward_transfer_score(with_gaps, reference, 0.0, 4.0) == pytest.approx(
        forward_transfer_score(curve([2, 3, 4], steps=(2, 3, 4)), curve([1, 2, 3], steps=(2, 3, 4)), 0.0, 4.0))
    assert math.isnan(forward_transfer_score(reference, reference, 1.0, 1.0))  # the source is no better than random


def each_job_done_once(outputs: list[str], suite) -> None:
    """Every training, evaluation and merge of ``suite`` finished in exactly one of the logs."""
    steps = suite.training.total_steps
    lines = [line.strip() for out in outputs for line in out.splitlines()]
    for job in suite.grid():
        assert sum(line.startswith(f"train {job.model_name}: {steps:,}/{steps:,} trained") for line in lines) == 1
        for key in suite.tasks:
            finished = [line for line in lines  # an evaluation's last line: its result
                        if line.startswith(f"eval {job.model_name} on {key}: 8/8 ") and " ± " in line]
            assert sum("already evaluated" not in line for line in finished) == 1, (job.model_name, key)
    evaluated = len(merged_model_evaluations(suite))  # super-task, analysis tasks, sub-tasks (retention)
    for round_name, method, a, b in merge_jobs(suite):
        assert sum(line.startswith(f"{round_name} {method.row_id} {a.model_name}+{b.model_name}: "
                                   f"{evaluated}/{evaluated} merged") for line in lines) == 1
    total = suite.ppo.steps_trained(steps)
    for round_name, row, a, b in continual_jobs(suite):
        assert sum(line.startswith(f"{round_name} {row.row_id} {a.model_name}+{b.model_name}: "
                                   f"{total:,}/{total:,} trained") for line in lines) == 1
    assert not [line for line in lines if "Traceback" in line]


def test_jobs_split_the_grid_between_processes(tmp_path):
    store = tmp_path / "store"
    command = [sys.executable, "-m", "crl_merge.cli", "run", "fruitbot", "--preset", "smoke", "--device", "cpu",
               "--store", str(store), "--jobs", "2"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert done.returncode == 0, done.stderr
    worker_log = (store / "logs" / "fruitbot-smoke-worker1.log").read_text()
    each_job_done_once([done.stderr, worker_log], load_suite("fruitbot", "smoke"))
    assert "trained" in worker_log  # the worker did part of the work
    assert (store / "results" / "fruitbot" / "smoke" / "leaderboard.csv").is_file()


def test_two_runs_on_one_store_do_each_job_once(tmp_path):
    """Two `crl-merge run` started together on one store share the work through the runs'
    claims: every training, evaluation and merge is done by exactly one of them, and both
    finish with the same leaderboard."""
    store = tmp_path / "store"
    commands = [[sys.executable, "-m", "crl_merge.cli", "run", "starpilot", "--preset", "smoke", "--device", "cpu",
                 "--store", str(store)] for _ in (0, 1)]
    commands[1] += ["--results", str(tmp_path / "results1")]  # the first: a smoke run's default, into its store
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    processes = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env) for c in commands]
    outputs = [p.communicate(timeout=900)[0].decode() for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    each_job_done_once(outputs, load_suite("starpilot", "smoke"))
    boards = [pd.read_csv(folder / "starpilot" / "smoke" / "leaderboard.csv")
              for folder in (store / "results", tmp_path / "results1")]
    assert boards[0].equals(boards[1])
