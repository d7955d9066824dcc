"""Offline datasets in D4RL's layout, and their files.

A dataset is five aligned arrays with one row per environment step, as D4RL stores them:
``observations [N, obs_dim]``, ``actions [N, act_dim]``, ``rewards [N]`` (float32),
``terminals [N]`` (the step ended the episode by failure) and ``timeouts [N]`` (the episode
was cut by the time limit or by the end of collection), plus ``next_observations`` when known.
Episodes are consecutive rows; one ends after a row whose terminal or timeout flag is set.

Three file formats read into the same object: our own and D4RL's HDF5 files (the five
arrays at the top level), and Minari's HDF5 storage (one group per episode, with one
observation more than steps).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np


ARRAYS = ("observations", "actions", "rewards", "terminals", "timeouts")


class DatasetError(ValueError):
    """A dataset (or the behaviour policies it is made from) that is missing, malformed, or
    not of the expected layout."""


@dataclass
class Trajectory:
    """One episode's rows (views into the dataset's arrays)."""

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminal: bool

    def __len__(self) -> int:
        return len(self.rewards)

    @property
    def episode_return(self) -> float:
        return float(self.rewards.sum(dtype=np.float64))


@dataclass
class OfflineDataset:
    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminals: np.ndarray
    timeouts: np.ndarray
    next_observations: np.ndarray | None = None
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        self.observations = np.asarray(self.observations, dtype=np.float32)
        self.actions = np.asarray(self.actions, dtype=np.float32)
        self.rewards = np.asarray(self.rewards, dtype=np.float32).reshape(-1)
        self.terminals = np.asarray(self.terminals, dtype=bool).reshape(-1)
        self.timeouts = np.asarray(self.timeouts, dtype=bool).reshape(-1)
        if self.next_observations is not None:
            self.next_observations = np.asarray(self.next_observations, dtype=np.float32)
        n = len(self.rewards)
        arrays = {k: getattr(self, k) for k in (*ARRAYS, "next_observations") if getattr(self, k) is not None}
        wrong = {k: len(v) for k, v in arrays.items() if len(v) != n}
        if wrong:
            raise DatasetError(f"arrays must have one row per step ({n} rewards); lengths differ: {wrong}")
        for key in ("observations", "actions"):
            if arrays[key].ndim != 2:
                raise DatasetError(f"{key} must be 2-D [steps, dim], got shape {arrays[key].shape}")

    def __len__(self) -> int:
        return len(self.rewards)

    @property
    def state_dim(self) -> int:
        return self.observations.shape[1]

    @property
    def act_dim(self) -> int:
        return self.actions.shape[1]

    def episode_ends(self) -> np.ndarray:
        """Exclusive end row of every episode; rows after the last flag form a final episode."""
        ends = np.flatnonzero(self.terminals | self.timeouts) + 1
        if len(ends) == 0 or ends[-1] != len(self):
            ends = np.append(ends, len(self)) if len(self) else ends
        return ends

    def trajectories(self) -> list[Trajectory]:
        out, start = [], 0
        for end in self.episode_ends():
            out.append(Trajectory(self.observations[start:end], self.actions[start:end], self.rewards[start:end],
                                  bool(self.terminals[end - 1])))
            start = end
        return out

    def episode_returns(self) -> np.ndarray:
        ends = self.episode_ends()
        sums = np.add.reduceat(self.rewards.astype(np.float64), np.concatenate([[0], ends[:-1]])) if len(ends) else []
        return np.asarray(sums, dtype=np.float64)

    def summary(self) -> dict:
        returns, ends = self.episode_returns(), self.episode_ends()
        lengths = np.diff(np.concatenate([[0], ends]))
        return {"steps": len(self), "episodes": len(ends), "mean_return": float(returns.mean()) if len(returns) else 0.0,
                "std_return": float(returns.std()) if len(returns) else 0.0,
                "max_return": float(returns.max()) if len(returns) else 0.0,
                "min_return": float(returns.min()) if len(returns) else 0.0,
                "mean_length": float(lengths.mean()) if len(lengths) else 0.0,
                "terminal_episodes": int(self.terminals.sum())}


def concatenate(datasets: list[OfflineDataset], metadata: dict | None = None) -> OfflineDataset:
    """Row-wise concatenation (D4RL's medium-expert is medium followed by expert)."""
    nexts = [d.next_observations for d in datasets]
    return OfflineDataset(*(np.concatenate([getattr(d, k) for d in datasets]) for k in ARRAYS),
                          next_observations=None if any(n is None for n in nexts) else np.concatenate(nexts),
                          metadata=metadata or {})


# -- D4RL-style HDF5 ------------------------------------------------------------------

def write_d4rl_hdf5(path: str | Path, dataset: OfflineDataset) -> Path:
    """Write ``dataset`` as a D4RL HDF5 file (arrays at the top level, metadata as JSON in
    the ``metadata`` attribute). Not atomic by itself: the dataset generator writes through
    ``crl_merge.files.atomic_path`` so that a reader sees no file or the complete one."""
    path = Path(path)
    with h5py.File(path, "w") as f:
        for key in (*ARRAYS, "next_observations"):
            value = getattr(dataset, key)
            if value is not None:
                f.create_dataset(key, data=value, compression="gzip", compression_opts=4, shuffle=True)
        f.attrs["metadata"] = json.dumps(dataset.metadata, sort_keys=True)
    return path


def read_metadata(path: str | Path) -> dict:
    """The metadata of one of our HDF5 files without reading its arrays ({} if it has none)."""
    try:
        with h5py.File(path, "r") as f:
            return json.loads(f.attrs["metadata"]) if "metadata" in f.attrs else {}
    except OSError as e:
        raise DatasetError(f"{path}: not a readable HDF5 file ({e})") from e


def load_d4rl_hdf5(path: str | Path) -> OfflineDataset:
    """Read a D4RL HDF5 file (ours or one of D4RL's own ``*-v2.hdf5`` downloads)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such dataset file")
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in ARRAYS if k not in f]
            if missing:
                raise DatasetError(f"{path}: not a D4RL-layout file, missing {missing} (it has {sorted(f.keys())})")
            arrays = {k: f[k][()] for k in ARRAYS}
            nxt = f["next_observations"][()] if "next_observations" in f else None
            meta = json.loads(f.attrs["metadata"]) if "metadata" in f.attrs else {}
    except OSError as e:
        raise DatasetError(f"{path}: not a readable HDF5 file ({e})") from e
    return OfflineDataset(**arrays, next_observations=nxt, metadata=meta)


# -- Minari ---------------------------------------------------------------------------

def minari_data_file(path: str | Path) -> Path:
    """The ``main_data.hdf5`` of a Minari dataset given its folder, its ``data`` folder or the file."""
    path = Path(path)
    for candidate in (path, path / "main_data.hdf5", path / "data" / "main_data.hdf5"):
        if candidate.is_file():
            return candidate
    if any(path.glob("*.parquet")) or ((path / "data").is_dir() and any((path / "data").glob("*.parquet"))):
        raise DatasetError(f"{path}: a Minari dataset stored with the Arrow backend; only the HDF5 backend is read")
    raise DatasetError(f"{path}: no Minari main_data.hdf5 here (looked in the folder and its data/ folder)")


def load_minari(path: str | Path) -> OfflineDataset:
    """Read a Minari dataset (HDF5 backend) into D4RL's layout: each episode's ``T + 1``
    observations become ``T`` observations and ``T`` next observations; ``terminations``
    become terminals and ``truncations`` (without termination) timeouts."""
    file = minari_data_file(path)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in (*ARRAYS, "next_observations")}
    with h5py.File(file, "r") as f:
        episodes = sorted((k for k in f.keys() if k.startswith("episode_")), key=lambda k: int(k.split("_")[1]))
        if not episodes:
            raise DatasetError(f"{file}: no episode_<n> groups; not a Minari HDF5 dataset")
        for name in episodes:
            ep = f[name]
            if not isinstance(ep.get("observations"), h5py.Dataset):
                raise DatasetError(f"{file}: {name}/observations is not an array (dict observations are not supported)")
            obs = ep["observations"][()]
            terminations, truncations = ep["terminations"][()].astype(bool), ep["truncations"][()].astype(bool)
            steps = len(ep["rewards"])
            if len(obs) != steps + 1:
                raise DatasetError(f"{file}: {name} has {len(obs)} observations for {steps} steps (expected steps + 1)")
            parts["observations"].append(obs[:-1])
            parts["next_observations"].append(obs[1:])
            parts["actions"].append(ep["actions"][()])
            parts["rewards"].append(ep["rewards"][()])
            parts["terminals"].append(terminations)
            timeouts = truncations & ~terminations
            timeouts[-1] |= not terminations[-1]  # the episode ends here whatever the flags say
            parts["timeouts"].append(timeouts)
        meta = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()
                if isinstance(v, (str, bytes, int, float))}
    return OfflineDataset(**{k: np.concatenate(v) for k, v in parts.items()}, metadata={"source": "minari", **meta})


def load_dataset(path: str | Path) -> OfflineDataset:
    """A D4RL HDF5 file, or a Minari dataset (its folder or ``main_data.hdf5``)."""
    path = Path(path)
    if path.is_file() and path.name != "main_data.hdf5":
        return load_d4rl_hdf5(path)
    return load_minari(path)
