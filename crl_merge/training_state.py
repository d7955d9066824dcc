"""Training state as named tensors plus JSON, so a resume checkpoint is a safetensors file
like every other artifact (no pickling): module weights, the optimizer's per-parameter
state, and random-generator states."""

from __future__ import annotations

import torch
from torch import nn


def pack_training_state(modules: dict[str, nn.Module], optimizer: torch.optim.Optimizer,
                        generators: dict[str, torch.Generator]) -> tuple[dict[str, torch.Tensor], dict]:
    """``(tensors, meta)``: ``<module>.<param>``, ``optim.<index>.<key>``, ``rng.<name>``.

    Parameters are taken with ``named_parameters``, which lists a shared parameter once
    (SB3's policy holds its actor's feature extractor under two names)."""
    tensors = {f"{name}.{k}": v.detach() for name, module in modules.items()
               for k, v in [*module.named_parameters(), *module.named_buffers()]}
    optim = optimizer.state_dict()
    for index, state in optim["state"].items():
        for key, value in state.items():
            tensors[f"optim.{index}.{key}"] = torch.as_tensor(value)
    for name, gen in generators.items():
        tensors[f"rng.{name}"] = gen.get_state()
    return tensors, {"optimizer_param_groups": optim["param_groups"]}


def unpack_training_state(tensors: dict[str, torch.Tensor], meta: dict, modules: dict[str, nn.Module],
                          optimizer: torch.optim.Optimizer, generators: dict[str, torch.Generator]) -> None:
    """Load what :func:`pack_training_state` wrote into live objects of the same shapes."""
    with torch.no_grad():
        for name, module in modules.items():
            for k, target in [*module.named_parameters(), *module.named_buffers()]:
                target.copy_(tensors[f"{name}.{k}"])
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, field = key.split(".", 2)
            state.setdefault(int(index), {})[field] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["optimizer_param_groups"]})
    for name, gen in generators.items():
        gen.set_state(tensors[f"rng.{name}"].cpu())
