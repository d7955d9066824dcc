"""Figs. 1-3: merging one transformer layer at a time (``θ_t ← (1 − p)·θ_t + p·θ_s``) for
every ordered pair of environments, the L2 distance between the pair's layers, and the
merged set grown layer by layer in depth. Returns are relative to the target's own
(pre-merge) return, as the paper plots them."""

from __future__ import annotations

from itertools import combinations, permutations

from crl_merge.dt.surgery import layer_units, merge_into
from crl_merge.dt.workbench import Workbench
from crl_merge.merge import l2_distance


def _setup(wb: Workbench, name: str):
    cfg = wb.suite.experiment(name)
    kind, episodes = cfg["dataset"], wb.suite.config["evaluation"]["sweep_episodes"]
    run = wb.experiment_run(name)
    models = {e: wb.single(e, kind) for e in wb.suite.envs}
    original = {e: wb.evaluate(run, f"{e}.original", e, kind, models[e], episodes)["mean_return"] for e in models}
    return cfg, kind, episodes, run, models, original


def single_layer(wb: Workbench) -> list[dict]:
    cfg, kind, episodes, run, models, original = _setup(wb, "single_layer")
    units = layer_units(wb.suite.config["model"]["n_layer"])
    rows = []
    for target, source in permutations(wb.suite.envs, 2):
        for unit, regex in units:
            for p in cfg["p"]:
                merged = merge_into(models[target], models[source], regex, p)
                result = wb.evaluate(run, f"{target}.from-{source}.{unit}.p{p}", target, kind, merged, episodes)
                rows.append({"row": "merge", "target": target, "source": source, "unit": unit, "p": p,
                             "return": result["mean_return"], "original_return": original[target],
                             "normalized": result["mean_return"] / original[target]})
    for a, b in combinations(wb.suite.envs, 2):
        for unit, regex in units:
            rows.append({"row": "distance", "pair": f"{a}-{b}", "unit": unit,
                         "l2": l2_distance(models[a], models[b], regex)})
    return rows


def incremental(wb: Workbench) -> list[dict]:
    cfg, kind, episodes, run, models, original = _setup(wb, "incremental")
    units = layer_units(wb.suite.config["model"]["n_layer"])
    rows = []
    for source, target in cfg["pairs"]:
        for count in range(1, len(units) + 1):
            merged = merge_into(models[target], models[source], [regex for _, regex in units[:count]], cfg["p"])
            result = wb.evaluate(run, f"{target}.from-{source}.first{count}.p{cfg['p']}", target, kind, merged, episodes)
            rows.append({"target": target, "source": source, "layers": count, "last_unit": units[count - 1][0],
                         "p": cfg["p"], "return": result["mean_return"], "original_return": original[target],
                         "normalized": result["mean_return"] / original[target]})
    return rows
