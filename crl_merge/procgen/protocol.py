"""The Procgen protocol (protocols A) over a suite: train the seed grid, evaluate every
model on every task of the suite (and the random agent alongside), merge the sub-task
models by the suite's merge plan and evaluate the merges, all through the run store
(laid out by :mod:`crl_merge.procgen.layout`)."""

from __future__ import annotations

import time
from dataclasses import asdict

from crl_merge.device import resolve_device
from crl_merge.procgen import layout
from crl_merge.procgen.evaluate import evaluate
from crl_merge.procgen.merging import PairModels, merged_actor
from crl_merge.procgen.plan import MergeMethod
from crl_merge.procgen.ppo import train_run, train_runs_batched, training_spec
from crl_merge.procgen.suite import SUPER, Suite, TrainingJob
from crl_merge.store import Run, RunGroup, RunStore


def training_run(store: RunStore, suite: Suite, job: TrainingJob, trainer: str) -> Run:
    spec = training_spec(job.task, suite.ppo, suite.training.total_steps, job.init_seed, job.level_seed, trainer,
                         suite.training.policy, snapshot_every(suite, job))
    return store.run(*layout.training_parts(suite, job), spec=spec)


def snapshot_every(suite: Suite, job: TrainingJob) -> int | None:
    """Every how many updates ``job``'s training keeps its policy: the sub-task models keep
    what the plan's checkpoint-merging rows merge with."""
    return None if job.task_key == SUPER else suite.merge.snapshot_every


def evaluation_episodes(suite: Suite, model_task: str | None, eval_task: str) -> int:
    """The thesis's protocol: a model plays ``episodes`` on its own task and ``cross_episodes``
    on the others; the random agent plays ``episodes`` everywhere. A merged model's own task
    is the super-task."""
    protocol = suite.evaluation
    return protocol.episodes if model_task in (None, eval_task) else protocol.cross_episodes


def merged_model_evaluations(suite: Suite) -> list[tuple[str, int]]:
    """``(task key, episodes)`` a merged or continual model is evaluated on: the super-task
    (its own task), the analysis tasks and, for the retention columns, each sub-task
    (``evaluation.retention_episodes``; none when it is null)."""
    evaluations = [(key, evaluation_episodes(suite, SUPER, key)) for key in (SUPER, *suite.analysis_tasks)]
    if (episodes := suite.evaluation.retention_episodes) is not None:
        evaluations += [(key, episodes) for key in suite.sub_tasks]
    return evaluations


def _protocol(suite: Suite, task, episodes: int) -> dict:
    """What an evaluation record depends on (``retention_episodes`` only says which
    evaluations are made, so records made before it existed stay valid)."""
    settings = {k: v for k, v in asdict(suite.evaluation).items() if k != "retention_episodes"}
    return {**settings, "episodes": episodes, "task": task.name}


def evaluated(run: Run, task_key: str, task, episodes: int, suite: Suite) -> bool:
    """Whether ``run`` holds the evaluation on ``task_key`` under the suite's protocol."""
    artifact = layout.evaluation(task_key)
    return run.has(artifact) and run.load_json(artifact)["protocol"] == _protocol(suite, task, episodes)


def evaluate_into(run: Run, task_key: str, actor, task, episodes: int, suite: Suite, device: str,
                  progress=None) -> dict:
    """Evaluate unless the evaluation on ``task_key`` exists with the same protocol; returns its record."""
    p = suite.evaluation
    protocol = _protocol(suite, task, episodes)
    artifact = layout.evaluation(task_key)
    if run.has(artifact) and (record := run.load_json(artifact))["protocol"] == protocol:
        return record
    stats = evaluate(actor, task, episodes, num_envs=p.num_envs, level_seed=p.level_seed, actions=p.actions,
                     device=device, rule=p.rule, progress=progress)
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

    def finish(self, status: str = "") -> None:
        """Complete the current job; an empty ``status`` keeps the last one shown."""
        if self.progress:
            self.progress.update(self.current, completed=self.progress.tasks[self.current].total,
                                 **({"status": status} if status else {}))
            self.progress.update(self.overall, advance=1)


def in_turn(items, run_of, is_done, poll: float = 2.0):
    """Yield ``(item, run)`` for every item, holding the claim of ``run = run_of(item)`` while
    the caller works on it (none is taken when ``is_done(item, run)``: a finished store may
    be read-only). Items whose run another process holds are put off and retried, so two
    processes on one store share the work and never do one job at the same time."""
    pending = list(items)
    while pending:
        held_elsewhere = []
        for item in pending:
            run = run_of(item)
            if is_done(item, run):
                yield item, run
                continue
            claim = run.try_claim()
            if claim is None:
                held_elsewhere.append(item)
                continue
            with claim:
                yield item, run
        if len(held_elsewhere) == len(pending):
            time.sleep(poll)  # all that is left is another process's: wait for it to finish or die
        pending = held_elsewhere


def run_protocol(suite: Suite, store: RunStore, trainer: str = "fast", device: str = "auto",
                 progress=None, log=print, batch: int = 1) -> dict[str, Run]:
    """Train the grid and evaluate it, skipping whatever is already finished (by this
    process or another one working on the same store).

    Returns the runs by model name (``dodge00``, …, and ``random``). ``progress`` is a rich
    ``Progress`` to draw bars on; ``log(text)`` hears about resumed runs. ``batch`` > 1 trains
    the grid ``batch`` models at a time with the batched ``fast`` trainer.
    """
    device = resolve_device(device)
    if suite.merge.snapshot_every is not None and (trainer != "fast" or batch > 1):
        raise ValueError(f"{suite.path}: merge.continual has checkpoint-merging rows, whose partners keep policy "
                         "snapshots; only the fast trainer with --batch 1 keeps them (got --trainer "
                         f"{trainer} --batch {batch})")
    jobs = suite.grid()
    runs: dict[str, Run] = {}
    model_task: dict[str, str | None] = {job.model_name: job.task_key for job in jobs}
    if batch > 1:
        runs = train_grid_batched(suite, store, jobs, batch, device, progress, log)
    else:
        bars = _Bars(progress, f"{suite.name} [{suite.preset}] training", len(jobs))
        for job, run in in_turn(jobs, lambda job: training_run(store, suite, job, trainer),
                                lambda job, run: run.has(layout.ACTOR)):
            runs[job.model_name] = run
            bars.start(f"train {job.model_name}", suite.ppo.steps_trained(suite.training.total_steps))
            trained = train_run(
                run, job.task, suite.ppo, suite.training.total_steps, job.init_seed, job.level_seed,
                trainer=trainer, device=device, checkpoint_every=suite.checkpoint_every, log=log,
                policy=suite.training.policy, snapshot_every=snapshot_every(suite, job),
                progress=lambda step, row: bars.update(
                    step, f"return {row['rolling_return']:.2f} · {row['steps_per_second']:,.0f} steps/s"))
            bars.finish("trained" if trained else "already trained")
    runs = {job.model_name: runs[job.model_name] for job in jobs}  # grid order
    runs["random"] = store.run(*layout.random_parts(suite), spec={"kind": "random"})
    model_task["random"] = None

    def evaluations_of(name: str) -> list[tuple[str, int]]:
        return [(key, evaluation_episodes(suite, model_task[name], key)) for key in suite.tasks]

    bars = _Bars(progress, f"{suite.name} [{suite.preset}] evaluation", len(runs) * len(suite.tasks))
    for name, run in in_turn(list(runs), runs.get, lambda name, run: all(
            evaluated(run, key, suite.tasks[key], episodes, suite) for key, episodes in evaluations_of(name))):
        actor = run.load_model(layout.ACTOR, device)[0] if model_task[name] is not None else None
        for key, episodes in evaluations_of(name):
            bars.start(f"eval {name} on {key}", episodes)
            done = evaluated(run, key, suite.tasks[key], episodes, suite)
            record = evaluate_into(run, key, actor, suite.tasks[key], episodes, suite, device, progress=bars.update)
            bars.finish(f"{record['mean_return']:.2f} ± {record['std_return']:.2f}"
                        f"{' (already evaluated)' if done else ''}")
    run_merges(suite, store, runs, device, progress)
    from crl_merge.procgen.continual import run_continual  # it builds on this module's helpers

    run_continual(suite, store, runs, device, progress, log)
    return runs


def train_grid_batched(suite: Suite, store: RunStore, jobs: list[TrainingJob], batch: int, device: str,
                       progress=None, log=print) -> dict[str, Run]:
    """The grid's training in groups of ``batch`` consecutive models, each group one program
    (:func:`crl_merge.procgen.ppo.train_runs_batched`) holding all its runs' claims."""
    groups = [jobs[i:i + batch] for i in range(0, len(jobs), batch)]
    total = suite.ppo.steps_trained(suite.training.total_steps)
    runs: dict[str, Run] = {}
    bars = _Bars(progress, f"{suite.name} [{suite.preset}] training, {batch} models at a time", len(groups))
    for group, members in in_turn(groups, lambda group: RunGroup([training_run(store, suite, job, "fast")
                                                                  for job in group]),
                                  lambda group, members: all(run.has(layout.ACTOR) for run in members.runs)):
        runs.update({job.model_name: run for job, run in zip(group, members.runs)})
        bars.start("train " + " + ".join(job.model_name for job in group), total)
        trained = train_runs_batched(
            members.runs, [job.task for job in group], suite.ppo, suite.training.total_steps,
            [(job.init_seed, job.level_seed) for job in group], device=device,
            checkpoint_every=suite.checkpoint_every, log=log, policy=suite.training.policy,
            progress=lambda step, rows: bars.update(step, "returns " + " ".join(
                f"{row['rolling_return']:.2f}" for row in rows) + f" · {rows[0]['steps_per_second']:,.0f} steps/s each"))
        bars.finish("trained" if any(trained) else "already trained")
    return runs


def merge_run(store: RunStore, suite: Suite, round_name: str, method: MergeMethod, a: TrainingJob,
              b: TrainingJob) -> Run:
    spec = {"kind": "merge", "round": round_name, "method": method.row_id, "a": a.model_name, "b": b.model_name,
            "states": suite.merge.states if method.needs_states else None}
    return store.run(*layout.merge_parts(suite, round_name, method, a, b), spec=spec)


def merge_jobs(suite: Suite) -> list[tuple[str, MergeMethod, TrainingJob, TrainingJob]]:
    """``(round, method, first sub-task's job, second's)`` for every merge of the plan the
    grid allows; methods that need a shared init skip pairs from two inits."""
    return [(round_name, method, a, b) for round_name, a, b in suite.merge_pairs()
            for method in suite.merge.methods if not method.needs_shared_init or a.init_seed == b.init_seed]


def run_merges(suite: Suite, store: RunStore, runs: dict[str, Run], device: str, progress=None) -> None:
    """Make every merged actor of the plan and evaluate it on the super-task and the analysis
    tasks; skips what is finished."""
    jobs = merge_jobs(suite)
    evaluations = merged_model_evaluations(suite)

    def is_done(job, run) -> bool:
        return all(evaluated(run, key, suite.tasks[key], episodes, suite) for key, episodes in evaluations)

    bars = _Bars(progress, f"{suite.name} [{suite.preset}] merges", len(jobs))
    for (round_name, method, a, b), run in in_turn(jobs, lambda job: merge_run(store, suite, *job), is_done):
        bars.start(f"{round_name} {method.row_id} {a.model_name}+{b.model_name}", len(evaluations))
        if is_done(None, run):
            bars.finish("already merged and evaluated")
            continue
        if run.has(layout.ACTOR):
            actor = run.load_model(layout.ACTOR, device)[0]
        else:
            kept, permuted = (a, b) if method.direction == "ab" else (b, a)
            pair = PairModels(runs[kept.model_name].load_model(layout.ACTOR, device)[0],
                              runs[permuted.model_name].load_model(layout.ACTOR, device)[0], kept.task,
                              permuted.task, kept.level_seed, permuted.level_seed, kept.init_seed,
                              permuted.init_seed)
            actor = merged_actor(method, pair, suite.merge.states, device)
            if method.info.is_merge:
                run.save_model(layout.ACTOR, actor, method=method.row_id, round=round_name, a=kept.model_name,
                               b=permuted.model_name)
        for i, (key, episodes) in enumerate(evaluations):
            record = evaluate_into(run, key, actor, suite.tasks[key], episodes, suite, device)
            bars.update(i + 1, f"{record['mean_return']:.2f} on {key}")
        bars.finish("merged")


__all__ = ["run_protocol", "evaluate_into", "training_run", "SUPER"]
