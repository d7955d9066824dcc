"""Diagonal Fisher information of a policy, for Fisher merging, estimated from the model's
own output distribution on given inputs (no labels, no rewards):
``F = E_s E_{a ~ π(·|s)} [(∇_θ log π(a|s))²]``.

One action is sampled per input (a seeded Monte-Carlo estimate of the expectation over
actions) and the squared gradient is taken per input, so the estimate is the Fisher and not
the square of a batch gradient. Per-input backward passes are cheaper on the CPU here than
vectorised per-sample gradients (``torch.func.vmap``), which lack fast batching rules for
these convolutions and for attention.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import nn

from crl_merge.merge.subsets import select

if TYPE_CHECKING:  # type names only: merge builds on models, not the reverse
    from crl_merge.models import DecisionTransformer, NatureCNN


def diagonal_fisher(actor: NatureCNN, obs: torch.Tensor, seed: int = 0, exact: bool = False) -> dict[str, torch.Tensor]:
    """The Fisher of a categorical policy (NatureCNN actor, logits out) on states ``obs``
    (``uint8 [N, 64, 64, 3]``, e.g. frames from the actor's own rollouts).

    ``exact``: the expectation over actions taken exactly, ``Σ_a π(a|s) (∇ log π(a|s))²``
    (one backward pass per state and action: 15× the cost), as Matena & Raffel define it,
    instead of one sampled action per state."""
    if len(obs) == 0:
        raise ValueError("no states to estimate the Fisher on")
    with torch.no_grad():
        probs = torch.softmax(actor(obs).double(), dim=-1)
    if exact:
        actions = probs.shape[1]
        weights = probs.cpu().reshape(-1).tolist()  # state-major: (state i, action a) at i·actions + a
        log_prob = lambda k: weights[k] ** 0.5 * torch.log_softmax(  # noqa: E731
            actor(obs[k // actions:k // actions + 1]), dim=-1)[0, k % actions]
        sums = _sum_of_squared_gradients(actor, len(obs) * actions, log_prob)
    else:
        gen = torch.Generator().manual_seed(seed)
        sampled = torch.multinomial(probs.cpu(), 1, generator=gen)[:, 0].tolist()
        log_prob = lambda i: torch.log_softmax(actor(obs[i:i + 1]), dim=-1)[0, sampled[i]]  # noqa: E731
        sums = _sum_of_squared_gradients(actor, len(obs), log_prob)
    return {k: f / len(obs) for k, f in sums.items()}


def dt_diagonal_fisher(model: DecisionTransformer, env: str, states: torch.Tensor, actions: torch.Tensor,
                       returns_to_go: torch.Tensor, timesteps: torch.Tensor,
                       attention_mask: torch.Tensor | None = None, seed: int = 0) -> dict[str, torch.Tensor]:
    """The Fisher of a Decision Transformer read as a unit-variance Gaussian policy around its
    predicted actions (the likelihood its MSE loss corresponds to), per predicted action, on
    a batch of context windows (arguments as for ``DecisionTransformer.forward``).

    With ``a = μ + ε``, ``ε ~ N(0, I)``: ``∇ log N(a; μ, I) = ε·∇μ``; the noise of a window's
    positions is independent, so one backward pass per window gives the sum of its positions'
    Fishers in expectation, which is divided by the number of real (unmasked) positions.
    """
    if len(states) == 0:
        raise ValueError("no context windows to estimate the Fisher on")
    mask = torch.ones(states.shape[:2]) if attention_mask is None else attention_mask.detach().float().cpu()
    gen = torch.Generator().manual_seed(seed)
    noise = (torch.randn(actions.shape, generator=gen) * mask[..., None]).to(states.device, actions.dtype)

    def log_likelihood(i: int) -> torch.Tensor:
        window = (states[i:i + 1], actions[i:i + 1], returns_to_go[i:i + 1], timesteps[i:i + 1])
        mu = model(env, *window, None if attention_mask is None else attention_mask[i:i + 1])
        return (noise[i:i + 1] * mu).sum()

    sums = _sum_of_squared_gradients(model, len(states), log_likelihood)
    return {k: f / float(mask.sum()) for k, f in sums.items()}


def dt_mse_fisher(model: DecisionTransformer, env: str, batches, seed: int = 0) -> dict[str, torch.Tensor]:
    """The Decision Transformer "Fisher" of the merging paper's code (``dt_utils.py``,
    ``compute_fisher``): for each batch of context windows, the gradient of the batch-mean
    squared action error (over real positions and action dimensions) in training mode,
    dropout on, squared; summed over batches and divided by the number of real positions.
    It is the square of a batch gradient, not a per-sample Fisher, and its scale depends on
    the loss; merging normalises it per model (:func:`normalise_fisher`).

    ``batches`` holds ``(states, actions, returns_to_go, timesteps, attention_mask)`` tuples;
    the dropout masks come from ``seed`` (the global generators are left as they were)."""
    batches = list(batches)
    if not batches:
        raise ValueError("no batches to estimate the Fisher on")
    params = dict(model.named_parameters())
    sums = {k: torch.zeros_like(p) for k, p in params.items()}
    positions = 0.0
    was_training = model.training
    model.train()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for states, actions, returns_to_go, timesteps, mask in batches:
                pred = model(env, states, actions, returns_to_go, timesteps, mask)
                real = mask.reshape(-1) > 0
                act_dim = actions.shape[-1]
                loss = (pred.reshape(-1, act_dim)[real] - actions.reshape(-1, act_dim)[real]).square().mean()
                grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
                for k, g in zip(params, grads):
                    if g is not None:
                        sums[k] += g.detach().square()
                positions += float(real.sum())
    finally:
        model.train(was_training)
    return {k: f / positions for k, f in sums.items()}


def normalise_fisher(fisher: dict[str, torch.Tensor], over) -> dict[str, torch.Tensor]:
    """``fisher`` divided by its total over the parameters ``over`` (a subset, as
    :func:`crl_merge.merge.select` reads it): the paper's code divides each model's Fisher by
    its own sum before weighting, so that only where a model is sensitive, relative to the
    rest of that model, decides the merge, not how large its loss (and so its gradients) is."""
    total = sum(float(fisher[n].double().sum()) for n in select(fisher, over))
    if not total > 0:
        raise ValueError(f"the Fisher is zero over {over!r}: nothing to normalise by")
    return {k: v / total for k, v in fisher.items()}


def _sum_of_squared_gradients(model: nn.Module, count: int, objective: Callable[[int], torch.Tensor]
                              ) -> dict[str, torch.Tensor]:
    """``Σ_i (∇_θ objective(i))²`` per parameter (zeros where a parameter gets no gradient),
    with the model in eval mode (no dropout) for the duration."""
    params = dict(model.named_parameters())
    sums = {k: torch.zeros_like(p) for k, p in params.items()}
    was_training = model.training
    model.eval()
    try:
        for i in range(count):
            grads = torch.autograd.grad(objective(i), list(params.values()), allow_unused=True)
            for k, g in zip(params, grads):
                if g is not None:
                    sums[k] += g.detach().square()
    finally:
        model.train(was_training)
    return sums
