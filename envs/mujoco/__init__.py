"""Offline data for the Decision Transformer track: MuJoCo locomotion tasks (gymnasium v5),
SAC behaviour policies, D4RL-style datasets generated from them, loaders for D4RL and
Minari files, and D4RL's normalised score."""

from envs.mujoco.datasets import DatasetError, OfflineDataset, load_d4rl_hdf5, load_dataset, load_minari, write_d4rl_hdf5
from envs.mujoco.generate import dataset_path, ensure_dataset, generate
from envs.mujoco.tasks import DATASET_KINDS, TASKS, MujocoTask, get_task, normalized_score

__all__ = ["DatasetError", "OfflineDataset", "load_d4rl_hdf5", "load_dataset", "load_minari", "write_d4rl_hdf5",
           "dataset_path", "ensure_dataset", "generate", "DATASET_KINDS", "TASKS", "MujocoTask", "get_task",
           "normalized_score"]
