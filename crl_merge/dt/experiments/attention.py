"""Fig. 4 and Table 2: all attention weights interpolated between two environments' DTs
and evaluated on both; attention replaced by random weights, by either reading of identity
weights (the paper's code's all-ones, and identity matrices), or removed."""

from __future__ import annotations

from itertools import combinations

from crl_merge.dt.surgery import PERTURBATIONS, perturb_attention
from crl_merge.dt.workbench import Workbench
from crl_merge.merge import interpolate


def attention_interpolation(wb: Workbench) -> list[dict]:
    """Attention ``(1 − λ)·θ_a + λ·θ_b`` in each env's own DT (λ = 0: a's attention, 1: b's)."""
    cfg = wb.suite.experiment("attention_interpolation")
    kind, episodes = cfg["dataset"], wb.suite.config["evaluation"]["sweep_episodes"]
    run = wb.experiment_run("attention_interpolation")
    models = {e: wb.single(e, kind) for e in wb.suite.envs}
    original = {e: wb.evaluate(run, f"{e}.original", e, kind, models[e], episodes)["mean_return"] for e in models}
    rows = []
    for a, b in combinations(wb.suite.envs, 2):
        for lam in cfg["lambdas"]:
            for env, merged in ((a, interpolate(models[a], models[b], 1.0 - lam, "attention")),
                                (b, interpolate(models[b], models[a], lam, "attention"))):
                result = wb.evaluate(run, f"{a}-{b}.lambda{lam}.on-{env}", env, kind, merged, episodes)
                rows.append({"pair": f"{a}-{b}", "lambda": lam, "env": env, "return": result["mean_return"],
                             "score": result["mean_score"], "normalized": result["mean_return"] / original[env]})
    return rows


def attention_perturbation(wb: Workbench) -> list[dict]:
    cfg = wb.suite.experiment("attention_perturbation")
    episodes = wb.suite.config["evaluation"]["episodes"]
    run = wb.experiment_run("attention_perturbation")
    rows = []
    for kind in cfg["datasets"]:
        for env in wb.suite.envs:
            model = wb.single(env, kind)
            variants = {"original": model, **{m: perturb_attention(model, m, cfg["seed"]) for m in PERTURBATIONS}}
            for variant, weights in variants.items():
                result = wb.evaluate(run, f"{env}-{kind}.{variant}", env, kind, weights, episodes)
                rows.append({"dataset": kind, "env": env, "variant": variant, "score": result["mean_score"],
                             "return": result["mean_return"]})
    return rows
