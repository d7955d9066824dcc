"""PPO training of NatureCNN actor-critics (shared trunk or separate networks) into the run store, by either trainer:
``fast`` (device-resident, :mod:`crl_merge.procgen.ppo.fast`) or ``sb3`` (stable-baselines3,
the reference, :mod:`crl_merge.procgen.ppo.sb3`). Both write the same artifacts:
``actor``/``critic`` checkpoints, the learning curve ``curve.csv`` and TensorBoard logs."""

from __future__ import annotations

from crl_merge.store import Run
from crl_merge.procgen.ppo.checkpointing import TrainingCheckpoint
from crl_merge.procgen.ppo.config import TRAINERS, PPOConfig
from crl_merge.procgen.ppo.precision import recorded

DONE = "actor"  # the artifact saved last: a run that has it is finished


def training_spec(task, ppo: PPOConfig, total_steps: int, init_seed: int, level_seed: int, trainer: str,
                  policy: str = "shared", snapshot_every: int | None = None, precision: str = "fp32") -> dict:
    """What a training run's results depend on (the run store refuses to mix different ones).
    ``snapshot_every`` is recorded only when snapshots are kept, and ``precision`` only when it
    is not the reference fp32, so that runs made without them keep their spec."""
    spec = {"kind": "train", "task": task.name, "game": task.game, "task_config": task.config.to_dict(),
            "init_seed": init_seed, "level_seed": level_seed, "trainer": trainer, "policy": policy,
            "total_steps": total_steps, "ppo": ppo.to_dict()}
    if snapshot_every is not None:
        spec["snapshot_every"] = snapshot_every
    return {**spec, **recorded(precision)}


def snapshot_artifact(updates: int) -> str:
    """The artifact holding a training's whole policy after ``updates`` PPO updates."""
    return f"snapshot-{updates:05d}"


def train_run(run: Run, task, ppo: PPOConfig, total_steps: int, init_seed: int, level_seed: int,
              trainer: str = "fast", device: str = "cpu", checkpoint_every: int | None = None,
              progress=None, log=None, policy: str = "shared", snapshot_every: int | None = None,
              precision: str = "fp32") -> bool:
    """Train into ``run`` unless it is finished; resume from its checkpoint if one exists.

    Returns True if training happened, False if the run was already finished. ``log(text)``
    hears about resuming. ``snapshot_every``: keep the whole policy every that many updates
    (:func:`snapshot_artifact`; the ``fast`` trainer only). ``precision``: the network passes'
    arithmetic (:mod:`crl_merge.procgen.ppo.precision`; ``sb3``, the reference, is fp32 only).
    """
    if trainer not in TRAINERS:
        raise ValueError(f"unknown trainer {trainer!r}; valid trainers: {list(TRAINERS)}")
    if snapshot_every is not None and trainer != "fast":
        raise ValueError(f"policy snapshots are kept by the fast trainer only, not by {trainer!r}")
    if precision != "fp32" and trainer != "fast":
        raise ValueError(f"precision {precision!r} is the fast trainer's; {trainer!r} (the reference) trains in fp32")
    checkpoint = _checkpoint(run, ppo, total_steps, checkpoint_every)
    if run.has(DONE):
        checkpoint.discard()
        return False
    if log and (step := checkpoint.saved_step()) is not None:
        log(f"{run.path}: resuming from the checkpoint at step {step:,}")
    options = {}
    if trainer == "fast":
        from crl_merge.procgen.ppo.fast import train_fast as train

        options["precision"] = precision
        if snapshot_every is not None:
            def keep(updates: int, model) -> None:
                if updates % snapshot_every == 0:
                    run.save_tensors(snapshot_artifact(updates), dict(model.state_dict()), {"updates": updates})
            options["snapshot"] = keep
    else:
        from crl_merge.procgen.ppo.sb3 import train_sb3 as train
    result = train(task, ppo, total_steps, init_seed, level_seed, device=device, checkpoint=checkpoint,
                   tensorboard_dir=run.path / "tensorboard", progress=progress, policy_layout=policy, **options)
    _save_trained(run, result, checkpoint, task, init_seed, level_seed, trainer, policy, precision)
    return True


def train_runs_batched(runs: list[Run], tasks: list, ppo: PPOConfig, total_steps: int, seeds: list[tuple[int, int]],
                       device: str = "cpu", checkpoint_every: int | None = None, progress=None, log=None,
                       policy: str = "shared", precision: str = "fp32") -> list[bool]:
    """:func:`train_run` of every run, the unfinished ones trained together by the batched
    ``fast`` trainer (:mod:`crl_merge.procgen.ppo.batched`), which saves what ``fast`` saves.
    Runs resuming from different steps (a crash between two models' checkpoint saves) are
    trained as separate batches, one per step. ``progress(step, rows)`` hears every update."""
    from crl_merge.procgen.ppo.batched import train_fast_batched

    if precision != "fp32":
        raise ValueError(f"precision {precision!r} is not offered by the batched trainer (bf16 autocast does not "
                         "reach convolutions under torch.func.vmap); train bf16 models one at a time (--batch 1)")
    checkpoints = [_checkpoint(run, ppo, total_steps, checkpoint_every) for run in runs]
    by_step: dict[int, list[int]] = {}
    for i, (run, checkpoint) in enumerate(zip(runs, checkpoints)):
        if run.has(DONE):
            checkpoint.discard()
            continue
        if log and (step := checkpoint.saved_step()) is not None:
            log(f"{run.path}: resuming from the checkpoint at step {step:,}")
        by_step.setdefault(checkpoint.saved_step() or 0, []).append(i)
    for members in by_step.values():
        results = train_fast_batched([tasks[i] for i in members], ppo, total_steps, [seeds[i] for i in members],
                                     device=device, checkpoints=[checkpoints[i] for i in members],
                                     tensorboard_dirs=[runs[i].path / "tensorboard" for i in members],
                                     progress=progress, policy_layout=policy)
        for i, result in zip(members, results):
            _save_trained(runs[i], result, checkpoints[i], tasks[i], *seeds[i], "fast", policy, precision)
    return [any(i in members for members in by_step.values()) for i in range(len(runs))]


def _checkpoint(run: Run, ppo: PPOConfig, total_steps: int, every: int | None) -> TrainingCheckpoint:
    """The run's resume checkpoint, saved every ``every`` steps (default: a tenth of the training)."""
    return TrainingCheckpoint(run, every or max(total_steps // 10, ppo.rollout_size))


def _save_trained(run: Run, result, checkpoint: TrainingCheckpoint, task, init_seed: int, level_seed: int,
                  trainer: str, policy: str, precision: str) -> None:
    """A finished training's artifacts, the actor last (it marks the run finished)."""
    result.curve.close()
    meta = {"task": task.name, "init_seed": init_seed, "level_seed": level_seed, "steps": result.steps,
            "trainer": trainer, "policy": policy, **recorded(precision)}
    run.save_file("curve", "curve.csv", result.curve.csv_text())
    run.save_model("critic", result.critic, role="critic", **meta)
    run.save_model(DONE, result.actor, role="actor", **meta)
    checkpoint.discard()


__all__ = ["train_run", "train_runs_batched", "training_spec", "snapshot_artifact", "PPOConfig", "TRAINERS"]
