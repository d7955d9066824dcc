"""A logit ensemble: the baseline a merge is compared with, not a merge. It keeps every
member and runs each one, so it costs N forward passes and N times the parameters."""

from __future__ import annotations

import torch
from torch import nn

from crl_merge.merge.checks import normalised_weights


class LogitEnsemble(nn.Module):
    """Weighted mean of the members' outputs (logits for actors), usable wherever one of
    the members is, e.g. as the ``actor`` given to evaluation."""

    def __init__(self, members: list[nn.Module], weights: list[float] | None = None):
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)
        self.register_buffer("weights", torch.tensor(normalised_weights(weights, len(members))), persistent=False)

    def forward(self, *inputs, **kwargs) -> torch.Tensor:
        return sum(w * member(*inputs, **kwargs) for w, member in zip(self.weights, self.members))
