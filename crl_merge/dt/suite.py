"""The Decision Transformer suite (``benchmarks/mujoco_dt.yaml``) as validated data.

The file holds the paper's settings at the top level and presets that override any of
them (nested mappings merge key by key). Every error names the file, the key (dotted) and
what is allowed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from crl_merge.dt.train import TrainConfig
from crl_merge.models import DTConfig
from envs.mujoco.tasks import DATASET_KINDS, TASKS

PRESETS = ("smoke", "quick", "paper")
INITS = ("independent", "shared_seed", "cotrained")
TRAIN_KEYS = ("steps", "batch_size", "learning_rate", "weight_decay", "warmup_steps", "grad_clip", "checkpoint_every")

# key → allowed type(s) or nested schema; "*" marks a list of that type
SCHEMA: dict[str, Any] = {
    "name": str,
    "envs": [str],
    "datasets": {"policies": str, "root": str, "rows": int, "seed": int},
    "model": {"n_layer": int, "n_head": int, "n_embd": int, "context": int, "dropout": float, "activation": str,
              "max_ep_len": int},
    "train": {**{k: (float if k in ("learning_rate", "weight_decay", "grad_clip") else int) for k in TRAIN_KEYS},
              "reward_scale": float},
    "finetune": {k: (float if k in ("learning_rate", "weight_decay", "grad_clip") else int) for k in TRAIN_KEYS},
    "evaluation": {"episodes": int, "sweep_episodes": int, "target": int, "seed": int, "max_episode_steps": int},
    "seeds": {"init": [int], "shared_init": int},
    "experiments": {
        "single_layer": {"dataset": str, "p": [float]},
        "incremental": {"dataset": str, "p": float, "pairs": [[str]]},
        "attention_interpolation": {"dataset": str, "lambdas": [float]},
        "attention_perturbation": {"datasets": [str], "seed": int},
        "merge_freeze_finetune": {"dataset": str, "pair": [str]},
        "multitask": {"dataset": str, "inits": [str], "fisher_windows": int},
    },
    "presets": dict,
}
EXPERIMENTS = tuple(SCHEMA["experiments"])
PARTIAL = {"finetune"}  # sections that only override some keys (finetune: of train)


class SuiteError(ValueError):
    """A suite file that does not describe a valid suite."""


@dataclass(frozen=True)
class Suite:
    path: Path
    preset: str
    config: dict  # the merged, validated settings

    @property
    def envs(self) -> list[str]:
        return list(self.config["envs"])

    def dt_config(self, envs: list[str]) -> DTConfig:
        return DTConfig(envs={e: (TASKS[e].state_dim, TASKS[e].act_dim) for e in envs}, **self.config["model"])

    def train_config(self, finetune: bool = False) -> TrainConfig:
        values = {k: v for k, v in self.config["train"].items() if k in TRAIN_KEYS}
        if finetune:
            values.update(self.config["finetune"])
        return TrainConfig(**values)

    def experiment(self, name: str) -> dict:
        return self.config["experiments"][name]

    def init_seed(self, env: str) -> int:
        return self.config["seeds"]["init"][self.envs.index(env)]

    def datasets_needed(self) -> set[tuple[str, str]]:
        """(env, dataset kind) pairs the experiments train on."""
        exp = self.config["experiments"]
        kinds = {exp[name]["dataset"] for name in EXPERIMENTS if "dataset" in exp[name]}
        kinds |= set(exp["attention_perturbation"]["datasets"])
        return {(env, kind) for env in self.envs for kind in kinds}


def _merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _check(value, schema, where: str, file: Path) -> None:
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            raise SuiteError(f"{file}: {where} must be a mapping, got {value!r}")
        unknown = sorted(set(value) - set(schema))
        if unknown:
            raise SuiteError(f"{file}: unknown key {where + '.' if where else ''}{unknown[0]}; "
                             f"allowed keys{' of ' + where if where else ''}: {sorted(schema)}")
        missing = sorted(set(schema) - set(value) - {"presets"})
        if missing and where not in PARTIAL:
            raise SuiteError(f"{file}: missing key {where + '.' if where else ''}{missing[0]}")
        for key, sub in schema.items():
            if key in value and sub is not dict:
                _check(value[key], sub, f"{where}.{key}" if where else key, file)
    elif isinstance(schema, list):
        if not isinstance(value, list) or not value:
            raise SuiteError(f"{file}: {where} must be a non-empty list, got {value!r}")
        for i, item in enumerate(value):
            _check(item, schema[0], f"{where}[{i}]", file)
    elif schema is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SuiteError(f"{file}: {where} must be a number, got {value!r}")
    elif schema is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SuiteError(f"{file}: {where} must be an integer, got {value!r}")
    elif not isinstance(value, schema):
        raise SuiteError(f"{file}: {where} must be a {schema.__name__}, got {value!r}")


def _one_of(value, allowed, where: str, file: Path) -> None:
    if value not in allowed:
        raise SuiteError(f"{file}: {where} is {value!r}; allowed: {list(allowed)}")


def _check_values(cfg: dict, file: Path) -> None:
    envs = cfg["envs"]
    for i, env in enumerate(envs):
        _one_of(env, TASKS, f"envs[{i}]", file)
    if len(set(envs)) != len(envs) or len(envs) < 2:
        raise SuiteError(f"{file}: envs must name at least two different tasks, got {envs}")
    if len(cfg["seeds"]["init"]) != len(envs):
        raise SuiteError(f"{file}: seeds.init needs one seed per env ({len(envs)}), got {cfg['seeds']['init']}")
    _one_of(cfg["model"]["activation"], ("relu", "gelu"), "model.activation", file)
    exp = cfg["experiments"]
    for name in EXPERIMENTS:
        if "dataset" in exp[name]:
            _one_of(exp[name]["dataset"], DATASET_KINDS, f"experiments.{name}.dataset", file)
    for i, kind in enumerate(exp["attention_perturbation"]["datasets"]):
        _one_of(kind, DATASET_KINDS, f"experiments.attention_perturbation.datasets[{i}]", file)
    for i, p in enumerate(exp["single_layer"]["p"]):
        if not 0.0 <= p <= 1.0:
            raise SuiteError(f"{file}: experiments.single_layer.p[{i}] is {p}; allowed: numbers in [0, 1]")
    for i, lam in enumerate(exp["attention_interpolation"]["lambdas"]):
        if not 0.0 <= lam <= 1.0:
            raise SuiteError(f"{file}: experiments.attention_interpolation.lambdas[{i}] is {lam}; allowed: [0, 1]")
    for i, pair in enumerate(exp["incremental"]["pairs"]):
        where = f"experiments.incremental.pairs[{i}]"
        if len(pair) != 2 or pair[0] == pair[1]:
            raise SuiteError(f"{file}: {where} must be [source, target] of two different envs, got {pair}")
        for env in pair:
            _one_of(env, envs, where, file)
    pair = exp["merge_freeze_finetune"]["pair"]
    if len(pair) != 2 or pair[0] == pair[1]:
        raise SuiteError(f"{file}: experiments.merge_freeze_finetune.pair must be two different envs, got {pair}")
    for env in pair:
        _one_of(env, envs, "experiments.merge_freeze_finetune.pair", file)
    for i, init in enumerate(exp["multitask"]["inits"]):
        _one_of(init, INITS, f"experiments.multitask.inits[{i}]", file)
    eval_cfg = cfg["evaluation"]
    for key in ("episodes", "sweep_episodes", "max_episode_steps"):
        if eval_cfg[key] < 1:
            raise SuiteError(f"{file}: evaluation.{key} must be ≥ 1, got {eval_cfg[key]}")
    targets = min(len(TASKS[e].dt_target_returns) for e in envs)
    _one_of(eval_cfg["target"], range(targets), "evaluation.target", file)
    for section in ("train", "finetune"):
        values = {k: v for k, v in cfg["train"].items() if k in TRAIN_KEYS}
        if section == "finetune":
            values.update(cfg["finetune"])
        try:
            TrainConfig(**values)
        except ValueError as e:
            raise SuiteError(f"{file}: {section}: {e}") from None


def load_suite(path: str | Path, preset: str) -> Suite:
    """The suite in ``path`` with ``preset``'s overrides applied, validated."""
    path = Path(path)
    if preset not in PRESETS:
        raise SuiteError(f"{path}: unknown preset {preset!r}; allowed: {list(PRESETS)}")
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise SuiteError(f"{path}: no such suite file") from None
    except yaml.YAMLError as e:
        raise SuiteError(f"{path}: not valid YAML ({e})") from None
    _check(raw, SCHEMA, "", path)
    presets = raw.get("presets") or {}
    if not isinstance(presets, dict):
        raise SuiteError(f"{path}: presets must be a mapping of {list(PRESETS)}")
    for name in presets:
        _one_of(name, PRESETS, "presets", path)
    if preset not in presets:
        raise SuiteError(f"{path}: preset {preset!r} is not defined; defined: {sorted(presets)}")
    base = {k: v for k, v in raw.items() if k != "presets"}
    merged = _merge(base, presets[preset] or {})
    _check(merged, {k: v for k, v in SCHEMA.items() if k != "presets"}, "", Path(f"{path} (preset {preset})"))
    _check_values(merged, path)
    return Suite(path, preset, merged)

