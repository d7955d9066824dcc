"""Real models for the merging tests: randomised NatureCNN actors and Decision Transformers
(every parameter perturbed, so biases and layer norms are not at their symmetric
initial values), game frames, and two NatureCNN actors trained from different inits."""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F

import envs
from crl_merge.models import DecisionTransformer, DTConfig, make_actor

DT_ENVS = {"hopper": (11, 3), "walker2d": (17, 6)}


def random_actor(seed: int):
    """A NatureCNN actor with random biases and an O(1)-scale head, so outputs differ visibly."""
    actor = make_actor(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in actor.named_parameters():
            if name.endswith("bias") or name.startswith("head"):
                p.add_(0.1 * torch.randn(p.shape, generator=gen))
    return actor.eval()


def random_dt(seed: int, n_layer: int = 2, n_head: int = 2, n_embd: int = 32) -> DecisionTransformer:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        dt = DecisionTransformer(DTConfig(envs=DT_ENVS, n_layer=n_layer, n_head=n_head, n_embd=n_embd, context=8))
        with torch.no_grad():
            for p in dt.parameters():
                p.add_(0.1 * torch.randn_like(p))
    return dt.eval()


def dt_batch(seed: int, env: str = "hopper", batch: int = 4):
    """A batch of context windows for ``env``, the first one left-padded."""
    state_dim, act_dim = DT_ENVS[env]
    gen = torch.Generator().manual_seed(seed)
    k = 8
    mask = torch.ones(batch, k)
    mask[0, :3] = 0
    return (torch.randn(batch, k, state_dim, generator=gen), torch.randn(batch, k, act_dim, generator=gen),
            torch.randn(batch, k, 1, generator=gen), torch.randint(0, 1000, (batch, k), generator=gen), mask)


@lru_cache(maxsize=1)
def frames() -> torch.Tensor:
    """256 starpilot/shoot frames (uint8 [256, 64, 64, 3]) from a seeded random agent."""
    env = envs.make("starpilot/shoot", num_envs=32, seed=0)
    gen = torch.Generator().manual_seed(0)
    out = [env.reset()]
    for _ in range(7):
        out.append(env.step(torch.randint(0, envs.NUM_ACTIONS, (32,), generator=gen))[0])
    return torch.cat(out)


@lru_cache(maxsize=1)
def trained_actors(steps: int = 100):
    """Two actors trained by behaviour cloning (cross-entropy on a fixed teacher's greedy
    actions on game frames) from different initialisations, and the cloning accuracies."""
    obs = frames()
    with torch.no_grad():
        labels = make_actor(100)(obs).argmax(1)
    actors, accuracies = [], []
    for seed in (1, 2):
        actor = make_actor(seed)
        optimiser = torch.optim.Adam(actor.parameters(), lr=1e-3)
        gen = torch.Generator().manual_seed(seed)
        for _ in range(steps):
            batch = torch.randint(0, len(obs), (64,), generator=gen)
            loss = F.cross_entropy(actor(obs[batch]), labels[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        with torch.no_grad():
            accuracies.append(float((actor(obs).argmax(1) == labels).float().mean()))
        actors.append(actor.eval())
    return actors, accuracies
