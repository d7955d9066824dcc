"""Networks: the NatureCNN actor/critic of the Procgen track and the Decision Transformer of
the MuJoCo track, with one record per architecture (:data:`ARCHITECTURES`) that everything
else asks: how to rebuild a model from a checkpoint's ``architecture`` record, its
permutation spec (as data), its named parameter groups, and whether a state dict is one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import nn

from crl_merge.models import decision_transformer, nature_cnn
from crl_merge.models.decision_transformer import DecisionTransformer, DTConfig
from crl_merge.models.nature_cnn import POLICY_LAYOUTS, NatureCNN, make_actor, make_actor_critic, make_critic


@dataclass(frozen=True)
class Architecture:
    """What the library knows of one architecture.

    ``record(model)``: the JSON-able sidecar record :func:`build` rebuilds the shape from;
    ``permutations(records)``: the permutation spec, as data (``sizes``, ``axes``,
    ``nested``), covering the models of these records; ``parameter_groups(names)``: group
    name → regex over parameter names; ``never_merged``: groups left out of a merge unless
    named; ``owns(names)``: whether a state dict with these names is of this architecture."""

    name: str
    module: type[nn.Module]
    record: Callable[[nn.Module], dict]
    build: Callable[[dict], nn.Module]
    permutations: Callable[[list[dict]], dict]
    parameter_groups: Callable[[list[str]], dict[str, str]]
    owns: Callable[[list[str]], bool]
    never_merged: tuple[str, ...] = ()


def _dt_layers(names: list[str]) -> int:
    return max((int(n.split(".")[2]) for n in names if n.startswith("transformer.blocks.")), default=-1) + 1


ARCHITECTURES: dict[str, Architecture] = {a.name: a for a in (
    Architecture(
        "nature_cnn", NatureCNN,
        record=lambda m: {"name": "nature_cnn", "out_dim": m.out_dim},
        build=lambda r: NatureCNN(int(r["out_dim"])),
        permutations=lambda records: nature_cnn.permutation_axes(),
        parameter_groups=lambda names: dict(nature_cnn.PARAMETER_GROUPS),
        owns=lambda names: "conv1.weight" in names),
    Architecture(
        "decision_transformer", DecisionTransformer,
        record=lambda m: {"name": "decision_transformer", "config": m.cfg.to_dict()},
        build=lambda r: DecisionTransformer(DTConfig.from_dict(r["config"])),
        permutations=lambda records: decision_transformer.permutation_axes_of(
            [DTConfig.from_dict(r["config"]) for r in records]),
        parameter_groups=lambda names: decision_transformer.parameter_groups(_dt_layers(names)),
        owns=lambda names: _dt_layers(names) > 0,
        # the per-environment projections: shaped by the environment, not merged unless named
        never_merged=("embeddings", "heads")),
)}


def architecture(model_or_record: nn.Module | dict) -> Architecture:
    """The architecture of a model or of a checkpoint's ``architecture`` record."""
    if isinstance(model_or_record, dict):
        name = model_or_record.get("name")
        if name not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {name!r}; known: {list(ARCHITECTURES)}")
        return ARCHITECTURES[name]
    for arch in ARCHITECTURES.values():
        if isinstance(model_or_record, arch.module):
            return arch
    raise TypeError(f"no architecture record for {type(model_or_record).__name__}; known: {list(ARCHITECTURES)}")


def architecture_of_names(names: list[str]) -> Architecture | None:
    """The architecture whose state dicts have these parameter names, if any."""
    return next((a for a in ARCHITECTURES.values() if a.owns(names)), None)


def architecture_of(model: nn.Module) -> dict:
    """The JSON-able record from which :func:`build_model` rebuilds ``model``'s shape."""
    return architecture(model).record(model)


def build_model(record: dict) -> nn.Module:
    """A model of the recorded shape (weights from its initialisation, not a checkpoint)."""
    if not isinstance(record, dict):
        raise ValueError(f"an architecture record is a mapping with a 'name', got {record!r}")
    return architecture(record).build(record)


__all__ = ["NatureCNN", "DecisionTransformer", "DTConfig", "make_actor", "make_critic", "make_actor_critic",
           "POLICY_LAYOUTS", "Architecture",
           "ARCHITECTURES", "architecture", "architecture_of", "architecture_of_names", "build_model"]
