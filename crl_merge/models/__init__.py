"""Networks: the NatureCNN actor/critic of the Procgen track and the Decision Transformer of
the MuJoCo track, and their construction from a checkpoint's ``architecture`` record."""

from __future__ import annotations

from torch import nn

from crl_merge.models.decision_transformer import DecisionTransformer, DTConfig
from crl_merge.models.nature_cnn import NatureCNN, make_actor, make_critic

ARCHITECTURES = ("nature_cnn", "decision_transformer")


def architecture_of(model: nn.Module) -> dict:
    """The JSON-able record from which :func:`build_model` rebuilds ``model``'s shape."""
    if isinstance(model, NatureCNN):
        return {"name": "nature_cnn", "out_dim": model.out_dim}
    if isinstance(model, DecisionTransformer):
        return {"name": "decision_transformer", "config": model.cfg.to_dict()}
    raise TypeError(f"no architecture record for {type(model).__name__}; known: {ARCHITECTURES}")


def build_model(architecture: dict) -> nn.Module:
    """An uninitialised-by-checkpoint model of the recorded shape."""
    name = architecture.get("name") if isinstance(architecture, dict) else None
    if name == "nature_cnn":
        return NatureCNN(int(architecture["out_dim"]))
    if name == "decision_transformer":
        return DecisionTransformer(DTConfig.from_dict(architecture["config"]))
    raise ValueError(f"unknown architecture {name!r}; known: {list(ARCHITECTURES)}")


__all__ = ["NatureCNN", "DecisionTransformer", "DTConfig", "make_actor", "make_critic", "architecture_of",
           "build_model", "ARCHITECTURES"]
