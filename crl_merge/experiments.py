"""The Procgen protocol (protocols A) over a suite: train the seed grid, then evaluate every
model on every task of the suite, and the random agent alongside, all through the run store.

Store layout (``<store>/<suite>/<preset>/…``)::

    train/<task>/<init><level>/   actor, critic, curve.csv, tensorboard/, eval-<task>.json
    baselines/random/             eval-<task>.json
"""

from __future__ import annotations

from dataclasses import asdict

import torch

from crl_merge.evaluate import evaluate
from crl_merge.registry import SUPER, Suite, TrainingJob
from crl_merge.store import Run, RunStore
from crl_merge.train import train_run, training_spec


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but torch sees no CUDA device; use --device cpu or auto")
    return device


def training_run(store: RunStore, suite: Suite, preset: str, job: TrainingJob, trainer: str) -> Run:
    p = suite.preset(preset)
    spec = training_spec(job.task, p.ppo, p.total_steps, job.init_seed, job.level_seed, trainer)
    return store.run(suite.name, preset, "train", job.task_key, job.seed_name, spec=spec)


def evaluation_episodes(suite: Suite, preset: str, model_task: str | None, eval_task: str) -> int:
    """The thesis's protocol: a model plays ``episodes`` on its own task and ``cross_episodes``
    on the others; the random agent plays ``episodes`` everywhere."""
    protocol = suite.preset(preset).evaluation
    return protocol.episodes if model_task in (None, eval_task) else protocol.cross_episodes


def evaluate_into(run: Run, task_key: str, actor, task, episodes: int, suite: Suite, preset: str, device: str,
                  progress=None) -> dict:
    """Evaluate unless ``eval-<task_key>`` exists with the same protocol; returns its record."""
    protocol = {**asdict(suite.preset(preset).evaluation), "episodes": episodes, "task": task.name}
    artifact = f"eval-{task_key}"
    if run.has(artifact):
        record = run.load_json(artifact)
        if record["protocol"] == protocol:
            return record
    p = suite.preset(preset).evaluation
    stats = evaluate(actor, task, episodes, num_envs=p.num_envs, level_seed=p.level_seed, actions=p.actions,
                     device=device, progress=progress)
    record = {"protocol": protocol, **stats.summary(), "returns": stats.returns.tolist(),
              "lengths": stats.lengths.tolist()}
    run.save_json(artifact, record)
    return record


class _Bars:
    """An overall bar and one bar for the current job, on a rich ``Progress`` (or nothing)."""

    def __init__(self, progress, title: str, jobs: int):
        self.progress = progress
        if progress:
            self.overall = progress.add_task(title, total=jobs, status="")
            self.current = progress.add_task("", total=1, status="")

    def start(self, description: str, total: int) -> None:
        if self.progress:
            self.progress.reset(self.current, total=total, description=f"  {description}", status="")

    def update(self, completed: int, status: str = "") -> None:
        if self.progress:
            self.progress.update(self.current, completed=completed, status=status)

    def finish(self, status: str) -> None:
        if self.progress:
            self.progress.update(self.current, completed=self.progress.tasks[self.current].total, status=status)
            self.progress.update(self.overall, advance=1)


def run_protocol(suite: Suite, preset: str, store: RunStore, trainer: str = "fast", device: str = "auto",
                 progress=None, log=print) -> dict[str, Run]:
    """Train the grid and evaluate it, skipping whatever is already finished.

    Returns the runs by model name (``dodge00``, …, and ``random``). ``progress`` is a rich
    ``Progress`` to draw bars on; ``log(text)`` hears about resumed runs.
    """
    device = resolve_device(device)
    p = suite.preset(preset)
    jobs = suite.grid(preset)
    runs: dict[str, Run] = {}
    model_task: dict[str, str | None] = {}
    bars = _Bars(progress, f"{suite.name} [{preset}] training", len(jobs))
    for job in jobs:
        name = f"{job.task_key}{job.seed_name}"
        runs[name], model_task[name] = training_run(store, suite, preset, job, trainer), job.task_key
        bars.start(f"train {name}", p.total_steps)
        trained = train_run(
            runs[name], job.task, p.ppo, p.total_steps, job.init_seed, job.level_seed, trainer=trainer, device=device,
            checkpoint_every=p.checkpoint_every, log=log,
            progress=lambda step, row: bars.update(
                step, f"return {row['rolling_return']:.2f} · {row['steps_per_second']:,.0f} steps/s"))
        bars.finish("trained" if trained else "already trained")
    runs["random"] = store.run(suite.name, preset, "baselines", "random", spec={"kind": "random"})
    model_task["random"] = None

    evaluations = [(name, key) for name in runs for key in suite.tasks]
    bars = _Bars(progress, f"{suite.name} [{preset}] evaluation", len(evaluations))
    for name, key in evaluations:
        actor = runs[name].load_model("actor", device)[0] if model_task[name] is not None else None
        episodes = evaluation_episodes(suite, preset, model_task[name], key)
        bars.start(f"eval {name} on {key}", episodes)
        record = evaluate_into(runs[name], key, actor, suite.tasks[key], episodes, suite, preset, device,
                               progress=bars.update)
        bars.finish(f"{record['mean_return']:.2f} ± {record['std_return']:.2f}")
    return runs


__all__ = ["run_protocol", "evaluate_into", "training_run", "resolve_device", "SUPER"]
