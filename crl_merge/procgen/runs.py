"""A suite's runs in the run store, as the protocol's jobs open and fill them: training
runs (with the spec their results depend on), and evaluations recorded under the suite's
evaluation protocol (so that a changed protocol is re-evaluated, never silently reused)."""

from __future__ import annotations

from dataclasses import asdict

from crl_merge.procgen import layout
from crl_merge.procgen.evaluate import evaluate
from crl_merge.procgen.ppo import training_spec
from crl_merge.procgen.suite import SUPER, Suite, TrainingJob
from crl_merge.store import Run, RunStore


def training_run(store: RunStore, suite: Suite, job: TrainingJob, trainer: str) -> Run:
    spec = training_spec(job.task, suite.ppo, suite.training.total_steps, job.init_seed, job.level_seed, trainer,
                         suite.training.policy, snapshot_every(suite, job), suite.training.precision)
    return store.run(*layout.training_parts(suite, job), spec=spec)


def snapshot_every(suite: Suite, job: TrainingJob) -> int | None:
    """Every how many updates ``job``'s training keeps its policy: the sub-task models keep
    what the plan's checkpoint-merging rows merge with."""
    return None if job.task_key == SUPER else suite.merge.snapshot_every


def random_run(store: RunStore, suite: Suite) -> Run:
    return store.run(*layout.random_parts(suite), spec={"kind": "random"})


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
