"""Checkpoints: weights as ``safetensors`` plus a JSON sidecar; loading never unpickles.

``save_checkpoint("runs/x/actor", tensors, meta)`` writes ``actor.safetensors`` and then
``actor.json``; the sidecar records the weight file's size and SHA-256, and is written
last, so a sidecar only exists for a complete weight file. Loading checks both and names
the file that is missing, truncated or altered.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from functools import lru_cache
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from crl_merge import __version__
from crl_merge.files import atomic_write_bytes, atomic_write_json
from crl_merge.models import architecture_of, build_model

WEIGHTS, SIDECAR = ".safetensors", ".json"


class CheckpointError(Exception):
    """A checkpoint that is missing, truncated, altered or of the wrong shape."""


def _stem(path: str | Path) -> Path:
    path = Path(path)
    return path.with_suffix("") if path.suffix in (WEIGHTS, SIDECAR) else path


@lru_cache(maxsize=1)
def code_version() -> str:
    """The package version, plus the git commit when running from a checkout."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                                cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{__version__}+{commit}" if commit else __version__


def save_checkpoint(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict) -> Path:
    """Write ``<stem>.safetensors`` and its sidecar ``<stem>.json``; returns the weights path."""
    stem = _stem(path)
    data = save_safetensors({k: v.detach().cpu().contiguous() for k, v in tensors.items()})
    weights = stem.with_suffix(WEIGHTS)
    atomic_write_bytes(weights, data)
    sidecar = {**meta, "weights": {"file": weights.name, "bytes": len(data),
                                   "sha256": hashlib.sha256(data).hexdigest()},
               "code_version": code_version()}
    atomic_write_json(stem.with_suffix(SIDECAR), sidecar)
    return weights


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[dict[str, torch.Tensor], dict]:
    """``(tensors, meta)`` of a checkpoint, after checking the weights against the sidecar."""
    stem = _stem(path)
    weights, sidecar = stem.with_suffix(WEIGHTS), stem.with_suffix(SIDECAR)
    if not sidecar.is_file():
        raise CheckpointError(f"{sidecar}: sidecar missing (the checkpoint was never completed, or is not one)")
    if not weights.is_file():
        raise CheckpointError(f"{weights}: weight file missing")
    try:
        meta = json.loads(sidecar.read_text())
        expected = meta["weights"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise CheckpointError(f"{sidecar}: not a valid checkpoint sidecar ({e})") from e
    data = weights.read_bytes()
    if len(data) != expected["bytes"]:
        raise CheckpointError(f"{weights}: truncated or altered: {len(data)} bytes, the sidecar says {expected['bytes']}")
    if hashlib.sha256(data).hexdigest() != expected["sha256"]:
        raise CheckpointError(f"{weights}: contents altered: SHA-256 differs from the sidecar's")
    try:
        tensors = load_safetensors(data)
    except SafetensorError as e:
        raise CheckpointError(f"{weights}: not a readable safetensors file ({e})") from e
    return {k: v.to(device) for k, v in tensors.items()}, meta


def save_model(path: str | Path, model: nn.Module, **meta) -> Path:
    """Save ``model``'s weights with its architecture record and ``meta`` in the sidecar."""
    return save_checkpoint(path, model.state_dict(), {"architecture": architecture_of(model), **meta})


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the model recorded in the sidecar and load its weights (strictly)."""
    tensors, meta = load_checkpoint(path, device)
    if "architecture" not in meta:
        raise CheckpointError(f"{_stem(path).with_suffix(SIDECAR)}: no 'architecture' record; cannot rebuild a model")
    model = build_model(meta["architecture"]).to(device)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{_stem(path).with_suffix(WEIGHTS)}: weights do not fit the recorded architecture: {e}") from e
    return model.eval(), meta
