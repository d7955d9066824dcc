"""Suites: a benchmark file (``benchmarks/*.yaml``) as validated data.

A suite names a super-task and its sub-tasks, the (weight-init seed, level seed) pairs to
train per task, PPO hyperparameters, the evaluation protocol and presets that scale it
(``smoke`` for tests, ``quick`` for a CPU, ``paper`` for the thesis's scale). Every error
names the file and the key, and says what is allowed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

import envs
from crl_merge.evaluate import ACTION_MODES
from crl_merge.merge_plan import MergePlan, parse_merge_plan
from crl_merge.train.config import PPOConfig
from envs.config import ConfigError

BENCHMARKS_DIR = Path(__file__).resolve().parent.parent / "benchmarks"
SUPER = "super"  # the key of the super-task in a suite's task table
SUITE_KEYS = {"name", "super_task", "sub_tasks", "analysis_tasks", "seeds", "ppo", "evaluation", "presets", "merge",
              "reference"}
REQUIRED_KEYS = {"name", "super_task", "sub_tasks", "seeds", "evaluation", "presets"}
PRESET_NAMES = ("smoke", "quick", "paper")


@dataclass(frozen=True)
class EvalProtocol:
    episodes: int = 5000             # each model on its own task
    cross_episodes: int = 1000        # each model on every other task of its suite
    level_seed: int = envs.EVAL_SEED
    actions: str = "stochastic"
    num_envs: int = 64


@dataclass(frozen=True)
class Preset:
    name: str
    total_steps: int
    seeds_per_task: int
    checkpoint_every: int
    ppo: PPOConfig
    evaluation: EvalProtocol
    merge_states: int | None  # overrides the merge plan's rollout states
    pairs_per_round: int | None  # merge only the first pairs of each round that the grid allows


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
    tasks: dict[str, envs.Task]  # "super", the sub-tasks, the analysis tasks
    sub_tasks: tuple[str, ...]
    analysis_tasks: tuple[str, ...]
    seeds: dict[str, tuple[tuple[int, int], ...]]
    ppo: PPOConfig
    evaluation: EvalProtocol
    presets: dict[str, Preset]
    merge: MergePlan
    reference: dict[str, Any]  # the thesis's published figures, by leaderboard row

    def preset(self, name: str) -> Preset:
        if name not in self.presets:
            raise ConfigError(f"{self.path}: no preset {name!r}; presets: {sorted(self.presets)}")
        return self.presets[name]

    def grid(self, preset: str) -> list[TrainingJob]:
        """Every training run of the preset: the first ``seeds_per_task`` pairs of each task."""
        n = self.preset(preset).seeds_per_task
        return [TrainingJob(key, self.tasks[key], i, l) for key in (SUPER, *self.sub_tasks)
                for i, l in self.seeds[key][:n]]

    def merge_pairs(self, preset: str) -> list[tuple[str, TrainingJob, TrainingJob]]:
        """``(round, first sub-task's job, second's)`` for every pair of the plan whose two
        models the preset trains (``quick`` trains fewer seeds than the thesis, so fewer pairs)."""
        trained = {(j.task_key, j.seed_name): j for j in self.grid(preset)}
        first, second = self.sub_tasks
        limit = self.preset(preset).pairs_per_round
        out = []
        for name, pairs in self.merge.rounds.items():
            available = [(a, b) for a, b in pairs if (first, a) in trained and (second, b) in trained]
            out += [(name, trained[first, a], trained[second, b]) for a, b in available[:limit]]
        return out

    def merge_states(self, preset: str) -> int:
        return self.preset(preset).merge_states or self.merge.states


def _where(path, *keys) -> str:
    return f"{path}: {'.'.join(map(str, keys))}"


def _mapping(value, where: str) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a mapping, got {value!r}")
    return value


def _int(value, where: str, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi is not None and value > hi):
        allowed = f"an integer ≥ {lo}" if hi is None else f"an integer in [{lo}, {hi}]"
        raise ConfigError(f"{where} must be {allowed}, got {value!r}")
    return value


def _task(value, where: str, key: str) -> envs.Task:
    """A suite task: a task name, or ``{base: NAME, overrides: {...}}``."""
    if isinstance(value, str):
        return envs.get_task(value)
    entry = _mapping(value, where)
    unknown = sorted(set(entry) - {"base", "overrides"})
    if unknown or "base" not in entry:
        raise ConfigError(f"{where}: a task is a name or {{base: NAME, overrides: {{...}}}}; "
                          f"got keys {sorted(entry)}")
    base = envs.get_task(entry["base"])
    config = base.config.with_overrides(entry.get("overrides") or {}, source=where)
    return envs.Task(f"{base.name}+{key}", config)


def _evaluation(values: dict, where: str, base: EvalProtocol) -> EvalProtocol:
    fields = {f.name for f in dataclasses.fields(EvalProtocol)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(fields)}")
    checked = {}
    for key, value in values.items():
        if key == "actions":
            if value not in ACTION_MODES:
                raise ConfigError(f"{where}.actions must be one of {list(ACTION_MODES)}, got {value!r}")
            checked[key] = value
        else:
            checked[key] = _int(value, f"{where}.{key}", 0 if key == "level_seed" else 1)
    return dataclasses.replace(base, **checked)


def _preset(name: str, values: dict, suite_ppo: PPOConfig, suite_eval: EvalProtocol, where: str) -> Preset:
    eval_keys = {f.name for f in dataclasses.fields(EvalProtocol)}
    allowed = {"total_steps", "seeds_per_task", "checkpoint_every", "ppo", "merge_states", "pairs_per_round"} | eval_keys
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(allowed)}")
    if "total_steps" not in values:
        raise ConfigError(f"{where}: total_steps is required")
    total = _int(values["total_steps"], f"{where}.total_steps", 1)
    ppo = PPOConfig.from_mapping(values.get("ppo", {}), f"{where}.ppo", base=suite_ppo)
    return Preset(name=name, total_steps=total,
                  seeds_per_task=_int(values.get("seeds_per_task", 5), f"{where}.seeds_per_task", 1),
                  checkpoint_every=_int(values.get("checkpoint_every", max(total // 20, ppo.rollout_size)),
                                        f"{where}.checkpoint_every", 1),
                  ppo=ppo, evaluation=_evaluation({k: v for k, v in values.items() if k in eval_keys}, where, suite_eval),
                  merge_states=_int(values["merge_states"], f"{where}.merge_states", 1) if "merge_states" in values
                  else None,
                  pairs_per_round=_int(values["pairs_per_round"], f"{where}.pairs_per_round", 1)
                  if "pairs_per_round" in values else None)


def suite_path(name_or_path: str | Path) -> Path:
    """``"starpilot"`` → ``benchmarks/starpilot.yaml``; a path to a YAML file is used as is."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise ConfigError(f"suite file {path} does not exist")
        return path
    candidate = BENCHMARKS_DIR / f"{name_or_path}.yaml"
    if not candidate.is_file():
        known = sorted(p.stem for p in BENCHMARKS_DIR.glob("*.yaml")) if BENCHMARKS_DIR.is_dir() else []
        raise ConfigError(f"unknown suite {str(name_or_path)!r}; built-in suites: {known}, or give a path to a .yaml file")
    return candidate


def load_suite(name_or_path: str | Path) -> Suite:
    path = suite_path(name_or_path)
    with open(path) as f:
        data = yaml.safe_load(f)
    _mapping(data, f"{path}: the top level")
    unknown = sorted(set(data) - SUITE_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {unknown}; valid keys: {sorted(SUITE_KEYS)}")
    missing = sorted(REQUIRED_KEYS - set(data))
    if missing:
        raise ConfigError(f"{path}: missing key(s) {missing}")
    if not isinstance(data["name"], str) or not data["name"]:
        raise ConfigError(f"{_where(path, 'name')} must be a non-empty string")

    tasks = {SUPER: _task(data["super_task"], _where(path, "super_task"), SUPER)}
    groups = {}
    for group in ("sub_tasks", "analysis_tasks"):
        entries = _mapping(data.get(group) or {}, _where(path, group))
        for key, value in entries.items():
            if key == SUPER or key in tasks:
                raise ConfigError(f"{_where(path, group, key)}: task key {key!r} is already used")
            tasks[key] = _task(value, _where(path, group, key), key)
        groups[group] = tuple(entries)
    if len(groups["sub_tasks"]) != 2:
        raise ConfigError(f"{_where(path, 'sub_tasks')} needs exactly two sub-tasks (the merged pair), "
                          f"got {list(groups['sub_tasks'])}")
    for key, task in tasks.items():
        if task.game != tasks[SUPER].game:
            raise ConfigError(f"{path}: task {key!r} is a {task.game} task, the super-task is {tasks[SUPER].game}")

    seeds_in = _mapping(data["seeds"], _where(path, "seeds"))
    trained = (SUPER, *groups["sub_tasks"])
    if set(seeds_in) != set(trained):
        raise ConfigError(f"{_where(path, 'seeds')} must list seed pairs for exactly {list(trained)}, got {sorted(seeds_in)}")
    seeds = {}
    for key in trained:
        pairs = seeds_in[key]
        if not isinstance(pairs, list) or not pairs:
            raise ConfigError(f"{_where(path, 'seeds', key)} must be a non-empty list of [init_seed, level_seed]")
        for i, pair in enumerate(pairs):
            if not isinstance(pair, list) or len(pair) != 2:
                raise ConfigError(f"{_where(path, 'seeds', key, i)} must be [init_seed, level_seed], got {pair!r}")
            for j in (0, 1):
                _int(pair[j], _where(path, "seeds", key, i, j), 0, 2**31 - 1)
        seeds[key] = tuple(tuple(p) for p in pairs)

    ppo = PPOConfig.from_mapping(data.get("ppo") or {}, _where(path, "ppo"))
    evaluation = _evaluation(_mapping(data["evaluation"], _where(path, "evaluation")), _where(path, "evaluation"),
                             EvalProtocol())
    presets_in = _mapping(data["presets"], _where(path, "presets"))
    unknown = sorted(set(presets_in) - set(PRESET_NAMES))
    if unknown:
        raise ConfigError(f"{_where(path, 'presets')}: unknown preset(s) {unknown}; valid presets: {list(PRESET_NAMES)}")
    presets = {name: _preset(name, _mapping(values, _where(path, "presets", name)), ppo, evaluation,
                             _where(path, "presets", name))
               for name, values in presets_in.items()}
    seed_names = {key: [seed_name(i, l) for i, l in seeds[key]] for key in groups["sub_tasks"]}
    merge = parse_merge_plan(data.get("merge"), _where(path, "merge"), seed_names)
    reference = _mapping(data.get("reference") or {}, _where(path, "reference"))
    return Suite(name=data["name"], path=path, tasks=tasks, sub_tasks=groups["sub_tasks"],
                 analysis_tasks=groups["analysis_tasks"], seeds=seeds, ppo=ppo, evaluation=evaluation,
                 presets=presets, merge=merge, reference=reference)
