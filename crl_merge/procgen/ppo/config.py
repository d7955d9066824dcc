"""PPO hyperparameters: the thesis's (table 4.1, protocols A) as defaults, validated."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from envs.schema import Config, ConfigError, option

TRAINERS = ("fast", "sb3")


@dataclass(frozen=True)
class PPOConfig(Config):
    """stable-baselines3's PPO semantics; Adam with β 0.9/0.999, no weight decay, ε 1e-5 (SB3's)."""

    learning_rate: float = option(5e-4, "float", "Adam step size (constant)", 0.0, 1.0)
    gamma: float = option(0.999, "float", "discount", 0.0, 1.0)
    gae_lambda: float = option(0.95, "float", "GAE λ", 0.0, 1.0)
    n_envs: int = option(64, "int", "environments stepped together", 1, 1 << 20)
    n_steps: int = option(256, "int", "steps per environment per rollout", 1, 1 << 20)
    n_epochs: int = option(3, "int", "passes over each rollout", 1, 1000)
    batch_size: int = option(2048, "int", "minibatch size", 2, 1 << 30)
    clip_range: float = option(0.2, "float", "PPO ratio clip", 0.0, 10.0)
    ent_coef: float = option(0.01, "float", "entropy bonus weight", 0.0, 10.0)
    vf_coef: float = option(0.5, "float", "value loss weight", 0.0, 100.0)
    max_grad_norm: float = option(0.5, "float", "global gradient-norm clip", 0.0, 1e6)
    normalize_advantage: bool = option(True, "bool", "normalise advantages per minibatch")
    adam_eps: float = option(1e-5, "float", "Adam ε", 0.0, 1.0)

    @property
    def rollout_size(self) -> int:
        return self.n_envs * self.n_steps

    def steps_trained(self, total_steps: int) -> int:
        """What training for ``total_steps`` trains: whole rollouts, so rounded up."""
        return -(-total_steps // self.rollout_size) * self.rollout_size

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], where: str, base: "PPOConfig | None" = None) -> "PPOConfig":
        """``base`` (default: the thesis's values) with ``values`` applied; errors name ``where``
        and the key, and list the valid keys or the allowed range."""
        config = super().from_mapping(values, where, base)
        if config.batch_size > config.rollout_size:
            raise ConfigError(f"{where}: batch_size {config.batch_size} exceeds n_envs × n_steps = {config.rollout_size}")
        return config
