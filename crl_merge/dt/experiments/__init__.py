"""The paper's experiments, each a function of a :class:`~crl_merge.dt.workbench.Workbench`
returning rows (dicts) that :mod:`crl_merge.dt.report` turns into tables and figures."""

from crl_merge.dt.experiments.attention import attention_interpolation, attention_perturbation
from crl_merge.dt.experiments.layers import incremental, single_layer
from crl_merge.dt.experiments.mff import merge_freeze_finetune
from crl_merge.dt.experiments.multitask import multitask

EXPERIMENTS = {
    "single_layer": single_layer,
    "incremental": incremental,
    "attention_interpolation": attention_interpolation,
    "attention_perturbation": attention_perturbation,
    "merge_freeze_finetune": merge_freeze_finetune,
    "multitask": multitask,
}

__all__ = ["EXPERIMENTS"]
