"""REPAIR (Jordan et al. 2023, *REPAIR: REnormalizing Permuted Activations for Interpolation
Repair*): interpolating two networks shrinks the variance of their hidden units'
pre-activations, which is where interpolated networks without normalisation layers (such as
NatureCNN) lose their function. REPAIR measures, on inputs, each hidden layer's per-channel
pre-activation mean and std in the sources and in the merged network, and rescales the
merged layer's weights and bias so that its statistics become the sources' weighted mean,
layer by layer in forward order (repairing one layer changes the statistics after it)."""

from __future__ import annotations

import torch
from torch import nn

EPS = 1e-8


def hidden_layers(model: nn.Module) -> list[str]:
    """The Conv2d and Linear modules in forward order, all but the last (the output head):
    the layers whose outputs go through a nonlinearity in a feed-forward network."""
    layers = [name for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    return layers[:-1]


@torch.no_grad()
def layer_statistics(model: nn.Module, inputs: torch.Tensor, layers: list[str],
                     batch_size: int = 256) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per layer, the per-channel mean and std of its pre-activation outputs on ``inputs``
    (a conv's positions count as samples)."""
    modules = dict(model.named_modules())
    sums: dict[str, list[torch.Tensor]] = {}

    def hook(name):
        def record(module, args, output):
            x = output.double().transpose(0, 1).reshape(output.shape[1], -1)  # channels × samples
            s = sums.setdefault(name, [torch.zeros(len(x), dtype=torch.float64), torch.zeros(len(x), dtype=torch.float64), 0])
            s[0] += x.sum(1)
            s[1] += x.square().sum(1)
            s[2] += x.shape[1]
        return record

    handles = [modules[name].register_forward_hook(hook(name)) for name in layers]
    try:
        was_training = model.training
        model.eval()
        for start in range(0, len(inputs), batch_size):
            model(inputs[start:start + batch_size])
        model.train(was_training)
    finally:
        for h in handles:
            h.remove()
    out = {}
    for name in layers:
        total, squares, count = sums[name]
        mean = total / count
        out[name] = (mean, (squares / count - mean.square()).clamp_min(0).sqrt())
    return out


@torch.no_grad()
def repair(merged: nn.Module, sources: list[nn.Module], weights: list[float], inputs: torch.Tensor,
           layers: list[str] | None = None) -> nn.Module:
    """``merged``, repaired in place (and returned): each layer of ``layers`` (default:
    :func:`hidden_layers`) gets the pre-activation mean ``Σ wᵢ μᵢ`` and std ``Σ wᵢ σᵢ`` of the
    ``sources`` on ``inputs``. A channel dead in the merged network (std 0) keeps its scale."""
    if len(sources) != len(weights):
        raise ValueError(f"{len(weights)} weights for {len(sources)} source models")
    if len(inputs) == 0:
        raise ValueError("REPAIR needs inputs to measure activations on")
    layers = hidden_layers(merged) if layers is None else layers
    stats = [layer_statistics(s, inputs, layers) for s in sources]
    modules = dict(merged.named_modules())
    for name in layers:
        target_mean = sum(w * st[name][0] for w, st in zip(weights, stats))
        target_std = sum(w * st[name][1] for w, st in zip(weights, stats))
        mean, std = layer_statistics(merged, inputs, [name])[name]
        scale = torch.where(std > EPS, target_std / std.clamp_min(EPS), torch.ones_like(std))
        layer = modules[name]
        shape = (-1,) + (1,) * (layer.weight.dim() - 1)
        layer.weight.copy_((layer.weight.double() * scale.reshape(shape)).to(layer.weight.dtype))
        layer.bias.copy_(((layer.bias.double() - mean) * scale + target_mean).to(layer.bias.dtype))
    return merged
