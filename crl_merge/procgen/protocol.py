"""The Procgen protocol (protocols A) over a suite: train the seed grid, evaluate every
model on every task of the suite (and the random agent alongside), merge the sub-task
models by the suite's merge plan and evaluate the merges, all through the run store
(laid out by :mod:`crl_merge.procgen.layout`)."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import replace

from crl_merge.device import resolve_device
from crl_merge.procgen import continual, jobs, layout
from crl_merge.procgen.bars import Bars
from crl_merge.procgen.jobs import Context, Job, JobKind, Resources
from crl_merge.procgen.merging import PairModels, merged_actor
from crl_merge.procgen.plan import MergeMethod
from crl_merge.procgen.ppo import train_run, train_runs_batched
from crl_merge.procgen.runs import (evaluate_into, evaluated, evaluation_episodes, merged_model_evaluations, random_run,
                                    snapshot_every, training_run)
from crl_merge.procgen.suite import SUPER, Suite, TrainingJob
from crl_merge.store import Run, RunStore


def in_turn(items, run_of, is_done, poll: float = 2.0, ready=None):
    """Yield ``(item, run)`` for every item, holding the claim of ``run = run_of(item)`` while
    the caller works on it (none is taken when ``is_done(item, run)``: a finished store may
    be read-only). Items whose run another process holds, or that are not ``ready(item)``
    yet (they read what another process is still making), are put off and retried, so two
    processes on one store share the work and never do one job at the same time."""
    pending = list(items)
    while pending:
        held_elsewhere = []
        for item in pending:
            if ready is not None and not ready(item):
                held_elsewhere.append(item)
                continue
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


def run_locally(ctx: Context, graph: list[Job], bars: dict[str, Bars], log=print) -> None:
    """The local executor: this process works through the graph in order, each job holding
    its runs' claims (:func:`in_turn`), so that ``--jobs N`` workers and other ``crl-merge
    run`` on the store share the graph. A job waits until the jobs it reads are done."""
    ctx = replace(ctx, device=resolve_device(ctx.device))
    names = {job.name: job for job in graph}
    finished: set[str] = set()

    def ready(job: Job) -> bool:
        return all(name in finished or jobs.is_done(ctx, names[name]) for name in job.after)

    for job, group in in_turn(graph, lambda job: jobs.runs_of(ctx, job), lambda job, group: jobs.is_done(ctx, job, group),
                              ready=ready):
        jobs.execute(ctx, job, group, bars[job.kind], log)
        finished.add(job.name)


def protocol_bars(suite: Suite, graph: list[Job], progress) -> dict[str, Bars]:
    """An overall bar per job kind, in the graph's order, with the bar of its current job."""
    counts = Counter(job.kind for job in graph)
    return {kind: Bars(progress, f"{suite.name} [{suite.preset}] {jobs.KINDS[kind].label}", count)
            for kind, count in counts.items()}


def run_protocol(suite: Suite, store: RunStore, trainer: str = "fast", device: str = "auto",
                 progress=None, log=print, batch: int = 1, executor=run_locally,
                 gpu_share: float = 0.25) -> dict[str, Run]:
    """Train the grid, evaluate it and merge it, skipping whatever is already finished (by
    this process or another one working on the same store): the graph of
    :func:`protocol_jobs`, run by ``executor(ctx, graph, bars, log)`` (:func:`run_locally`,
    or :func:`crl_merge.procgen.ray_executor.ray_executor`'s).

    Returns the runs by model name (``dodge00``, …, and ``random``). ``progress`` is a rich
    ``Progress`` to draw bars on; ``log(text)`` hears about resumed runs. ``batch`` > 1 trains
    the grid ``batch`` models at a time with the batched ``fast`` trainer; ``gpu_share`` is
    the share of a GPU one job asks a cluster for.
    """
    if suite.merge.snapshot_every is not None and (trainer != "fast" or batch > 1):
        raise ValueError(f"{suite.path}: merge.continual has checkpoint-merging rows, whose partners keep policy "
                         "snapshots; only the fast trainer with --batch 1 keeps them (got --trainer "
                         f"{trainer} --batch {batch})")
    graph = protocol_jobs(suite, batch, gpu_share)
    jobs.check_graph(graph)
    ctx = Context(suite, store, "fast" if batch > 1 else trainer, device)
    executor(ctx, graph, protocol_bars(suite, graph, progress), log)
    runs = {job.model_name: training_run(store, suite, job, ctx.trainer) for job in suite.grid()}
    return {**runs, "random": random_run(store, suite)}


def protocol_jobs(suite: Suite, batch: int = 1, gpu_share: float = 0.25) -> list[Job]:
    """The protocol's graph, in an order that runs it (every job after those it reads):
    the grid's trainings (``batch`` consecutive models to a job), every model's and the
    random agent's evaluation on every task of the suite, every merge of the plan, every
    continual row of the plan on every pair (:mod:`crl_merge.procgen.continual`)."""
    grid = suite.grid()
    trainings = [Job("train", "train " + " + ".join(job.model_name for job in group), tuple(group),
                     resources=Resources(gpu_share=min(1.0, gpu_share * len(group))))
                 for group in (grid[i:i + batch] for i in range(0, len(grid), batch))]
    trained_by = {model.model_name: job.name for job in trainings for model in job.inputs}
    share = Resources(gpu_share=gpu_share)
    evaluations = [Job("evaluate", f"eval {name} on {key}", (name, model, key),
                       after=(trained_by[name],) if model else (), resources=share)
                   for name, model in [*((m.model_name, m) for m in grid), ("random", None)] for key in suite.tasks]
    merges = [Job("merge", f"{round_name} {method.row_id} {a.model_name}+{b.model_name}", (round_name, method, a, b),
                  after=(trained_by[a.model_name], trained_by[b.model_name]), resources=share)
              for round_name, method, a, b in merge_jobs(suite)]
    continual_rows = [Job("continual", f"{round_name} {row.row_id} {a.model_name}+{b.model_name}",
                          (round_name, row, a, b), after=(trained_by[a.model_name], trained_by[b.model_name]),
                          resources=share)
                      for round_name, row, a, b in continual.continual_jobs(suite)]
    return trainings + evaluations + merges + continual_rows


def _train(ctx: Context, job: Job, runs: list[Run], bars: Bars, log=print) -> None:
    """Train one model, or a batch of them as one program holding all their claims
    (:func:`crl_merge.procgen.ppo.train_runs_batched`)."""
    suite, models = ctx.suite, job.inputs
    bars.start(job.name, suite.ppo.steps_trained(suite.training.total_steps))
    if len(models) == 1:
        model, = models
        trained = train_run(
            runs[0], model.task, suite.ppo, suite.training.total_steps, model.init_seed, model.level_seed,
            trainer=ctx.trainer, device=ctx.device, checkpoint_every=suite.checkpoint_every, log=log,
            policy=suite.training.policy, snapshot_every=snapshot_every(suite, model),
            precision=suite.training.precision,
            progress=lambda step, row: bars.update(
                step, f"return {row['rolling_return']:.2f} · {row['steps_per_second']:,.0f} steps/s"))
    else:
        trained = any(train_runs_batched(
            runs, [model.task for model in models], suite.ppo, suite.training.total_steps,
            [(model.init_seed, model.level_seed) for model in models], device=ctx.device,
            checkpoint_every=suite.checkpoint_every, log=log, policy=suite.training.policy,
            precision=suite.training.precision,
            progress=lambda step, rows: bars.update(step, "returns " + " ".join(
                f"{row['rolling_return']:.2f}" for row in rows) + f" · {rows[0]['steps_per_second']:,.0f} steps/s each")))
    bars.finish("trained" if trained else "already trained")


def _evaluation_run(ctx: Context, job: Job) -> list[Run]:
    _, model, _ = job.inputs
    return [training_run(ctx.store, ctx.suite, model, ctx.trainer) if model else random_run(ctx.store, ctx.suite)]


def _evaluation_done(ctx: Context, job: Job, runs: list[Run]) -> bool:
    _, model, key = job.inputs
    suite = ctx.suite
    return evaluated(runs[0], key, suite.tasks[key], evaluation_episodes(suite, model and model.task_key, key), suite)


def _evaluate(ctx: Context, job: Job, runs: list[Run], bars: Bars, log=print) -> None:
    _, model, key = job.inputs
    suite, run = ctx.suite, runs[0]
    episodes = evaluation_episodes(suite, model and model.task_key, key)
    bars.start(job.name, episodes)
    done = _evaluation_done(ctx, job, runs)
    actor = run.load_model(layout.ACTOR, ctx.device)[0] if model and not done else None
    record = evaluate_into(run, key, actor, suite.tasks[key], episodes, suite, ctx.device, progress=bars.update)
    bars.finish(f"{record['mean_return']:.2f} ± {record['std_return']:.2f}{' (already evaluated)' if done else ''}")


jobs.register("train", JobKind(
    "training", lambda ctx, job: [training_run(ctx.store, ctx.suite, model, ctx.trainer) for model in job.inputs],
    lambda ctx, job, runs: all(run.has(layout.ACTOR) for run in runs), _train))
jobs.register("evaluate", JobKind("evaluation", _evaluation_run, _evaluation_done, _evaluate))


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


def _merged(ctx: Context, job: Job, runs: list[Run]) -> bool:
    suite = ctx.suite
    return all(evaluated(runs[0], key, suite.tasks[key], episodes, suite)
               for key, episodes in merged_model_evaluations(suite))


def _merge(ctx: Context, job: Job, runs: list[Run], bars: Bars, log=print) -> None:
    """Make the merged actor (kept in the store, except for the ensemble, which is not a merge)
    and evaluate it; skips what is finished."""
    suite, device, run = ctx.suite, ctx.device, runs[0]
    round_name, method, a, b = job.inputs
    evaluations = merged_model_evaluations(suite)
    bars.start(job.name, len(evaluations))
    if _merged(ctx, job, runs):
        bars.finish("already merged and evaluated")
        return
    if run.has(layout.ACTOR):
        actor = run.load_model(layout.ACTOR, device)[0]
    else:
        kept, permuted = (a, b) if method.direction == "ab" else (b, a)
        source = {model.model_name: training_run(ctx.store, suite, model, ctx.trainer) for model in (a, b)}
        pair = PairModels(source[kept.model_name].load_model(layout.ACTOR, device)[0],
                          source[permuted.model_name].load_model(layout.ACTOR, device)[0], kept.task,
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


jobs.register("merge", JobKind("merges", lambda ctx, job: [merge_run(ctx.store, ctx.suite, *job.inputs)], _merged,
                               _merge))
jobs.register("continual", continual.JOB_KIND)


__all__ = ["run_protocol", "protocol_jobs", "run_locally", "evaluate_into", "training_run", "SUPER"]
