"""Helpers for writing a permutation spec as data (see :mod:`crl_merge.merge.specs`): for
each parameter, per axis, the permutation (name) acting on it, or ``None``."""

from __future__ import annotations


def linear(name: str, p_in, p_out) -> dict:
    """``weight`` is ``[out, in, …]`` for Linear and Conv2d alike."""
    return {f"{name}.weight": (p_out, p_in), f"{name}.bias": (p_out,)}


def layer_norm(name: str, p) -> dict:
    return {f"{name}.weight": (p,), f"{name}.bias": (p,)}
