"""Table 3: multi-task DTs by merging (medium data) — attention merged (M), attention+MLP
merged (M), attention+MLP Merge-Freeze-Finetune (MFF), and attention+MLP Fisher-weighted
merging — for every pair of environments and all of them at once, for each way of
initialising the models:

``independent``  each env's DT from its own init seed (the paper's random-init models)
``shared_seed``  every env's DT from the same init seed (a common initialisation)
``cotrained``    one DT co-trained on all envs, then finetuned per env (a shared pre-trained
                 model: our offline substitute for the paper's language-pretrained ChibiT)

Values are percentages of each model's pre-merge return; the L2 distance between the
models' attention and MLP weights shows how far apart each initialisation leaves them."""

from __future__ import annotations

from itertools import combinations

import numpy as np

from crl_merge.dt.surgery import merged_models, multitask_size, subset_of
from crl_merge.dt.workbench import Workbench, single_env
from crl_merge.merge import dt_diagonal_fisher, l2_distance
from crl_merge.models import DecisionTransformer

METHODS = (("attention", "M"), ("attention+mlp", "M"), ("attention+mlp", "MFF"), ("attention+mlp", "Fisher M"))


def group_members(envs: list[str]) -> list[list[str]]:
    """Every pair of environments, then all of them."""
    return [list(pair) for pair in combinations(envs, 2)] + [list(envs)]


def group_name(members: list[str], envs: list[str]) -> str:
    return "all" if len(members) == len(envs) else "-".join(members)


def _models(wb: Workbench, init: str, kind: str) -> dict:
    if init == "cotrained":
        return {e: wb.cotrained(e, kind) for e in wb.suite.envs}
    return {e: wb.single(e, kind, init=init) for e in wb.suite.envs}


def _fisher(wb: Workbench, run, init: str, env: str, kind: str, weights, windows: int) -> dict:
    """The DT's diagonal Fisher on ``windows`` context windows of its own data (cached)."""
    artifact = f"fisher-{init}-{env}"  # no dots: checkpoint stems end at a dot
    if run.has(artifact):
        return run.load_tensors(artifact)[0]
    model = DecisionTransformer(wb.suite.dt_config([env]))
    model.load_state_dict(single_env(weights, env))
    batch = wb.sampler(env, kind).sample(windows, np.random.default_rng(wb.suite.init_seed(env)))
    with wb.job(f"fisher {init} {env}", 1):
        fisher = dt_diagonal_fisher(model, env, batch.states, batch.actions, batch.returns_to_go, batch.timesteps,
                                    batch.mask, seed=0)
    run.save_tensors(artifact, fisher, {"windows": windows, "env": env, "init": init})
    return fisher


def multitask(wb: Workbench) -> list[dict]:
    cfg = wb.suite.experiment("multitask")
    kind, envs = cfg["dataset"], wb.suite.envs
    episodes = wb.suite.config["evaluation"]["episodes"]
    run = wb.experiment_run("multitask")
    rows = []
    for init in cfg["inits"]:
        models = _models(wb, init, kind)
        original = {e: wb.evaluate(run, f"{init}.{e}.original", e, kind, models[e], episodes) for e in envs}
        for e in envs:
            rows.append({"row": "original", "init": init, "env": e, "score": original[e]["mean_score"],
                         "return": original[e]["mean_return"]})
        for a, b in combinations(envs, 2):
            for subset_name in ("attention", "mlp", "transformer"):
                rows.append({"row": "distance", "init": init, "pair": f"{a}-{b}", "subset": subset_name,
                             "l2": l2_distance(models[a], models[b], subset_name)})
        fishers = {e: _fisher(wb, run, init, e, kind, models[e], cfg["fisher_windows"]) for e in envs}
        for group in group_members(envs):
            name = group_name(group, envs)
            members = {e: models[e] for e in group}
            for subset_name, method in METHODS:
                subset = subset_of(subset_name)
                merged = merged_models(members, subset, {e: fishers[e] for e in group} if method == "Fisher M" else None)
                for env in group:
                    weights = merged[env]
                    if method == "MFF":
                        weights = wb.finetune(f"{init}-{name}-{subset_name}", env, kind, weights, subset)
                    key = f"{init}.{name}.{subset_name}.{method}.on-{env}"
                    result = wb.evaluate(run, key, env, kind, weights, episodes)
                    rows.append({"row": "merge", "init": init, "group": name, "subset": subset_name,
                                 "method": method, "env": env, "score": result["mean_score"],
                                 "percent": 100.0 * result["mean_return"] / original[env]["mean_return"],
                                 "size": multitask_size(models[env], subset, len(group))})
    return rows

