"""Choosing which parameters a merge acts on: by group name (``attention``, ``mlp``,
``conv3``, ``layer1`` …), by regular expression over parameter names, or a list of these."""

from __future__ import annotations

import re

import torch

from crl_merge.models import architecture_of_names

Subset = None | str | list[str] | tuple[str, ...]


def parameter_groups(names: list[str]) -> dict[str, str]:
    """Group name → regex for the architecture these parameter names belong to."""
    arch = architecture_of_names(names)
    return arch.parameter_groups(names) if arch else {}


def select(state_dict: dict[str, torch.Tensor], subset: Subset = None) -> list[str]:
    """Names of the parameters in ``subset``, in state-dict order.

    ``None`` means every mergeable parameter (all but a DT's ``io.*`` projections); a string
    is a group name of the model's architecture or else a regular expression searched in each
    name; a list is the union of its entries. An entry that matches nothing is an error.
    """
    names = list(state_dict)
    arch = architecture_of_names(names)
    groups = arch.parameter_groups(names) if arch else {}
    if subset is None:
        never = [re.compile(groups[g]) for g in (arch.never_merged if arch else ())]
        return [n for n in names if not any(r.search(n) for r in never)]
    patterns = [subset] if isinstance(subset, str) else list(subset)
    if not patterns:
        raise ValueError("empty subset: give None for all mergeable parameters, or group names / regexes")
    chosen = set()
    for pattern in patterns:
        try:
            regex = re.compile(groups.get(pattern, pattern))
        except re.error as e:
            raise ValueError(f"subset {pattern!r} is neither a group name nor a valid regular expression ({e}); "
                             f"groups: {sorted(groups)}") from e
        hits = {n for n in names if regex.search(n)}
        if not hits:
            raise ValueError(f"subset {pattern!r} matches no parameter; groups of this model: {sorted(groups)}, "
                             f"or a regular expression over names such as {names[:3]}")
        chosen |= hits
    return [n for n in names if n in chosen]
