"""Evaluation: exactly N complete episodes of an actor (or the uniform-random agent) on a
task's held-out evaluation level stream, batched over environments.

The thesis evaluates every model on level-generation seed 5, a seed no training run used;
here that is ``envs.make(task, seed=5, levels="eval")``, a stream disjoint from every
training stream. Which finished episodes count is the ``rule`` (see ``envs.episodes``):
``per_env``, each environment's first episodes (no length bias), or ``thesis``, the first N
to finish across all environments, as the thesis's code counts them (short episodes
finish first, so it over-counts them).
"""

from __future__ import annotations

import torch

import envs
from envs.episodes import EpisodeStats, collect_episodes

ACTION_MODES = ("stochastic", "greedy")


def actor_policy(actor: torch.nn.Module | None, num_envs: int, device, actions: str = "stochastic", seed: int = 0):
    """A ``policy(step, obs)`` that samples from (or takes the argmax of) the actor's logits;
    ``actor=None`` is the uniform-random agent."""
    if actions not in ACTION_MODES:
        raise ValueError(f"actions must be one of {ACTION_MODES}, got {actions!r}")
    gen = torch.Generator(device=device).manual_seed(seed)

    @torch.no_grad()
    def policy(step, obs):
        if actor is None:
            return torch.randint(0, envs.NUM_ACTIONS, (num_envs,), device=device, generator=gen)
        logits = actor(obs)
        if actions == "greedy":
            return logits.argmax(1)
        return torch.multinomial(torch.softmax(logits, 1), 1, generator=gen).squeeze(1)

    return policy


def evaluate(actor: torch.nn.Module | None, task, episodes: int, num_envs: int = 64, level_seed: int = envs.EVAL_SEED,
             actions: str = "stochastic", device="cpu", seed: int = 0, rule: str = "per_env",
             progress=None) -> EpisodeStats:
    """Per-episode returns, lengths and completion flags of ``episodes`` episodes.

    ``seed`` drives action sampling; ``level_seed`` picks the evaluation level stream.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be ≥ 1, got {episodes}")
    env = envs.make(task, num_envs=num_envs, seed=level_seed, levels="eval", device=str(device))
    if actor is not None:
        actor = actor.to(device).eval()
    return collect_episodes(env, actor_policy(actor, num_envs, device, actions, seed), episodes, rule=rule,
                            progress=progress)
