"""PPO hyperparameters: the thesis's (table 4.1, protocols A) as defaults, validated."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from envs.config import ConfigError

TRAINERS = ("fast", "sb3")


@dataclass(frozen=True)
class PPOConfig:
    """stable-baselines3's PPO semantics; Adam with β 0.9/0.999, no weight decay, ε 1e-5 (SB3's)."""

    learning_rate: float = 5e-4
    gamma: float = 0.999
    gae_lambda: float = 0.95
    n_envs: int = 64
    n_steps: int = 256
    n_epochs: int = 3
    batch_size: int = 2048
    clip_range: float = 0.2
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    normalize_advantage: bool = True
    adam_eps: float = 1e-5

    _RANGES = {  # name: (type, low, high), inclusive
        "learning_rate": (float, 0.0, 1.0), "gamma": (float, 0.0, 1.0), "gae_lambda": (float, 0.0, 1.0),
        "n_envs": (int, 1, 1 << 20), "n_steps": (int, 1, 1 << 20), "n_epochs": (int, 1, 1000),
        "batch_size": (int, 2, 1 << 30), "clip_range": (float, 0.0, 10.0), "ent_coef": (float, 0.0, 10.0),
        "vf_coef": (float, 0.0, 100.0), "max_grad_norm": (float, 0.0, 1e6), "normalize_advantage": (bool, None, None),
        "adam_eps": (float, 0.0, 1.0),
    }

    @property
    def rollout_size(self) -> int:
        return self.n_envs * self.n_steps

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], where: str, base: "PPOConfig | None" = None) -> "PPOConfig":
        """``base`` (default: the thesis's values) with ``values`` applied; errors name ``where``
        and the key, and list the valid keys or the allowed range."""
        if not isinstance(values, Mapping):
            raise ConfigError(f"{where}: must be a mapping of PPO hyperparameters, got {values!r}")
        unknown = sorted(set(values) - set(cls._RANGES))
        if unknown:
            raise ConfigError(f"{where}: unknown PPO key(s) {unknown}; valid keys: {sorted(cls._RANGES)}")
        checked = {}
        for key, value in values.items():
            kind, lo, hi = cls._RANGES[key]
            if kind is bool:
                ok = isinstance(value, bool)
            elif kind is int:
                ok = isinstance(value, int) and not isinstance(value, bool)
            else:
                ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not ok:
                raise ConfigError(f"{where}.{key} must be {'true/false' if kind is bool else kind.__name__}, got {value!r}")
            if lo is not None and not lo <= value <= hi:
                raise ConfigError(f"{where}.{key} = {value!r} is out of range: allowed {lo} ≤ value ≤ {hi}")
            checked[key] = kind(value)
        config = dataclasses.replace(base or cls(), **checked)
        if config.batch_size > config.rollout_size:
            raise ConfigError(f"{where}: batch_size {config.batch_size} exceeds n_envs × n_steps = {config.rollout_size}")
        return config

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
