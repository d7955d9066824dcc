"""Making the merged actor of one merge of a suite's plan: the weights-only methods through
:func:`crl_merge.merge.methods.merge_weights` (Re-Basin here, since REPAIR needs the aligned
B); activation matching, Fisher merging and REPAIR with states from the source models' own
rollouts; the logit ensemble baseline."""

from __future__ import annotations

from dataclasses import dataclass

import torch

import envs
from crl_merge.merge import (LogitEnsemble, activation_matching, align, apply_permutation, diagonal_fisher,
                             fisher_merge, interpolate, merge_weights, spec_for)
from crl_merge.merge.repair import repair
from crl_merge.models import NatureCNN, make_actor
from crl_merge.procgen.plan import MergeMethod


@torch.no_grad()
def rollout_states(actor: NatureCNN, task, count: int, level_seed: int, seed: int = 0, num_envs: int = 64,
                   device="cpu") -> torch.Tensor:
    """``count`` frames visited by ``actor`` (sampling its actions) on ``task``'s training levels."""
    env = envs.make(task, num_envs=min(num_envs, count), seed=level_seed, device=str(device))
    gen = torch.Generator(device=device).manual_seed(seed)
    obs, frames = env.reset(), []
    while sum(len(f) for f in frames) < count:
        frames.append(obs)
        action = torch.multinomial(torch.softmax(actor(obs), 1), 1, generator=gen).squeeze(1)
        obs = env.step(action)[0]
    return torch.cat(frames)[:count]


@dataclass
class PairModels:
    """The two actors of a merge in the direction asked (A kept, B permuted), their own
    tasks and level seeds (for states from their rollouts), and their init seeds."""

    a: NatureCNN
    b: NatureCNN
    task_a: envs.Task
    task_b: envs.Task
    level_seed_a: int
    level_seed_b: int
    init_a: int
    init_b: int


def _both_rollouts(pair: PairModels, states: int, device) -> torch.Tensor:
    """Half the states from A's rollouts on its task, half from B's on its."""
    return torch.cat([rollout_states(pair.a, pair.task_a, states // 2, pair.level_seed_a, device=device),
                      rollout_states(pair.b, pair.task_b, states - states // 2, pair.level_seed_b, device=device)])


def merged_actor(method: MergeMethod, pair: PairModels, states: int, device="cpu") -> torch.nn.Module:
    """The merged actor (for ``ensemble``, the logit ensemble of A and B, which is not a merge).
    ``states``: how many rollout frames activation matching, Fisher merging and REPAIR use."""
    a, b = pair.a.state_dict(), pair.b.state_dict()
    spec = spec_for(pair.a)
    if method.method == "ensemble":
        return LogitEnsemble([pair.a, pair.b]).eval()
    aligned_b = b  # B as it is interpolated with A: renumbered onto A by the alignment methods
    if method.method == "activation_matching":
        aligned_b = apply_permutation(spec, activation_matching(spec, pair.a, pair.b,
                                                                _both_rollouts(pair, states, device)), b)
        merged = interpolate(a, aligned_b, method.alpha)
    elif method.method == "rebasin":
        aligned_b = align(spec, a, b).aligned
        merged = interpolate(a, aligned_b, method.alpha)
    elif method.method == "fisher":
        fishers = [diagonal_fisher(model, rollout_states(model, task, states, seed, device=device), exact=method.exact)
                   for model, task, seed in ((pair.a, pair.task_a, pair.level_seed_a),
                                             (pair.b, pair.task_b, pair.level_seed_b))]
        merged = fisher_merge([a, b], fishers)
    else:
        base = None
        if method.needs_shared_init:
            if pair.init_a != pair.init_b:
                raise ValueError(f"{method.method} needs models from one initialisation; got init seeds "
                                 f"{pair.init_a} and {pair.init_b}")
            base = make_actor(pair.init_a).state_dict()
        settings = {k: v for k, v in (("scale", method.scale), ("density", method.density),
                                      ("outliers", method.outliers)) if v is not None}
        merged, _ = merge_weights(method.method, [a, b], alpha=method.alpha, base=base, spec=spec, **settings)
    actor = make_actor().to(device)
    actor.load_state_dict(merged)
    if method.repair:
        source_b = make_actor().to(device)
        source_b.load_state_dict(aligned_b)
        repair(actor, [pair.a, source_b], [method.alpha, 1 - method.alpha], _both_rollouts(pair, states, device))
    return actor.eval()
