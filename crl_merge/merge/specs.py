"""Permutation specs: which permutation acts on which axis of which parameter, as data
(the "permutation spec" of Git Re-Basin, Ainsworth et al. 2022), and their application.

Hidden units can be renumbered without changing a network's function as long as every
parameter that writes or reads a unit is renumbered the same way. A spec names these
permutations and, for every parameter, lists per axis the permutations acting on it:

* A permutation of ``size`` m acting on an axis of length n (a multiple of m) moves
  contiguous blocks of n/m entries. This is how the flatten between NatureCNN's last conv
  and its first linear layer is handled: flatten is channel-major, so permuting conv3's 64
  channels moves ``fc.weight``'s 1024 input columns in blocks of 16. Attention heads are
  blocks of ``head_dim`` units in the same way.
* Several permutations on one axis are applied in the order listed, each as a gather.
  This is how attention heads are handled: a permutation of the units within each head
  (``qk``: query and key; ``vo``: value and output) is *nested* in the head permutation: it
  only moves units within consecutive groups of ``head_dim``, and it is applied just before
  the head permutation on every axis. Weight matching solves nested permutations jointly
  with the one they are nested in, since neither can be found while the other is wrong.

A permutation value is a ``dict`` from permutation name to a long tensor ``p`` of length
``size``; applied to an axis, entry (block) ``i`` of the result is entry ``p[i]`` of the input.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import torch
from torch import nn

from crl_merge.models import architecture

Permutation = dict[str, torch.Tensor]
AxisEntry = None | str | tuple[str, ...]


@dataclass(frozen=True)
class PermutationSpec:
    """``sizes``: permutation → number of units; ``axes``: parameter → per axis, the
    permutations applied to that axis in order (trailing axes left out are not permuted);
    ``nested``: permutation → the permutations that renumber units within its blocks.
    Every parameter of the architecture is listed, also those no permutation touches.
    ``groups`` (derived): permutation → size of the groups its units stay within."""

    sizes: dict[str, int]
    axes: dict[str, tuple[tuple[str, ...], ...]]
    nested: dict[str, tuple[str, ...]] = field(default_factory=dict)
    groups: dict[str, int] = field(init=False)

    def __post_init__(self):
        outer_of = {}
        for outer, inner in self.nested.items():
            for q in inner:
                if q in outer_of or {q, outer} - set(self.sizes) or self.sizes[q] % self.sizes[outer]:
                    raise ValueError(f"permutation {q!r} cannot be nested in {outer!r}: unknown, nested twice, "
                                     "or its size is not a multiple of the outer one's")
                outer_of[q] = outer
        if set(self.nested) & set(outer_of):
            raise ValueError(f"permutations nested in a nested one: {set(self.nested) & set(outer_of)}")
        object.__setattr__(self, "groups", {p: n // self.sizes[outer_of[p]] if p in outer_of else n
                                            for p, n in self.sizes.items()})
        for param, axes in self.axes.items():
            used = [p for names in axes for p in names]
            if set(used) - set(self.sizes):
                raise ValueError(f"parameter {param!r} names permutations with no size: {set(used) - set(self.sizes)}")
            if len(used) != len(set(used)):
                raise ValueError(f"parameter {param!r}: a permutation may act on only one of its axes, got {axes}")
            for names in axes:
                for i, p in enumerate(names):
                    after = names[i + 1] if i + 1 < len(names) else None
                    before = names[i - 1] if i else None
                    if p in outer_of and after != outer_of[p] or p in self.nested and outer_of.get(before) != p:
                        raise ValueError(f"parameter {param!r}: a nested permutation must come just before the one "
                                         f"it is nested in, and that one only after a nested one; got {names}")

    @classmethod
    def build(cls, sizes: dict[str, int], axes: dict[str, tuple[AxisEntry, ...]],
              nested: dict[str, tuple[str, ...]] | None = None) -> "PermutationSpec":
        """A spec from axis entries written as ``None`` (not permuted), a permutation name,
        or a tuple of names (applied in order)."""
        as_tuple = lambda e: () if e is None else (e,) if isinstance(e, str) else tuple(e)  # noqa: E731
        return cls(dict(sizes), {k: tuple(as_tuple(e) for e in v) for k, v in axes.items()}, dict(nested or {}))

    def uses(self, parameters: list[str] | None = None) -> dict[str, list[tuple[str, int, int]]]:
        """Permutation → its ``(parameter, axis, position on that axis)`` among ``parameters``
        (default: all); permutations acting on none of them are left out."""
        out = defaultdict(list)
        for param in self.axes if parameters is None else parameters:
            for axis, names in enumerate(self.axes[param]):
                for position, p in enumerate(names):
                    out[p].append((param, axis, position))
        return dict(out)


def identity_permutation(spec: PermutationSpec) -> Permutation:
    return {p: torch.arange(n) for p, n in spec.sizes.items()}


def random_permutation(spec: PermutationSpec, seed: int) -> Permutation:
    """A uniformly random permutation of every kind the spec allows (respecting groups)."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for p, n in spec.sizes.items():
        g = spec.groups[p]
        out[p] = torch.cat([start + torch.randperm(g, generator=gen) for start in range(0, n, g)])
    return out


def invert(perm: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(perm).scatter_(0, perm, torch.arange(len(perm)))


def check_permutation(spec: PermutationSpec, perm: Permutation) -> None:
    """Raise ValueError unless ``perm`` holds a valid permutation for each of the spec's names."""
    if set(perm) != set(spec.sizes):
        raise ValueError(f"permutation names {sorted(perm)} do not match the spec's {sorted(spec.sizes)}")
    for p, n in spec.sizes.items():
        values, g = perm[p], spec.groups[p]
        if values.shape != (n,) or not torch.equal(values.sort().values, torch.arange(n)):
            raise ValueError(f"permutation {p!r} is not a permutation of range({n})")
        if not torch.equal(values // g, torch.arange(n) // g):
            raise ValueError(f"permutation {p!r} moves units across its groups of {g}")


def expand(perm: torch.Tensor, length: int) -> torch.Tensor:
    """The gather index over an axis of ``length`` that moves blocks of ``length / len(perm)``."""
    block = length // len(perm)
    return (perm[:, None] * block + torch.arange(block)).reshape(-1)


def axis_index(perm: Permutation, names: tuple[str, ...], length: int) -> torch.Tensor:
    """The single gather index equivalent to applying ``names`` in order to an axis of ``length``."""
    index = torch.arange(length)
    for p in names:
        if length % len(perm[p]):
            raise ValueError(f"permutation {p!r} of size {len(perm[p])} cannot act on an axis of length {length}")
        index = index[expand(perm[p], length)]
    return index


def permute_parameter(spec: PermutationSpec, perm: Permutation, name: str, tensor: torch.Tensor,
                      skip_axis: int | None = None) -> torch.Tensor:
    """``tensor`` (the parameter ``name``) with the spec's permutations applied to every axis
    but ``skip_axis``."""
    axes = spec.axes[name]
    if len(axes) > tensor.dim():
        raise ValueError(f"parameter {name!r} has {tensor.dim()} axes, the spec permutes {len(axes)}")
    for axis, names in enumerate(axes):
        if names and axis != skip_axis:
            tensor = tensor.index_select(axis, axis_index(perm, names, tensor.shape[axis]).to(tensor.device))
    return tensor


def check_covered(spec: PermutationSpec, state_dict: dict[str, torch.Tensor]) -> None:
    unknown = [k for k in state_dict if k not in spec.axes]
    if unknown:
        raise ValueError(f"parameters not in the permutation spec (a spec for another architecture?): {unknown[:5]}"
                         + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""))


def apply_permutation(spec: PermutationSpec, perm: Permutation,
                      state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A new state dict: every parameter renumbered by ``perm`` (the network's function is
    unchanged). Every key must be in the spec; spec entries the state dict lacks are ignored
    (a spec for a multi-environment DT applies to a single-environment one)."""
    check_covered(spec, state_dict)
    check_permutation(spec, perm)
    return {k: permute_parameter(spec, perm, k, v).clone() for k, v in state_dict.items()}


def spec_for(*models_or_records: nn.Module | dict) -> PermutationSpec:
    """The spec of a model's architecture (from modules or checkpoints' ``architecture``
    records). Given several Decision Transformers that differ only in their environments,
    the spec covers all their environments, so it can permute each of them."""
    if not models_or_records:
        raise ValueError("spec_for needs at least one model or architecture record")
    archs = [architecture(m) for m in models_or_records]
    if len({a.name for a in archs}) > 1:
        raise ValueError(f"models of different architectures: {sorted({a.name for a in archs})}")
    records = [m if isinstance(m, dict) else archs[0].record(m) for m in models_or_records]
    return PermutationSpec.build(**archs[0].permutations(records))
