"""Operations on Decision Transformer weights for the paper's experiments: the ordered list
of the transformer's layers (the x-axis of Figs. 1-3), merged transformers served to each
environment, and the attention perturbations of Table 2.

Merging itself is the merging library's (:mod:`crl_merge.merge`); this module only names
what is merged and puts the result back with each environment's own projections.
"""

from __future__ import annotations

import torch

from crl_merge.merge import average, fisher_merge, interpolate, select

StateDict = dict[str, torch.Tensor]

# Table 1/3 subsets, in the merging library's group names
SUBSETS = {"attention": ["attention"], "attention+mlp": ["attention", "mlp"], "transformer": ["transformer"]}
PERTURBATIONS = ("random", "identity", "identity_matrix", "removed")


def layer_units(n_layer: int) -> list[tuple[str, str]]:
    """``(name, regex)`` of every layer in depth order: per block ``ln_1``, ``attn``,
    ``ln_2``, ``mlp``, then the final ``ln_f`` (the units the paper merges one at a time)."""
    units = []
    for i in range(n_layer):
        for part in ("ln_1", "attn", "ln_2", "mlp"):
            units.append((f"{i}.{part}", rf"^transformer\.blocks\.{i}\.{part}\."))
    units.append(("ln_f", r"^transformer\.ln_f\."))
    return units


def subset_of(name: str) -> list[str]:
    try:
        return SUBSETS[name]
    except KeyError:
        raise ValueError(f"unknown merge subset {name!r}; known: {sorted(SUBSETS)}") from None


def shared_fraction(state_dict: StateDict, subset) -> float:
    """Fraction of the transformer's parameters that ``subset`` covers."""
    sizes = {n: state_dict[n].numel() for n in select(state_dict, "transformer")}
    return sum(sizes[n] for n in select(state_dict, subset)) / sum(sizes.values())


def multitask_size(state_dict: StateDict, subset, models: int) -> float:
    """Transformer size of a multi-task model made of ``models`` DTs sharing ``subset``,
    relative to one DT's transformer (the paper's "Size" column): 2.0 = two separate models."""
    if subset is None:
        return float(models)
    share = shared_fraction(state_dict, subset)
    return models * (1.0 - share) + share


def merge_into(target: StateDict, source: StateDict, subset, p: float) -> StateDict:
    """``θ_t ← (1 − p)·θ_t + p·θ_s`` on ``subset``; the target's weights elsewhere."""
    return interpolate(target, source, 1.0 - p, subset)


def merged_models(models: dict[str, StateDict], subset, fishers: dict[str, StateDict] | None = None
                  ) -> dict[str, StateDict]:
    """Each environment's model with ``subset`` replaced by the (plain or Fisher-weighted)
    average over all the given models — one multi-task transformer served to every env."""
    names = list(models)
    sds = [models[n] for n in names]
    if fishers is None:
        merged = average(sds, subset=subset)
    else:
        merged = fisher_merge(sds, [fishers[n] for n in names], subset=subset)
    shared = select(merged, subset)
    return {n: {**models[n], **{k: merged[k] for k in shared}} for n in names}


def perturb_attention(state_dict: StateDict, mode: str, seed: int = 0) -> StateDict:
    """Table 2's perturbations of every attention layer (query, key, value and output
    projections; the block's LayerNorms stay):

    ``random``           a fresh GPT-2 init: N(0, 0.02) weights, zero biases, fixed by ``seed``;
    ``identity``         what the paper's code does (``experiment.py``, ``--identity_layers``):
                         every weight set to 1, every bias to 0. Queries, keys and values are
                         then all the sum of the normalised input's channels, so the attention
                         adds the same number to every channel of the residual stream, which
                         the next LayerNorm subtracts again: the network computes what it
                         computes with attention removed;
    ``identity_matrix``  our first reading of "identity": identity matrices and zero biases
                         (queries, keys and values are the normalised input itself);
    ``removed``          the output projection is zero, so each block's attention adds nothing
                         to the residual stream (the paper's ``--disable_attention``).
    """
    if mode not in PERTURBATIONS:
        raise ValueError(f"unknown attention perturbation {mode!r}; known: {list(PERTURBATIONS)}")
    out = dict(state_dict)
    gen = torch.Generator().manual_seed(seed)
    for name in select(state_dict, "attention"):
        value = state_dict[name]
        if mode == "removed":
            out[name] = torch.zeros_like(value) if ".attn.o." in name else value
        elif name.endswith(".bias"):
            out[name] = torch.zeros_like(value)
        elif mode == "identity":
            out[name] = torch.ones_like(value)
        elif mode == "identity_matrix":
            out[name] = torch.eye(*value.shape, dtype=value.dtype)
        else:
            out[name] = (torch.randn(value.shape, generator=gen) * 0.02).to(value.dtype)
    return out
