"""The continual protocols of a suite's merge plan (``merge.continual``), after the thesis
code's ``train_and_merge.py`` (``../shared/design/thesis-code-facts.md``, last section):

* ``federated``: learners A and B train at the same time, A on its sub-task and B on the
  other, one PPO update each in turn (A first, as the thesis code alternates its ``learn``
  calls). After every ``every``-th update both policies are replaced by their merge and
  training goes on; the Adam states are never merged (as in the thesis code). The result is
  B's policy, which the thesis code saves (the same as A's when the last update was a merge).
* ``checkpoint``: learner A trains on its sub-task and after every ``every``-th update is
  merged with the snapshot that the grid's model of the other sub-task kept after the same
  number of updates (:func:`crl_merge.procgen.ppo.snapshot_artifact`). The result is A's policy.

A is the first sub-task's model for direction ``ab`` and the second's for ``ba``; α weighs
A and Re-Basin keeps A and renumbers B. What is merged is the whole actor-critic (trunk,
action head and value head), as the thesis code merges the whole policy state dict. One
difference: Re-Basin renumbers the value head with the trunk's ``fc`` units here, so the
merged critic reads the features it was trained on; the thesis code's weight matching leaves
the value head unpermuted (its comment: "can be permuted for future work").

A run resumes from its last checkpoint (both learners in one file, saved after the update's
merge), starting new episodes as a resumed training does; the models are evaluated like
every merged model (:func:`crl_merge.procgen.runs.merged_model_evaluations`). Each pair of a
row is one job of the protocol's graph (kind ``continual``, :data:`JOB_KIND`), after the
trainings of the pair's two models.
"""

from __future__ import annotations

import torch

from crl_merge.merge import align, interpolate
from crl_merge.merge.specs import PermutationSpec
from crl_merge.models import make_actor_critic
from crl_merge.models.nature_cnn import actor_critic_permutation_axes
from crl_merge.procgen import layout
from crl_merge.procgen.jobs import Context, Job, JobKind
from crl_merge.procgen.plan import ContinualRow
from crl_merge.procgen.ppo import snapshot_artifact, training_spec
from crl_merge.procgen.ppo.checkpointing import ARTIFACT as RESUME
from crl_merge.procgen.ppo.fast import FastLearner
from crl_merge.procgen.ppo.precision import recorded
from crl_merge.procgen.runs import evaluate_into, evaluated, merged_model_evaluations, training_run
from crl_merge.procgen.suite import Suite, TrainingJob
from crl_merge.store import Run, RunStore, StoreError


def merge_policies(row: ContinualRow, a: torch.nn.Module, b: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The merged actor-critic state: ``α·A + (1 − α)·B`` over every parameter, with B first
    weight-matched onto A for ``rebasin``."""
    state_a, state_b = a.state_dict(), b.state_dict()
    if row.method == "rebasin":
        spec = PermutationSpec.build(**actor_critic_permutation_axes(a.layout))
        state_b = align(spec, state_a, state_b).aligned
    return interpolate(state_a, state_b, row.alpha)


def learner_jobs(row: ContinualRow, a: TrainingJob, b: TrainingJob) -> tuple[TrainingJob, TrainingJob]:
    """``(A, B)`` of a pair (first sub-task's job ``a``, second's ``b``) in the row's direction."""
    return (a, b) if row.direction == "ab" else (b, a)


def continual_jobs(suite: Suite) -> list[tuple[str, ContinualRow, TrainingJob, TrainingJob]]:
    """``(round, row, first sub-task's job, second's)`` for every continual row on every pair
    of the plan's rounds that the grid trains."""
    return [(round_name, row, a, b) for round_name, a, b in suite.merge_pairs() for row in suite.merge.continual
            if row.rounds is None or round_name in row.rounds]


def continual_run(store: RunStore, suite: Suite, round_name: str, row: ContinualRow, a: TrainingJob,
                  b: TrainingJob) -> Run:
    learners = learner_jobs(row, a, b)[:2 if row.protocol == "federated" else 1]
    spec = {"kind": "continual", "round": round_name, "row": row.row_id, "a": a.model_name, "b": b.model_name,
            "learners": [training_spec(job.task, suite.ppo, suite.training.total_steps, job.init_seed,
                                       job.level_seed, "fast", suite.training.policy,
                                       precision=suite.training.precision) for job in learners]}
    return store.run(*layout.continual_parts(suite, round_name, row, a, b), spec=spec)


def _pack(learners: list[FastLearner]) -> tuple[dict[str, torch.Tensor], dict]:
    """Every learner's resume state in one checkpoint: tensors under ``<index>/``."""
    tensors, metas = {}, []
    for i, learner in enumerate(learners):
        state, meta = learner.state()
        tensors |= {f"{i}/{name}": value for name, value in state.items()}
        metas.append(meta)
    return tensors, {"global_step": learners[0].global_step, "learners": metas}


def _unpack(saved: tuple[dict, dict] | None, i: int) -> tuple[dict, dict] | None:
    if saved is None:
        return None
    tensors, meta = saved
    return {name.split("/", 1)[1]: v for name, v in tensors.items() if name.startswith(f"{i}/")}, meta["learners"][i]


def _partner_policy(partner: Run, updates: int, every: int, layout_name: str, device) -> torch.nn.Module:
    artifact = snapshot_artifact(updates)
    if not partner.has(artifact):
        raise StoreError(f"{partner.path} has no policy snapshot after {updates} updates (it keeps one every "
                         f"{every}); it was trained before the suite had checkpoint-merging rows: delete it to "
                         "retrain it with snapshots")
    policy = make_actor_critic(layout_name).to(device)
    policy.load_state_dict(partner.load_tensors(artifact, device)[0])
    return policy


def train_continual(run: Run, suite: Suite, row: ContinualRow, a: TrainingJob, b: TrainingJob,
                    partner: Run | None = None, device="cpu", progress=None, log=None) -> bool:
    """Train the row's learner(s) into ``run`` unless it is finished, resuming from its
    checkpoint. ``partner``: the grid's run of the other sub-task's model (checkpoint rows).
    Returns True if training happened. ``progress(step, rows)`` hears every update."""
    if run.has(layout.ACTOR):
        return False
    jobs = learner_jobs(row, a, b)[:2 if row.protocol == "federated" else 1]
    saved = run.load_tensors(RESUME, device) if run.has(RESUME) else None
    if log and saved is not None:
        log(f"{run.path}: resuming from the checkpoint at step {saved[1]['global_step']:,}")
    learners = [FastLearner(job.task, suite.ppo, job.init_seed, job.level_seed, device, suite.training.policy,
                            run.path / "tensorboard" / job.model_name, _unpack(saved, i), suite.training.precision)
                for i, job in enumerate(jobs)]
    total, every = suite.training.total_steps, suite.checkpoint_every
    last_saved = learners[0].global_step
    while learners[0].global_step < total:
        rows = [learner.update() for learner in learners]
        updates = learners[0].updates
        if updates % row.every == 0:
            other = (learners[1].policy if row.protocol == "federated" else
                     _partner_policy(partner, updates, suite.merge.snapshot_every, suite.training.policy, device))
            merged = merge_policies(row, learners[0].policy, other)
            for learner in learners:
                learner.policy.load_state_dict(merged)
        if progress:
            progress(learners[0].global_step, rows)
        step = learners[0].global_step
        if step - last_saved >= every and step < total:
            tensors, meta = _pack(learners)
            run.save_tensors(RESUME, tensors, meta, global_step=step)
            last_saved = step
    for job, learner in zip(jobs, learners):
        learner.curve.close()
        run.save_file(f"curve-{job.model_name}", f"curve-{job.model_name}.csv", learner.curve.csv_text())
    result, job = learners[-1].result(), jobs[-1]
    meta = {"task": job.task.name, "init_seed": job.init_seed, "level_seed": job.level_seed, "steps": result.steps,
            "trainer": "fast", "policy": suite.training.policy, "continual": row.row_id,
            **recorded(suite.training.precision)}
    run.save_model("critic", result.critic, role="critic", **meta)
    run.save_model(layout.ACTOR, result.actor, role="actor", **meta)
    run.forget(RESUME)
    for suffix in (".safetensors", ".json"):
        (run.path / f"{RESUME}{suffix}").unlink(missing_ok=True)
    return True


def _done(ctx: Context, job: Job, runs: list[Run]) -> bool:
    suite = ctx.suite
    return runs[0].has(layout.ACTOR) and all(evaluated(runs[0], key, suite.tasks[key], episodes, suite)
                                             for key, episodes in merged_model_evaluations(suite))


def _execute(ctx: Context, job: Job, runs: list[Run], bars, log=print) -> None:
    """Train the pair's continual model unless it is trained, then evaluate it."""
    suite, run = ctx.suite, runs[0]
    round_name, row, a, b = job.inputs
    total = suite.ppo.steps_trained(suite.training.total_steps)
    bars.start(job.name, total)
    if _done(ctx, job, runs):
        bars.finish("already trained and evaluated")
        return
    partner = training_run(ctx.store, suite, learner_jobs(row, a, b)[1], ctx.trainer)
    train_continual(run, suite, row, a, b, partner, ctx.device, log=log, progress=lambda step, rows: bars.update(
        step, "returns " + " ".join(f"{r['rolling_return']:.2f}" for r in rows)))
    actor = run.load_model(layout.ACTOR, ctx.device)[0]
    for key, episodes in merged_model_evaluations(suite):
        record = evaluate_into(run, key, actor, suite.tasks[key], episodes, suite, ctx.device)
        bars.update(total, f"{record['mean_return']:.2f} on {key}")
    bars.finish("trained and evaluated")


JOB_KIND = JobKind("continual", lambda ctx, job: [continual_run(ctx.store, ctx.suite, *job.inputs)], _done, _execute)
"""The ``continual`` job kind of the protocol's graph: one row on one pair."""
