"""``crl-merge run --jobs N``: one suite's protocol in N processes on one machine. The main
process starts N − 1 workers (``crl-merge run … --worker`` on the same store, each with its
share of the CPU threads) and works beside them; the run store's claims split the jobs, so
each training, evaluation and merge is done by one of them (the same mechanism that lets
two ``crl-merge run`` share a store). Workers log to ``<store>/logs/``; the main process
writes the leaderboard once all have finished."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def threads_per_job(jobs: int) -> int:
    return max(1, (os.cpu_count() or 1) // jobs)


def start_workers(args, count: int) -> list[tuple[subprocess.Popen, Path]]:
    """``count`` worker processes for the ``run`` command ``args``, with their log files."""
    logs = Path(args.store) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads_per_job(count + 1)), "PYTHONUNBUFFERED": "1"}
    workers = []
    for i in range(1, count + 1):
        log = logs / f"{Path(args.suite).stem}-{args.preset}-worker{i}.log"
        command = [sys.executable, "-m", "crl_merge.cli", "run", str(args.suite), "--preset", args.preset,
                   "--store", str(args.store), "--device", args.device, "--trainer", args.trainer,
                   "--batch", str(args.batch), "--worker",
                   *(["--precision", args.precision] if args.precision else [])]
        with open(log, "w") as out:
            workers.append((subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env), log))
    return workers


def wait_for(workers: list[tuple[subprocess.Popen, Path]]) -> None:
    """Wait for every worker; a failed one is an error quoting the end of its log."""
    failed = []
    for process, log in workers:
        if process.wait() != 0:
            tail = log.read_text().strip().splitlines()[-5:]
            failed.append(f"{log} (exit code {process.returncode}): " + " | ".join(tail))
    if failed:
        raise ChildProcessError("worker(s) failed: " + "; ".join(failed))  # an OSError: exit code 1
