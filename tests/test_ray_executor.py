"""`crl-merge run --executor ray` on a real local Ray instance (this machine's CPUs): the smoke
preset of the Starpilot suite gives the local executor's leaderboard; a Ray worker killed by
its process id while it trains is retried, and a second `crl-merge run` started on the same
store meanwhile does no job twice.

One Ray run serves both tests (the module fixture): a smoke training is one PPO update, so a
killed training starts again from nothing and the numbers must still equal the local run's."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from crl_merge.cli import main
from crl_merge.procgen.protocol import protocol_jobs, training_run
from crl_merge.procgen.suite import load_suite
from crl_merge.store import RunStore
from tests.test_run_suite import each_job_done_once, finished_artifacts_are_intact

ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}  # Ray gives each 1-CPU task one thread


def run_command(store: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "crl_merge.cli", "run", "starpilot", "--preset", "smoke", "--device", "cpu",
            "--store", str(store), *extra]


class Output:
    """A process's output read as it comes, so the test can wait for its first line."""

    def __init__(self, process: subprocess.Popen):
        self.lines: list[str] = []
        self.started = threading.Event()
        self.thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self.thread.start()

    def _read(self, process):
        for line in process.stdout:
            self.lines.append(line)
            self.started.set()

    def text(self) -> str:
        self.thread.join()
        return "".join(self.lines)


def claim_holders(store: Path) -> dict[Path, int]:
    """The process id holding each training run's claim, as its claim.lock names it."""
    holders = {}
    for lock in store.glob("starpilot/smoke/train/*/*/claim.lock"):
        text = lock.read_text().strip()
        if text:
            holders[lock.parent] = int(text.split()[0].rsplit(":", 1)[1])
    return holders


def recorded(store: Path) -> set[tuple[str, str]]:
    """(run folder relative to the store, artifact) for every finished artifact."""
    return {(str(m.parent.relative_to(store)), name) for m in store.rglob("manifest.json")
            for name in json.loads(m.read_text())["artifacts"]}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The local executor's run, and the Ray run with a worker killed and a second run beside it."""
    root = tmp_path_factory.mktemp("ray")
    local = subprocess.run(run_command(root / "local"), capture_output=True, text=True, env=ENV, timeout=900)
    assert local.returncode == 0, local.stderr

    store = root / "ray"
    suite = load_suite("starpilot", "smoke")
    # The test holds one training's claim, so the Ray run cannot finish before the second run has started.
    held_job = suite.grid()[-1]
    held = training_run(RunStore(store), suite, held_job, "fast").try_claim()
    first = subprocess.Popen(run_command(store, "--executor", "ray"), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, env=ENV)
    first_out = Output(first)
    while not (holders := {run: pid for run, pid in claim_holders(store).items() if pid != os.getpid()}):
        assert first.poll() is None, first_out.text()
        time.sleep(0.02)
    killed_run, killed = next(iter(holders.items()))
    cmdline = Path(f"/proc/{killed}/cmdline").read_bytes()
    os.kill(killed, signal.SIGKILL)
    assert killed != first.pid and cmdline.startswith(b"ray::"), cmdline  # a Ray worker, not the driver
    assert "actor" not in json.loads((killed_run / "manifest.json").read_text())["artifacts"]  # mid-training

    second = subprocess.Popen(run_command(store, "--results", str(root / "results2")), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env=ENV)
    second_out = Output(second)
    second_out.started.wait(timeout=300)
    assert first.poll() is None  # the Ray run is waiting for the held training
    held.release()
    outputs = [first_out.text(), second_out.text()]
    assert [first.wait(timeout=900), second.wait(timeout=900)] == [0, 0], outputs
    return {"root": root, "suite": suite, "outputs": outputs, "killed_run": killed_run}


def test_ray_gives_the_local_executors_leaderboard(runs):
    root = runs["root"]
    local = pd.read_csv(root / "local" / "results" / "starpilot" / "smoke" / "leaderboard.csv")
    for board in (root / "ray" / "results", root / "results2"):  # the Ray run's, the second run's
        assert pd.read_csv(board / "starpilot" / "smoke" / "leaderboard.csv").equals(local)
    assert len(local) > 20 and local.mean_return.notna().all()


def test_a_killed_worker_is_retried_and_a_second_run_shares_the_store(runs):
    root, suite, outputs = runs["root"], runs["suite"], runs["outputs"]
    each_job_done_once(outputs, suite)  # the killed training too: it finished once, in a retry or the second run
    assert (runs["killed_run"] / "actor.safetensors").is_file()
    assert recorded(root / "ray") == recorded(root / "local")  # every artifact, none missing, none left over
    assert finished_artifacts_are_intact(root / "ray") == len(recorded(root / "local"))
    assert not list((root / "ray").rglob("resume.safetensors"))
    assert "trained" in outputs[1] or " merged" in outputs[1] or "± " in outputs[1]  # the second run worked too


def test_the_graph_orders_every_job_after_what_it_reads():
    suite = load_suite("starpilot", "smoke")
    graph = protocol_jobs(suite, batch=4)
    names = [job.name for job in graph]
    assert names[:2] == ["train super00 + super11 + dodge00 + dodge11", "train shoot01 + shoot12"]
    for job in graph:
        assert all(names.index(before) < names.index(job.name) for before in job.after)
    evals = [job for job in graph if job.kind == "evaluate"]
    assert len(evals) == (len(suite.grid()) + 1) * len(suite.tasks)
    assert [job.resources.gpu_share for job in graph[:2]] == [1.0, 0.5]


def test_ray_missing_or_misused_is_a_one_line_error(monkeypatch, capsys, tmp_path):
    store = ["--store", str(tmp_path / "runs")]
    assert main(["run", "starpilot", "--preset", "smoke", *store, "--executor", "ray", "--jobs", "2"]) == 2
    assert "--jobs is for --executor local" in capsys.readouterr().err
    assert main(["run", "starpilot", "--preset", "smoke", *store, "--address", "auto"]) == 2
    assert "--address is the Ray cluster of --executor ray" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets where Ray is not installed
    assert main(["run", "starpilot", "--preset", "smoke", *store, "--executor", "ray"]) == 2
    assert "pip install crl-merge[ray]" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # refused before any work
