"""The Decision Transformer suite (``benchmarks/mujoco_dt.yaml``) at one preset, as validated data.

The file holds the paper's settings at the top level and presets that override any of
them key by key (:mod:`crl_merge.suite_files`); the merged settings are checked against
:data:`SCHEMA` (:mod:`envs.schema`). Every error names the file, the key (dotted) and what
is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from crl_merge.dt.train import TrainConfig
from crl_merge.models import DTConfig
from crl_merge.models.decision_transformer import EMBED_LN_ORDERS, INITS as WEIGHT_INITS
from crl_merge.suite_files import project_path, read_suite_file, suite_path, with_preset
from envs.mujoco.tasks import DATASET_KINDS, TASKS
from envs.schema import ConfigError, Option, validate

INITS = ("independent", "shared_seed", "cotrained")
FISHER_ESTIMATORS = ("mse_batches", "sampled_gaussian")
COTRAINED_FINETUNES = ("anchored", "free")
TRAIN_KEYS = tuple(TrainConfig.keys())


_INT, _NUM, _STR = Option("int"), Option("float"), Option("str")
_ENVS = Option("list", choices=tuple(TASKS))
_KIND = Option("str", choices=DATASET_KINDS)
_FRACTION = Option("float", lo=0.0, hi=1.0)
_TRAIN = TrainConfig.options()
SCHEMA = {
    "name": _STR,
    "envs": _ENVS,
    "datasets": {"policies": _STR, "root": _STR, "rows": Option("int", lo=1), "seed": _INT},
    "model": {"n_layer": Option("int", lo=1), "n_head": Option("int", lo=1), "n_embd": Option("int", lo=1),
              "context": Option("int", lo=1), "dropout": _FRACTION,
              "activation": Option("str", choices=("relu", "gelu")), "max_ep_len": Option("int", lo=1),
              "embed_ln": Option("str", choices=EMBED_LN_ORDERS), "init": Option("str", choices=WEIGHT_INITS)},
    "train": {**_TRAIN, "reward_scale": _NUM},
    "finetune": {k: Option(o.kind, o.doc, o.lo, o.hi, required=False) for k, o in _TRAIN.items()},
    "evaluation": {"episodes": Option("int", lo=1), "sweep_episodes": Option("int", lo=1), "target": Option("int", lo=0),
                   "seed": _INT, "max_episode_steps": Option("int", lo=1)},
    "seeds": {"init": Option("list", item=_INT), "shared_init": _INT},
    "experiments": {
        "single_layer": {"dataset": _KIND, "p": Option("list", item=_FRACTION)},
        "incremental": {"dataset": _KIND, "p": _FRACTION, "pairs": Option("list", item=Option("list", item=_STR))},
        "attention_interpolation": {"dataset": _KIND, "lambdas": Option("list", item=_FRACTION)},
        "attention_perturbation": {"datasets": Option("list", item=_KIND), "seed": _INT},
        "merge_freeze_finetune": {"dataset": _KIND, "pair": Option("list", item=_STR)},
        "multitask": {"dataset": _KIND, "inits": Option("list", item=Option("str", choices=INITS)),
                      "fisher": Option("str", choices=FISHER_ESTIMATORS), "fisher_windows": Option("int", lo=1),
                      "fisher_batch_size": Option("int", lo=1), "fisher_normalise": Option("bool"),
                      "cotrained_finetune": Option("str", choices=COTRAINED_FINETUNES), "init_reg": Option("float", lo=0.0)},
    },
}
EXPERIMENTS = tuple(SCHEMA["experiments"])


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

    def experiment_datasets(self, name: str) -> set[tuple[str, str]]:
        """(env, dataset kind) pairs experiment ``name`` trains on."""
        exp = self.experiment(name)
        kinds = exp["datasets"] if "datasets" in exp else [exp["dataset"]]
        return {(env, kind) for env in self.envs for kind in kinds}

    def datasets_needed(self) -> set[tuple[str, str]]:
        """(env, dataset kind) pairs the experiments train on."""
        return set().union(*(self.experiment_datasets(name) for name in EXPERIMENTS))


def _check_values(cfg: dict, file: Path) -> None:
    """The rules that relate one key to another."""
    envs = cfg["envs"]
    if len(set(envs)) != len(envs) or len(envs) < 2:
        raise ConfigError(f"{file}: envs must name at least two different tasks, got {list(envs)}")
    if len(cfg["seeds"]["init"]) != len(envs):
        raise ConfigError(f"{file}: seeds.init needs one seed per env ({len(envs)}), got {list(cfg['seeds']['init'])}")
    exp = cfg["experiments"]
    for i, pair in enumerate(exp["incremental"]["pairs"]):
        where = f"experiments.incremental.pairs[{i}]"
        if len(pair) != 2 or pair[0] == pair[1] or set(pair) - set(envs):
            raise ConfigError(f"{file}: {where} must be [source, target], two different envs of {list(envs)}, "
                              f"got {list(pair)}")
    pair = exp["merge_freeze_finetune"]["pair"]
    if len(pair) != 2 or pair[0] == pair[1] or set(pair) - set(envs):
        raise ConfigError(f"{file}: experiments.merge_freeze_finetune.pair must be two different envs of "
                          f"{list(envs)}, got {list(pair)}")
    targets = min(len(TASKS[e].dt_target_returns) for e in envs)
    if cfg["evaluation"]["target"] >= targets:
        raise ConfigError(f"{file}: evaluation.target is {cfg['evaluation']['target']}; allowed: {list(range(targets))}")
    try:
        DTConfig(envs={}, **cfg["model"])
    except ValueError as e:
        raise ConfigError(f"{file}: model: {e}") from None


def _lists(value):
    """Validated lists come back as tuples; the suite's settings keep YAML's lists."""
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    return [_lists(v) for v in value] if isinstance(value, tuple) else value


def load_suite(name_or_path: str | Path, preset: str) -> Suite:
    """The suite in ``name_or_path`` (a path, or a built-in suite name) with ``preset``'s
    overrides applied, validated."""
    path = suite_path(name_or_path)
    data = read_suite_file(path)
    validate({k: v for k, v in data.items() if k != "presets"}, SCHEMA, f"{path}: ")  # even what a preset replaces
    config = _lists(validate(with_preset(data, preset, path), SCHEMA, f"{path} (preset {preset}): "))
    _check_values(config, path)
    if config["datasets"]["policies"].rstrip("/") == "envs/mujoco/policies":
        raise ConfigError(f"{path}: datasets.policies: the committed behaviour policies moved from envs/mujoco/policies "
                          "to crl_merge/dt/policies; change the key to that")
    config["datasets"]["policies"] = str(project_path(config["datasets"]["policies"]))
    return Suite(path, preset, config)
