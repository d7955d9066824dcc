"""The behaviour policies' actors, rebuilt from stable-baselines3 as small standalone modules
so committed weights act without SB3:

- ``SquashedGaussianActor``: SAC's actor (MLP → tanh-squashed Gaussian), acting by sampling
  as D4RL's ``collect_data.py`` did;
- ``NoisyDeterministicActor``: TD3's actor (MLP → tanh), acting as TD3 explores, with
  Gaussian noise of a fixed scale added in the [-1, 1] action space and clipped there (SB3's
  ``NormalActionNoise`` on a bounded space).

Only what acting needs is kept: the MLP, the heads, the action bounds and the noise scale.
Neither algorithm here normalises observations, so there is nothing else to store. Both
have ``act(obs, deterministic, generator)``, and the sidecar's ``actor.kind`` says which one
a file holds (absent in files written before TD3 existed: SAC).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from crl_merge.checkpoint import load_checkpoint, save_checkpoint

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0  # SB3's clamp for SAC


def _mlp(width: int, hidden: tuple[int, ...]) -> tuple[nn.Sequential, int]:
    layers = []
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    return nn.Sequential(*layers), width


def _bounds(act_dim: int, low, high) -> tuple[torch.Tensor, torch.Tensor]:
    low = torch.tensor(np.broadcast_to(low, (act_dim,)), dtype=torch.float32)
    high = torch.tensor(np.broadcast_to(high, (act_dim,)), dtype=torch.float32)
    return low.clone(), high.clone()


class SquashedGaussianActor(nn.Module):
    kind = "squashed_gaussian"

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...] = (256, 256),
                 action_low: float | list[float] = -1.0, action_high: float | list[float] = 1.0):
        super().__init__()
        self.latent_pi, width = _mlp(obs_dim, tuple(hidden))
        self.mu = nn.Linear(width, act_dim)
        self.log_std = nn.Linear(width, act_dim)
        self.hidden = tuple(hidden)
        low, high = _bounds(act_dim, action_low, action_high)
        self.register_buffer("action_low", low)
        self.register_buffer("action_high", high)

    @property
    def obs_dim(self) -> int:
        return self.latent_pi[0].in_features

    @property
    def act_dim(self) -> int:
        return self.mu.out_features

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = False,
            generator: torch.Generator | None = None) -> torch.Tensor:
        """Actions in the environment's bounds for a batch of observations ``[N, obs_dim]``:
        tanh of the Gaussian mean (deterministic) or of a sample from it, as SAC acts."""
        latent = self.latent_pi(obs)
        mean = self.mu(latent)
        if deterministic:
            pre_tanh = mean
        else:
            std = self.log_std(latent).clamp(LOG_STD_MIN, LOG_STD_MAX).exp()
            noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
            pre_tanh = mean + std * noise
        unit = torch.tanh(pre_tanh)
        return self.action_low + (unit + 1.0) * 0.5 * (self.action_high - self.action_low)

    @classmethod
    def from_sb3(cls, sb3_actor, action_space) -> "SquashedGaussianActor":
        """A copy of a stable-baselines3 SAC actor's weights."""
        linears = [m for m in sb3_actor.latent_pi if isinstance(m, nn.Linear)]
        actor = cls(linears[0].in_features, sb3_actor.mu.out_features, tuple(m.out_features for m in linears),
                    action_space.low.tolist(), action_space.high.tolist())
        own = actor.state_dict()
        own.update({k: v.detach().cpu().clone() for k, v in sb3_actor.state_dict().items() if k in own})
        actor.load_state_dict(own)
        return actor.eval()

    def shape(self) -> dict:
        return {"obs_dim": self.obs_dim, "act_dim": self.act_dim, "hidden": list(self.hidden)}


class NoisyDeterministicActor(nn.Module):
    """TD3's deterministic actor, acting with ``noise`` × N(0, 1) added to its [-1, 1] action
    and clipped there, as TD3 collects its own data; ``deterministic`` drops the noise."""

    kind = "noisy_deterministic"

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...] = (256, 256), noise: float = 0.1,
                 action_low: float | list[float] = -1.0, action_high: float | list[float] = 1.0):
        super().__init__()
        trunk, width = _mlp(obs_dim, tuple(hidden))
        self.mu = nn.Sequential(*trunk, nn.Linear(width, act_dim), nn.Tanh())
        self.hidden = tuple(hidden)
        self.noise = float(noise)
        low, high = _bounds(act_dim, action_low, action_high)
        self.register_buffer("action_low", low)
        self.register_buffer("action_high", high)

    @property
    def obs_dim(self) -> int:
        return self.mu[0].in_features

    @property
    def act_dim(self) -> int:
        return self.mu[-2].out_features

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = False,
            generator: torch.Generator | None = None) -> torch.Tensor:
        unit = self.mu(obs)
        if not deterministic:
            noise = torch.randn(unit.shape, generator=generator, dtype=unit.dtype, device=unit.device)
            unit = (unit + self.noise * noise).clamp(-1.0, 1.0)
        return self.action_low + (unit + 1.0) * 0.5 * (self.action_high - self.action_low)

    @classmethod
    def from_sb3(cls, sb3_actor, action_space, noise: float) -> "NoisyDeterministicActor":
        """A copy of a stable-baselines3 TD3 actor's weights, acting with exploration ``noise``."""
        linears = [m for m in sb3_actor.mu if isinstance(m, nn.Linear)]
        actor = cls(linears[0].in_features, linears[-1].out_features, tuple(m.out_features for m in linears[:-1]),
                    noise, action_space.low.tolist(), action_space.high.tolist())
        own = actor.state_dict()
        own.update({k: v.detach().cpu().clone() for k, v in sb3_actor.state_dict().items() if k in own})
        actor.load_state_dict(own)
        return actor.eval()

    def shape(self) -> dict:
        return {"obs_dim": self.obs_dim, "act_dim": self.act_dim, "hidden": list(self.hidden), "noise": self.noise}


BehaviourActor = SquashedGaussianActor | NoisyDeterministicActor
ACTOR_KINDS = {cls.kind: cls for cls in (SquashedGaussianActor, NoisyDeterministicActor)}


def save_actor(path: str | Path, actor: BehaviourActor, **meta) -> Path:
    """``<path>.safetensors`` + ``<path>.json`` (kind, shape, bounds and ``meta`` in the sidecar)."""
    return save_checkpoint(path, actor.state_dict(), {"actor": {"kind": actor.kind, **actor.shape()}, **meta})


def load_actor(path: str | Path) -> tuple[BehaviourActor, dict]:
    tensors, meta = load_checkpoint(path)
    shape = dict(meta["actor"])
    kind = shape.pop("kind", SquashedGaussianActor.kind)
    if kind not in ACTOR_KINDS:
        raise ValueError(f"{path}: unknown actor kind {kind!r}; valid: {', '.join(ACTOR_KINDS)}")
    hidden = tuple(shape.pop("hidden"))
    actor = ACTOR_KINDS[kind](shape.pop("obs_dim"), shape.pop("act_dim"), hidden, **shape,
                              action_low=tensors["action_low"].tolist(), action_high=tensors["action_high"].tolist())
    actor.load_state_dict(tensors)
    return actor.eval(), meta
