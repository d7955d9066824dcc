"""The behaviour policies' actor: stable-baselines3's SAC actor (MLP → tanh-squashed
Gaussian), rebuilt as a small standalone module so committed weights act without SB3.

Only what acting needs is kept: the MLP trunk, the mean and log-std heads, and the action
bounds. SAC here uses no observation normalisation, so there is none to store.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from crl_merge.checkpoint import load_checkpoint, save_checkpoint

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0  # SB3's clamp for SAC


class SquashedGaussianActor(nn.Module):
    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...] = (256, 256),
                 action_low: float | list[float] = -1.0, action_high: float | list[float] = 1.0):
        super().__init__()
        layers, width = [], obs_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.latent_pi = nn.Sequential(*layers)
        self.mu = nn.Linear(width, act_dim)
        self.log_std = nn.Linear(width, act_dim)
        self.hidden = tuple(hidden)
        low = torch.tensor(np.broadcast_to(action_low, (act_dim,)), dtype=torch.float32)
        high = torch.tensor(np.broadcast_to(action_high, (act_dim,)), dtype=torch.float32)
        self.register_buffer("action_low", low.clone())
        self.register_buffer("action_high", high.clone())

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


def save_actor(path: str | Path, actor: SquashedGaussianActor, **meta) -> Path:
    """``<path>.safetensors`` + ``<path>.json`` (shape, bounds and ``meta`` in the sidecar)."""
    shape = {"obs_dim": actor.obs_dim, "act_dim": actor.act_dim, "hidden": list(actor.hidden)}
    return save_checkpoint(path, actor.state_dict(), {"actor": shape, **meta})


def load_actor(path: str | Path) -> tuple[SquashedGaussianActor, dict]:
    tensors, meta = load_checkpoint(path)
    shape = meta["actor"]
    actor = SquashedGaussianActor(shape["obs_dim"], shape["act_dim"], tuple(shape["hidden"]),
                                  tensors["action_low"].tolist(), tensors["action_high"].tolist())
    actor.load_state_dict(tensors)
    return actor.eval(), meta
