"""The protocol as data: a graph of jobs that any executor can run.

A :class:`Job` is one unit of work with its output in the run store: train a model (or a
batch of models), evaluate a model on a task, make and evaluate a merge. It names the jobs
whose artifacts it reads (``after``) and what it needs to run (:class:`Resources`); what the
work *is* lives in its kind (:class:`JobKind`), looked up by name in :data:`KINDS`, an open
table: a step of the protocol is added by registering a kind and building its jobs.

Every kind is written against the run store only: ``runs`` opens the run folders the job
writes (the executor holds their claims while it works), ``done`` says from the store
whether its artifacts are there, and ``execute`` makes them (doing nothing when they are
already there). So the result cannot depend on the executor, and a job whose artifacts
exist is never redone, whichever process or machine ran it first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from crl_merge.procgen.suite import Suite
from crl_merge.store import Run, RunGroup, RunStore


@dataclass(frozen=True)
class Resources:
    """What one job takes while it runs: CPUs, and the share of a GPU it asks for when the
    jobs run on GPUs (0.25: four jobs share one)."""

    cpus: float = 1.0
    gpu_share: float = 0.25


@dataclass(frozen=True)
class Job:
    """One job of the graph. ``name`` is unique in the graph and is what bars and logs call
    it (``train dodge00``, ``eval dodge00 on super``); ``inputs`` are its kind's arguments;
    ``after`` names the jobs whose artifacts it reads."""

    kind: str
    name: str
    inputs: tuple = ()
    after: tuple[str, ...] = ()
    resources: Resources = field(default_factory=Resources)


@dataclass(frozen=True)
class Context:
    """What every job of one protocol run shares; picklable, so that it travels to workers."""

    suite: Suite
    store: RunStore
    trainer: str
    device: str  # "auto" is resolved where the job runs


@dataclass(frozen=True)
class JobKind:
    """How jobs of one kind work. ``runs(ctx, job)``: the run folders it writes, opened;
    ``done(ctx, job, runs)``: whether the store holds its artifacts; ``execute(ctx, job,
    runs, bars, log)``: make them (a no-op that reports "already …" when they exist), showing
    progress on ``bars`` (``start(description, total)``, ``update(completed, status)``,
    ``finish(status)``). ``label`` names the kind's overall bar."""

    label: str
    runs: Callable[[Context, Job], list[Run]]
    done: Callable[[Context, Job, list[Run]], bool]
    execute: Callable[..., Any]


KINDS: dict[str, JobKind] = {}


def register(name: str, kind: JobKind) -> None:
    KINDS[name] = kind


def runs_of(ctx: Context, job: Job) -> RunGroup:
    """The job's run folders as one group, so that its claims are taken all or none."""
    return RunGroup(KINDS[job.kind].runs(ctx, job))


def is_done(ctx: Context, job: Job, group: RunGroup | None = None) -> bool:
    """Whether the store holds the job's artifacts (read afresh unless ``group`` is given)."""
    return KINDS[job.kind].done(ctx, job, (group or runs_of(ctx, job)).runs)


def execute(ctx: Context, job: Job, group: RunGroup, bars, log=print) -> None:
    KINDS[job.kind].execute(ctx, job, group.runs, bars, log)


def execute_claimed(ctx: Context, job: Job, bars, log=print) -> bool:
    """Run ``job`` holding its runs' claims; False, having done nothing, while another
    process holds any of them. Taking a claim re-reads the manifests, so a job finished
    elsewhere meanwhile is reported as already done, not redone."""
    group = runs_of(ctx, job)
    claim = group.try_claim()
    if claim is None:
        return False
    with claim:
        execute(ctx, job, group, bars, log)
    return True


def check_graph(jobs: list[Job]) -> None:
    """Names are unique and every job comes after the jobs it reads (executors rely on it)."""
    seen: set[str] = set()
    for job in jobs:
        if job.kind not in KINDS:
            raise ValueError(f"job {job.name!r}: unknown kind {job.kind!r}; known: {sorted(KINDS)}")
        if job.name in seen:
            raise ValueError(f"two jobs are named {job.name!r}")
        missing = [name for name in job.after if name not in seen]
        if missing:
            raise ValueError(f"job {job.name!r} comes before the jobs it reads: {missing}")
        seen.add(job.name)


__all__ = ["Job", "JobKind", "Resources", "Context", "KINDS", "register", "runs_of", "is_done", "execute",
           "execute_claimed", "check_graph"]
