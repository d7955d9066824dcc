"""Procgen suites: a benchmark file (``benchmarks/*.yaml``) at one preset, as validated data.

A suite names a super-task and its sub-tasks, the (weight-init seed, level seed) pairs to
train per task, the training budget, PPO hyperparameters, the evaluation protocol, the
merge plan and the thesis's published figures. The top level holds the thesis's scale;
presets (``smoke`` for tests, ``quick`` for a CPU, ``paper``) override any section key by
key (:mod:`crl_merge.suite_files`). Every error names the file and the key, and says what
is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import envs
from crl_merge.models import POLICY_LAYOUTS
from crl_merge.procgen.ppo.precision import PRECISIONS
from crl_merge.procgen.evaluate import ACTION_MODES
from crl_merge.procgen.plan import MergePlan, parse_merge_plan
from crl_merge.procgen.ppo.config import PPOConfig
from crl_merge.suite_files import read_suite_file, suite_path, with_preset
from envs.episodes import EPISODE_RULES
from envs.schema import Config, ConfigError, Option, check_keys, check_value, join, mapping, option

SUPER = "super"  # the key of the super-task in a suite's task table
SUITE_KEYS = ("name", "super_task", "sub_tasks", "analysis_tasks", "seeds", "training", "ppo", "evaluation",
              "merge", "reference", "presets")
REQUIRED_KEYS = ("name", "super_task", "sub_tasks", "seeds", "training", "evaluation", "merge")
OLD_PRESET_KEYS = {
    "total_steps": "training.total_steps", "seeds_per_task": "training.seeds_per_task",
    "checkpoint_every": "training.checkpoint_every", "merge_states": "merge.states",
    "pairs_per_round": "merge.pairs_per_round", "episodes": "evaluation.episodes",
    "cross_episodes": "evaluation.cross_episodes", "level_seed": "evaluation.level_seed",
    "actions": "evaluation.actions", "num_envs": "evaluation.num_envs",
}
"""Keys that presets took before presets became section overrides, and where they moved."""


@dataclass(frozen=True)
class Training(Config):
    total_steps: int = option(25_000_000, "int", "environment steps per model", 1)
    seeds_per_task: int = option(5, "int", "models per task: the first pairs of its seed list", 1)
    checkpoint_every: int | None = option(None, "int", "steps between resume checkpoints (default: 1/20 of "
                                                       "the run, at least one rollout)", 1, nullable=True)
    policy: str = option("shared", "str", "actor-critic layout: one trunk with two heads (the thesis's code, "
                                          "SB3's CnnPolicy) or separate networks", choices=POLICY_LAYOUTS)
    precision: str = option("fp32", "str", "the fast trainer's network arithmetic: fp32 (the reference) or bf16 "
                                           "autocast (faster where the chip has bf16 units)",
                            choices=PRECISIONS)


@dataclass(frozen=True)
class EvalProtocol(Config):
    episodes: int = option(5000, "int", "each model on its own task", 1)
    cross_episodes: int = option(1000, "int", "each model on every other task of its suite", 1)
    level_seed: int = option(envs.EVAL_SEED, "int", "the held-out level-generation seed", 0, 2**31 - 1)
    actions: str = option("stochastic", "str", "sample from the actor, or take its argmax", choices=ACTION_MODES)
    num_envs: int = option(64, "int", "environments played at once", 1, 1 << 16)
    rule: str = option("per_env", "str", "which finished episodes count (see crl_merge.procgen.evaluate)",
                       choices=EPISODE_RULES)
    retention_episodes: int | None = option(None, "int", "each merged or continual model on each sub-task, for "
                                                         "the retention columns (null: not evaluated)", 1,
                                            nullable=True)


@dataclass(frozen=True)
class TrainingJob:
    task_key: str
    task: envs.Task
    init_seed: int
    level_seed: int

    @property
    def seed_name(self) -> str:
        return seed_name(self.init_seed, self.level_seed)

    @property
    def model_name(self) -> str:
        """The thesis's model names: task and seeds, e.g. ``dodge01``."""
        return f"{self.task_key}{self.seed_name}"


def seed_name(init_seed: int, level_seed: int) -> str:
    """The thesis's suffix, init seed then level seed (``01``); ``12-3`` when a seed has two digits."""
    return f"{init_seed}{level_seed}" if max(init_seed, level_seed) < 10 else f"{init_seed}-{level_seed}"


@dataclass(frozen=True)
class Suite:
    name: str
    path: Path
    preset: str
    tasks: dict[str, envs.Task]  # "super", the sub-tasks, the analysis tasks
    sub_tasks: tuple[str, ...]
    analysis_tasks: tuple[str, ...]
    seeds: dict[str, tuple[tuple[int, int], ...]]
    training: Training
    ppo: PPOConfig
    evaluation: EvalProtocol
    merge: MergePlan
    reference: dict[str, Any]  # the thesis's published figures, by leaderboard row

    @property
    def checkpoint_every(self) -> int:
        return self.training.checkpoint_every or max(self.training.total_steps // 20, self.ppo.rollout_size)

    def grid(self) -> list[TrainingJob]:
        """Every training run: the first ``seeds_per_task`` pairs of each trained task."""
        n = self.training.seeds_per_task
        return [TrainingJob(key, self.tasks[key], i, l) for key in (SUPER, *self.sub_tasks)
                for i, l in self.seeds[key][:n]]

    def merge_pairs(self) -> list[tuple[str, TrainingJob, TrainingJob]]:
        """``(round, first sub-task's job, second's)`` for every pair of the plan whose two
        models the grid trains (``quick`` trains fewer seeds than the thesis, so fewer pairs)."""
        trained = {(j.task_key, j.seed_name): j for j in self.grid()}
        first, second = self.sub_tasks
        out = []
        for name, pairs in self.merge.rounds.items():
            available = [(a, b) for a, b in pairs if (first, a) in trained and (second, b) in trained]
            out += [(name, trained[first, a], trained[second, b]) for a, b in available[:self.merge.pairs_per_round]]
        return out


def _task(value, where: str, key: str) -> envs.Task:
    """A suite task: a task name, or ``{base: NAME, overrides: {...}}``."""
    try:
        if isinstance(value, str):
            return envs.get_task(value)
        entry = mapping(value, where)
        check_keys(entry, ("base", "overrides"), f"{where} (a task is a name or {{base: NAME, overrides: {{...}}}})",
                   required=("base",))
        base = envs.get_task(entry["base"])
        return envs.Task(f"{base.name}+{key}", base.config.with_overrides(entry.get("overrides") or {}, source=where))
    except ConfigError as e:
        raise ConfigError(str(e) if str(e).startswith(where) else f"{where}: {e}") from None


def _seeds(data, where: str, trained: tuple[str, ...]) -> dict[str, tuple[tuple[int, int], ...]]:
    seeds_in = mapping(data, where)
    if set(seeds_in) != set(trained):
        raise ConfigError(f"{where} must list seed pairs for exactly {list(trained)}, got {sorted(seeds_in)}")
    seed = Option("int", lo=0, hi=2**31 - 1)
    seeds = {}
    for key in trained:
        pairs = seeds_in[key]
        if not isinstance(pairs, list) or not pairs:
            raise ConfigError(f"{join(where, key)} must be a non-empty list of [init_seed, level_seed]")
        for i, pair in enumerate(pairs):
            if not isinstance(pair, list) or len(pair) != 2:
                raise ConfigError(f"{join(join(where, key), i)} must be [init_seed, level_seed], got {pair!r}")
            for j in (0, 1):
                check_value(pair[j], seed, join(join(join(where, key), i), j))
        seeds[key] = tuple(tuple(p) for p in pairs)
    return seeds


def _reference_rows(tasks, trained, sub_tasks, analysis_tasks, merge: MergePlan) -> set[str]:
    """The keys a suite's ``reference`` may give the thesis's figures for: leaderboard rows,
    ``own/<task>``, ``cross/<trained on>-><task>`` (and ``length/cross/…``), and
    ``length/<analysis task>/<row>``."""
    merges = {f"{r}/{m.row_id}" for r in merge.rounds for m in merge.methods}
    cross = {f"cross/{a}->{t}" for a in (*trained, "random") for t in tasks}
    analysis_rows = {"upper_bound", "random", *(f"{t} models" for t in sub_tasks), *merges}
    return {"upper_bound", "random", *(f"own/{t}" for t in trained), *(f"on_super/{t}" for t in sub_tasks), *merges,
            *cross, *(f"length/{c}" for c in cross), *(f"length/{t}/{r}" for t in analysis_tasks for r in analysis_rows)}


def _reference(data, where: str, rows: set[str]) -> dict[str, Any]:
    """The thesis's figures: every key must name a leaderboard or own-task row of the suite."""
    reference = mapping(data or {}, where)
    unknown = sorted(set(reference) - rows)
    if unknown:
        raise ConfigError(f"{where}: unknown row(s) {unknown}; this suite's rows: {sorted(rows)}")
    number = Option("float")
    return {k: check_value(v, number, join(where, k)) for k, v in reference.items()}


def load_suite(name_or_path: str | Path, preset: str) -> Suite:
    """The suite in ``name_or_path`` (a built-in name or a file) at ``preset``, validated."""
    path = suite_path(name_or_path)
    data = with_preset(read_suite_file(path), preset, path, renamed=OLD_PRESET_KEYS)
    where = f"{path}: "
    check_keys(data, SUITE_KEYS, str(path), REQUIRED_KEYS)
    name = check_value(data["name"], Option("str"), where + "name")

    tasks = {SUPER: _task(data["super_task"], where + "super_task", SUPER)}
    groups = {}
    for group in ("sub_tasks", "analysis_tasks"):
        entries = mapping(data.get(group) or {}, where + group)
        for key, value in entries.items():
            if key == SUPER or key in tasks:
                raise ConfigError(f"{where}{group}.{key}: task key {key!r} is already used")
            tasks[key] = _task(value, f"{where}{group}.{key}", key)
        groups[group] = tuple(entries)
    if len(groups["sub_tasks"]) != 2:
        raise ConfigError(f"{where}sub_tasks needs exactly two sub-tasks (the merged pair), "
                          f"got {list(groups['sub_tasks'])}")
    for key, task in tasks.items():
        if task.game != tasks[SUPER].game:
            raise ConfigError(f"{path}: task {key!r} is a {task.game} task, the super-task is {tasks[SUPER].game}")

    trained = (SUPER, *groups["sub_tasks"])
    seeds = _seeds(data["seeds"], where + "seeds", trained)
    seed_names = {key: [seed_name(i, l) for i, l in seeds[key]] for key in groups["sub_tasks"]}
    merge = parse_merge_plan(data["merge"], where + "merge", seed_names)
    rows = _reference_rows(tuple(tasks), trained, groups["sub_tasks"], groups["analysis_tasks"], merge)
    return Suite(name=name, path=path, preset=preset, tasks=tasks, sub_tasks=groups["sub_tasks"],
                 analysis_tasks=groups["analysis_tasks"], seeds=seeds,
                 training=Training.from_mapping(mapping(data["training"], where + "training"), where + "training"),
                 ppo=PPOConfig.from_mapping(data.get("ppo") or {}, where + "ppo"),
                 evaluation=EvalProtocol.from_mapping(mapping(data["evaluation"], where + "evaluation"),
                                                      where + "evaluation"),
                 merge=merge, reference=_reference(data.get("reference"), where + "reference", rows))
