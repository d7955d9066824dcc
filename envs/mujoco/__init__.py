"""Offline data for the Decision Transformer track: MuJoCo locomotion tasks (gymnasium v5),
rolling policies out into D4RL-layout data, loaders and a writer for D4RL and Minari files,
and D4RL's normalised score. (Training the behaviour policies and generating the datasets
from them is the DT track's: :mod:`crl_merge.dt.behaviour`, :mod:`crl_merge.dt.datasets`.)"""

from envs.mujoco.datasets import DatasetError, OfflineDataset, load_d4rl_hdf5, load_dataset, load_minari, write_d4rl_hdf5
from envs.mujoco.tasks import DATASET_KINDS, TASKS, MujocoTask, get_task, normalized_score

__all__ = ["DatasetError", "OfflineDataset", "load_d4rl_hdf5", "load_dataset", "load_minari", "write_d4rl_hdf5",
           "DATASET_KINDS", "TASKS", "MujocoTask", "get_task", "normalized_score"]
