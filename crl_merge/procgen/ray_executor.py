"""``crl-merge run --executor ray``: the protocol's job graph as Ray tasks, on a laptop or a
cluster.

The driver (this process) submits a job once the jobs it reads are done and its artifacts
are not in the store, asking Ray for the job's CPUs and, on GPUs, its share of a GPU (so
several trainings share one). The Ray task takes the job's run claims itself
(:func:`crl_merge.procgen.jobs.execute_claimed`), so the store stays the single truth: a
second ``crl-merge run`` on the store, local or Ray, never does a job at the same time,
and a job it finished is reported as already done. A task whose claim is held elsewhere
comes back "held" and is submitted again later. A task whose worker died (killed,
out of memory, its node lost) is retried by Ray (``max_retries``); the dead worker's claims
were dropped by the operating system with it, and training resumes from its last
checkpoint. Every node must see the store at the same path (a shared filesystem with
``flock``), and have this package installed.

Ray is an optional extra: ``pip install crl-merge[ray]``.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from crl_merge.device import resolve_device
from crl_merge.host_memory import keep_freed_memory
from crl_merge.procgen import jobs, protocol  # noqa: F401  (protocol registers the job kinds)
from crl_merge.procgen.jobs import Context, Job
from crl_merge.store import RunStore
from envs.schema import ConfigError

MAX_RETRIES = 3  # attempts after a worker's death, per job


def import_ray():
    """The ``ray`` module; a missing Ray is a usage error that says how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray: pip install crl-merge[ray] (or pip install ray)") from None
    return ray


@dataclass
class BarRecord:
    """A job's bar as a worker drew it (the ``bars`` interface of a job kind), sent back to the
    driver, which draws its final state on its own bars."""

    description: str = ""
    total: float = 0
    status: str = ""

    def start(self, description: str, total: int) -> None:
        self.description, self.total, self.status = description, total, ""

    def update(self, completed: int, status: str = "") -> None:
        self.status = status or self.status

    def finish(self, status: str = "") -> None:
        self.status = status or self.status

    def replay(self, bars) -> None:
        bars.start(self.description, self.total)
        bars.finish(self.status)


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)  # Ray forwards a worker's output to the driver


def run_job(ctx: Context, job: Job) -> BarRecord | None:
    """The Ray task: the job run where Ray placed it, holding its claims; None while another
    process holds them."""
    keep_freed_memory()
    ctx = replace(ctx, device=resolve_device(ctx.device))
    bars = BarRecord()
    return bars if jobs.execute_claimed(ctx, job, bars, _log) else None


def _uses_gpu(ray, device: str) -> bool:
    return device.startswith("cuda") or (device == "auto" and ray.cluster_resources().get("GPU", 0) > 0)


def ray_executor(address: str | None = None, poll: float = 2.0, max_retries: int = MAX_RETRIES):
    """An executor for :func:`crl_merge.procgen.protocol.run_protocol` on the Ray cluster at
    ``address`` (None: a Ray instance started here, on this machine's CPUs and GPUs)."""

    def run_on_ray(ctx: Context, graph: list[Job], bars: dict, log=print) -> None:
        ray = import_ray()
        started_here = not ray.is_initialized()
        if started_here:
            ray.init(address=address, include_dashboard=False, log_to_driver=True)
        try:
            _drive(ray, replace(ctx, store=RunStore(Path(ctx.store.root).resolve())), graph, bars, log, poll,
                   max_retries)
        finally:
            if started_here:
                ray.shutdown()

    return run_on_ray


def _drive(ray, ctx: Context, graph: list[Job], bars: dict, log, poll: float, max_retries: int) -> None:
    """Submit every job when it can run; draw each result as it comes back."""
    task = ray.remote(max_retries=max_retries)(run_job)
    gpu = _uses_gpu(ray, ctx.device)
    order = {job.name: i for i, job in enumerate(graph)}
    pending, finished = list(graph), set()
    in_flight: dict = {}  # Ray object ref → (job, the run folders it writes)
    busy: set[Path] = set()  # run folders of jobs in flight: another job on one would only come back "held"
    not_before: dict[str, float] = {}  # job name → when to submit a job that came back "held" again
    while pending or in_flight:
        for job in list(pending):
            if not all(name in finished for name in job.after) or not_before.get(job.name, 0) > time.monotonic():
                continue
            group = jobs.runs_of(ctx, job)
            folders = {run.path for run in group.runs}
            if jobs.is_done(ctx, job, group):  # made by an earlier or another run: say so, as the local executor does
                jobs.execute(ctx, job, group, bars[job.kind], log)
                finished.add(job.name)
            elif not folders & busy:
                options = {"num_cpus": job.resources.cpus, "num_gpus": job.resources.gpu_share if gpu else 0}
                in_flight[task.options(**options).remote(ctx, job)] = job, folders
                busy |= folders
            else:
                continue
            pending.remove(job)
        if not in_flight:
            time.sleep(poll)  # all that can run is held by another process
            continue
        done, _ = ray.wait(list(in_flight), num_returns=1, timeout=poll)
        for ref in done:
            job, folders = in_flight.pop(ref)
            busy -= folders
            record = ray.get(ref)  # a job's error, or a worker dead more than max_retries times, ends the run
            if record is None:
                not_before[job.name] = time.monotonic() + poll
                pending.append(job)
                pending.sort(key=lambda job: order[job.name])
            else:
                record.replay(bars[job.kind])
                finished.add(job.name)


__all__ = ["ray_executor", "run_job", "import_ray", "MAX_RETRIES"]
