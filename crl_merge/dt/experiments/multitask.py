"""Table 3: multi-task DTs by merging (medium data) — attention merged (M), attention+MLP
merged (M), attention+MLP Merge-Freeze-Finetune (MFF), and attention+MLP Fisher-weighted
merging — for every pair of environments and all of them at once, for each way of
initialising the models:

``independent``  each env's DT from its own init seed (the paper's random-init models)
``shared_seed``  every env's DT from the same init seed (a common initialisation)
``cotrained``    one DT co-trained on all envs, then finetuned per env (a shared pre-trained
                 model: our offline substitute for the paper's language-pretrained ChibiT),
                 by default as the paper's per-task finetune (``Workbench.cotrained``)

Values are percentages of each model's pre-merge return; the L2 distance between the
models' attention and MLP weights shows how far apart each initialisation leaves them.

Fisher merging follows the paper's code by default (``fisher: mse_batches``, ``dt_utils.py``):
squared gradients of the batch-mean MSE in batches of ``fisher_batch_size`` windows with
dropout on, each model's Fisher divided by its own total over the transformer blocks before
weighting (``fisher_normalise``). ``fisher: sampled_gaussian`` is our first estimator: the
Fisher of a unit-variance Gaussian policy, one sampled action per window."""

from __future__ import annotations

from itertools import combinations

import numpy as np

from crl_merge.dt.surgery import merged_models, multitask_size, subset_of
from crl_merge.dt.workbench import Workbench, single_env
from crl_merge.merge import dt_diagonal_fisher, dt_mse_fisher, l2_distance, normalise_fisher
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


FISHER_TOTAL_OVER = r"^transformer\.blocks\."  # the paper's code keeps the Fisher of the blocks only


def _fisher(wb: Workbench, run, init: str, env: str, kind: str, weights) -> dict:
    """The DT's diagonal Fisher on ``fisher_windows`` context windows of its own data
    (cached), normalised if the suite says so."""
    cfg = wb.suite.experiment("multitask")
    artifact = f"fisher-{init}-{env}"  # no dots: checkpoint stems end at a dot
    if run.has(artifact):
        fisher = run.load_tensors(artifact)[0]
    else:
        model = DecisionTransformer(wb.suite.dt_config([env]))
        model.load_state_dict(single_env(weights, env))
        rng = np.random.default_rng(wb.suite.init_seed(env))
        with wb.job(f"fisher {init} {env}", 1):
            if cfg["fisher"] == "mse_batches":
                size, windows = cfg["fisher_batch_size"], cfg["fisher_windows"]
                batches = [wb.sampler(env, kind).sample(min(size, windows - start), rng)
                           for start in range(0, windows, size)]
                fisher = dt_mse_fisher(model, env, [(b.states, b.actions, b.returns_to_go, b.timesteps, b.mask)
                                                    for b in batches], seed=0)
            else:
                b = wb.sampler(env, kind).sample(cfg["fisher_windows"], rng)
                fisher = dt_diagonal_fisher(model, env, b.states, b.actions, b.returns_to_go, b.timesteps, b.mask,
                                            seed=0)
        run.save_tensors(artifact, fisher, {"estimator": cfg["fisher"], "env": env, "init": init})
    return normalise_fisher(fisher, FISHER_TOTAL_OVER) if cfg["fisher_normalise"] else fisher


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
        fishers = {e: _fisher(wb, run, init, e, kind, models[e]) for e in envs}
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

