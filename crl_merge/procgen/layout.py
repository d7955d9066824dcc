"""Where a Procgen suite's runs live in the run store (``<store>/<suite>/<preset>/…``)::

    train/<task>/<init><level>/                   actor, critic, curve.csv, tensorboard/, eval-<task>.json
    baselines/random/                             eval-<task>.json
    merges/<round>/<method row id>/<A>+<B>/        actor (not for ensembles), eval-<task>.json
    continual/<round>/<row id>/<A>+<B>/            actor, critic, curve-<learner>.csv, resume, eval-<task>.json

The protocol writes these, the report reads them; nothing else spells them out.
"""

from __future__ import annotations

from crl_merge.procgen.plan import ContinualRow, MergeMethod
from crl_merge.procgen.suite import Suite, TrainingJob

ACTOR = "actor"  # the model artifact of a trained or merged run


def training_parts(suite: Suite, job: TrainingJob) -> tuple[str, ...]:
    return (suite.name, suite.preset, "train", job.task_key, job.seed_name)


def random_parts(suite: Suite) -> tuple[str, ...]:
    return (suite.name, suite.preset, "baselines", "random")


def merge_parts(suite: Suite, round_name: str, method: MergeMethod, a: TrainingJob, b: TrainingJob) -> tuple[str, ...]:
    return (suite.name, suite.preset, "merges", round_name, method.row_id, f"{a.seed_name}+{b.seed_name}")


def continual_parts(suite: Suite, round_name: str, row: ContinualRow, a: TrainingJob, b: TrainingJob
                    ) -> tuple[str, ...]:
    """``a`` and ``b``: the pair's first and second sub-task's jobs, whatever the direction."""
    return (suite.name, suite.preset, "continual", round_name, row.row_id, f"{a.seed_name}+{b.seed_name}")


def evaluation(task_key: str) -> str:
    """The artifact of an evaluation on the suite task ``task_key``."""
    return f"eval-{task_key}"
