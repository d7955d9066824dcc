"""Table 1: Merge-Freeze-Finetune between two environments' DTs (expert data): merge a
subset, freeze it, finetune the rest of each model on its own data; against merging alone
and against one model's whole transformer copied, frozen, into the other."""

from __future__ import annotations

from crl_merge.dt.surgery import merged_models, multitask_size, subset_of
from crl_merge.dt.workbench import Workbench
from crl_merge.merge import select

MFF_SUBSETS = ("transformer", "attention+mlp", "attention")


def configurations(a: str, b: str) -> list[str]:
    """Table 1's rows, in the paper's order."""
    return ["Original", f"Frozen Transformer from {a}", f"Frozen Transformer from {b}",
            *(f"{s} (MFF)" for s in MFF_SUBSETS), "attention (M)"]


def merge_freeze_finetune(wb: Workbench) -> list[dict]:
    cfg = wb.suite.experiment("merge_freeze_finetune")
    kind, (a, b) = cfg["dataset"], cfg["pair"]
    episodes = wb.suite.config["evaluation"]["episodes"]
    run = wb.experiment_run("merge_freeze_finetune")
    models = {a: wb.single(a, kind), b: wb.single(b, kind)}
    original = {e: wb.evaluate(run, f"{e}.original", e, kind, models[e], episodes)["mean_return"] for e in models}

    def percent(env: str, key: str, weights) -> float:
        return 100.0 * wb.evaluate(run, key, env, kind, weights, episodes)["mean_return"] / original[env]

    rows = [{"configuration": "Original", a: 100.0, b: 100.0, "size": 2.0}]
    for donor, receiver in ((a, b), (b, a)):  # one model's transformer, frozen, in the other
        trunk = {k: models[donor][k] for k in select(models[donor], "transformer")}
        tuned = wb.finetune(f"frozen-from-{donor}", receiver, kind, {**models[receiver], **trunk}, ["transformer"])
        rows.append({"configuration": f"Frozen Transformer from {donor}", donor: 100.0,
                     receiver: percent(receiver, f"{receiver}.frozen-from-{donor}", tuned), "size": 1.0})
    for subset_name in MFF_SUBSETS:
        subset = subset_of(subset_name)
        merged = merged_models(models, subset)
        row = {"configuration": f"{subset_name} (MFF)", "size": multitask_size(models[a], subset, 2)}
        for env in (a, b):
            tuned = wb.finetune(f"mff-{a}-{b}-{subset_name}", env, kind, merged[env], subset)
            row[env] = percent(env, f"{env}.mff-{subset_name}", tuned)
        rows.append(row)
    merged = merged_models(models, subset_of("attention"))
    rows.append({"configuration": "attention (M)", "size": multitask_size(models[a], ["attention"], 2),
                 **{env: percent(env, f"{env}.merged-attention", merged[env]) for env in (a, b)}})
    for row in rows:
        row["original_return"] = dict(original)
    return rows
