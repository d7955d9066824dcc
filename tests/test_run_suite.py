"""`crl-merge run` end to end: the smoke preset trains and evaluates the whole grid; a run
killed with SIGKILL resumes without redoing finished work or leaving a corrupt artifact."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from crl_merge.checkpoint import load_checkpoint
from crl_merge.cli import main
from crl_merge.registry import load_suite


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


def test_smoke_preset_trains_and_evaluates_the_grid(tmp_path, capsys):
    started = time.perf_counter()
    assert main(["run", "starpilot", "--preset", "smoke", "--device", "cpu", "--store", str(tmp_path)]) == 0
    suite = load_suite("starpilot")
    for job in suite.grid("smoke"):
        run = tmp_path / "starpilot" / "smoke" / "train" / job.task_key / job.seed_name
        assert (run / "actor.safetensors").is_file() and (run / "curve.csv").is_file()
        for task in suite.tasks:
            record = json.loads((run / f"eval-{task}.json").read_text())
            expected = 16  # the smoke preset's episodes and cross_episodes
            assert record["episodes"] == len(record["returns"]) == expected
    random = tmp_path / "starpilot" / "smoke" / "baselines" / "random"
    assert json.loads((random / "eval-super.json").read_text())["protocol"]["task"] == "starpilot/super"
    assert finished_artifacts_are_intact(tmp_path) == 3 * (3 + 3) + 3
    first = time.perf_counter() - started

    capsys.readouterr()
    started = time.perf_counter()
    assert main(["run", "starpilot", "--preset", "smoke", "--device", "cpu", "--store", str(tmp_path)]) == 0
    again = time.perf_counter() - started
    assert again < first / 3  # nothing retrained or re-evaluated


def test_sigkill_mid_training_then_resume(tmp_path):
    suite = yaml.safe_load(open("benchmarks/starpilot.yaml"))
    suite["presets"]["quick"] = {"total_steps": 2560, "seeds_per_task": 1, "checkpoint_every": 256,
                                 "episodes": 8, "cross_episodes": 8, "num_envs": 4,
                                 "ppo": {"n_envs": 4, "n_steps": 64, "batch_size": 128, "n_epochs": 1}}
    suite_file = tmp_path / "suite.yaml"
    suite_file.write_text(yaml.safe_dump(suite))
    store = tmp_path / "store"
    command = [sys.executable, "-m", "crl_merge.cli", "run", str(suite_file), "--preset", "quick", "--device", "cpu",
               "--store", str(store)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    second_run = store / "starpilot" / "quick" / "train" / "dodge" / "00"
    deadline = time.time() + 240
    while not (second_run / "resume.json").exists():  # the first run finished, the second is mid-way
        assert first.poll() is None and time.time() < deadline, first.stdout.read().decode()
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    finished_artifacts_are_intact(store)
    super_run = store / "starpilot" / "quick" / "train" / "super" / "00"
    finished_actor = (super_run / "actor.safetensors").stat().st_mtime_ns

    resumed = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from the checkpoint" in resumed.stderr
    assert "train super00: 2,560/2,560 already trained" in resumed.stderr
    assert (super_run / "actor.safetensors").stat().st_mtime_ns == finished_actor  # not redone
    assert finished_artifacts_are_intact(store) == 3 * (3 + 3) + 3
    assert not list(store.rglob("resume.safetensors"))
