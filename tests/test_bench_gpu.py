"""`make bench-gpu`'s script, checked on the CPU: `--cpu-check` runs every measurement at tiny
sizes and writes both files; without a GPU the real run refuses with a clear message."""

import json
import subprocess
import sys

import pytest
import torch

SCRIPT = "benchmarks/bench_gpu.py"


def test_cpu_check_runs_every_measurement_and_writes_the_files(tmp_path):
    done = subprocess.run([sys.executable, SCRIPT, "--cpu-check", "--out", str(tmp_path)], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "bench.json").read_text())
    assert results["device"] == "cpu"
    assert set(results["env_frames_per_second"]) == {f"{g}/{n}" for g in ("starpilot", "fruitbot") for n in (4, 16)}
    assert set(results["ppo_steps_per_second"]) == {"sb3", "fast", "fast batched K=2"}
    assert all(rate > 0 for rate in [*results["env_frames_per_second"].values(),
                                     *results["ppo_steps_per_second"].values(), *results["dt"].values()])
    summary = (tmp_path / "summary.md").read_text()
    assert "| fast batched K=2 |" in summary and "| fruitbot | 16 |" in summary


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: the real run would start")
def test_without_a_gpu_it_refuses_and_says_why(tmp_path):
    done = subprocess.run([sys.executable, SCRIPT, "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "no CUDA device" in done.stderr and "--cpu-check" in done.stderr
    assert not (tmp_path / "bench.json").exists()
