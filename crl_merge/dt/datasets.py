"""D4RL-style datasets regenerated from the committed behaviour policies.

=============  =======================================================================
``expert``     the expert policy, ``rows`` steps (D4RL: 1M)
``medium``     the medium policy (a partly trained SAC snapshot), ``rows`` steps
``medium-replay``  the medium policy's training replayed: random warm-up actions, then each
               snapshot for the 10k steps until the next (D4RL: the replay buffer)
``medium-expert``  ``medium`` followed by ``expert`` (D4RL: the same concatenation)
=============  =======================================================================

Actions are sampled from the SAC policies as D4RL's ``collect_data.py`` did. Each file is
named by task, kind and size, carries its recipe in its metadata, and comes out the same
for the same seed on the same platform (MuJoCo and torch on the CPU are deterministic).
"""

from __future__ import annotations

import hashlib
import platform
from pathlib import Path
from typing import Callable

import gymnasium
import mujoco
import torch

from crl_merge.dt.behaviour import POLICY_SET, load_policy_set
from crl_merge.files import atomic_path
from envs.mujoco.collect import collect
from envs.mujoco.datasets import OfflineDataset, concatenate, load_d4rl_hdf5, read_metadata, write_d4rl_hdf5
from envs.mujoco.tasks import DATASET_KINDS, get_task

COLLECT_ENVS = 16  # environment copies stepped together (part of the recipe: it orders the episodes)


def dataset_path(root: str | Path, task: str, kind: str, rows: int) -> Path:
    return Path(root) / str(rows) / f"{task}-{kind}.hdf5"


def _recipe(task: str, kind: str, rows: int, seed: int, policies_dir: Path) -> dict:
    folder = Path(policies_dir) / task
    # the snapshots and the choice among them (policies.json: expert, medium, replay schedule)
    files = sorted(folder.glob("*.safetensors")) + [folder / POLICY_SET]
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest()
    return {"task": task, "kind": kind, "rows": rows, "seed": seed, "gym_id": get_task(task).gym_id,
            "policies_sha256": digest, "collect_envs": COLLECT_ENVS, "versions": {
                "gymnasium": gymnasium.__version__, "mujoco": mujoco.__version__, "torch": torch.__version__,
                "python": platform.python_version(), "machine": platform.machine()}}


def generate(task: str, kind: str, rows: int, seed: int, policies_dir: str | Path,
             progress: Callable[[int, int], None] | None = None) -> OfflineDataset:
    """Roll out the ``kind`` dataset of ``task`` (see the module docstring)."""
    if kind not in DATASET_KINDS:
        raise ValueError(f"unknown dataset kind {kind!r}; known: {list(DATASET_KINDS)}")
    spec, policies = get_task(task), load_policy_set(policies_dir, task)
    report = (lambda total: (lambda n: progress(n, total))) if progress else (lambda total: None)  # noqa: E731
    if kind == "medium-expert":
        parts = [generate(task, k, rows, seed, policies_dir, progress) for k in ("medium", "expert")]
        data = concatenate(parts)
    elif kind == "medium-replay":
        steps = policies.replay_steps
        data = collect(spec, policies.replay_schedule(), steps=steps, num_envs=1, seed=seed + 2, progress=report(steps))
    else:
        actor = policies.expert if kind == "expert" else policies.medium
        data = collect(spec, actor, steps=rows, num_envs=COLLECT_ENVS, seed=seed + (0 if kind == "expert" else 1),
                       progress=report(rows))
    data.metadata = _recipe(task, kind, rows, seed, Path(policies_dir))
    return data


def ensure_dataset(root: str | Path, task: str, kind: str, rows: int, seed: int, policies_dir: str | Path,
                   progress: Callable[[int, int], None] | None = None) -> Path:
    """The dataset's file, generated first if it is missing or was made by another recipe."""
    path = dataset_path(root, task, kind, rows)
    recipe = _recipe(task, kind, rows, seed, Path(policies_dir))
    if path.is_file() and read_metadata(path) == recipe:
        return path
    if kind == "medium-expert":  # from the parts' files rather than rolling them out again
        parts = [load_d4rl_hdf5(ensure_dataset(root, task, k, rows, seed, policies_dir, progress))
                 for k in ("medium", "expert")]
        return _write(path, concatenate(parts, metadata=recipe))
    return _write(path, generate(task, kind, rows, seed, policies_dir, progress))


def _write(path: Path, dataset: OfflineDataset) -> Path:
    """The HDF5 file written atomically: a reader sees no file or the complete one."""
    with atomic_path(path) as tmp:
        write_d4rl_hdf5(tmp, dataset)
    return path
