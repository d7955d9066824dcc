"""The leaderboard of a suite run: every merge placed against the upper bound and the random
agent on the super-task (the thesis's tables 4.6–4.12), with the sub-task models' own-task
results (tables 4.2–4.5), the cross-evaluation, the analysis tasks, and figures.

Everything is read back from the run store; nothing is trained or evaluated here.
"""

from __future__ import annotations

import math
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from crl_merge.checkpoint import code_version
from crl_merge.files import atomic_write_bytes, atomic_write_text
from crl_merge.procgen import layout
from crl_merge.procgen.plan import ContinualRow
from crl_merge.procgen.ppo.curve import read_curve
from crl_merge.procgen.continual import continual_jobs, learner_jobs
from crl_merge.procgen.protocol import merge_jobs
from crl_merge.procgen.runs import merged_model_evaluations
from crl_merge.procgen.suite import SUPER, Suite
from crl_merge.stats import interval, performance_profile as profile_with_band, probability_of_improvement
from crl_merge.store import RunStore, StoreError
from crl_merge.tables import markdown_table

MAIN_COLUMNS = ["row", "kind", "round", "method", "alpha", "direction", "beyond_thesis", "n", "episodes",
                "mean_return", "std_return", "ci95", "score", "thesis", "run_mean_low", "run_mean_high", "iqm",
                "iqm_low", "iqm_high", "p_over_average"]
BASELINE = "average-a0.5"  # the thesis's weight averaging: what the probability of improvement is against


class MissingResults(StoreError):
    """The store lacks results the report needs: the suite has not been run (fully) yet."""


@dataclass
class Results:
    """Evaluation records read from the store, one list per group of models."""

    models: dict[str, dict[str, dict]]       # model name → eval task → record
    model_task: dict[str, str]               # model name → the task it was trained on
    random: dict[str, dict]                  # eval task → record
    merges: dict[tuple[str, str], list[dict[str, dict]]]  # (round, row id) → per merge: eval task → record
    methods: dict[str, object]               # row id → MergeMethod, or ContinualRow for a continual row
    curves: dict[str, list[dict]]            # model name → learning-curve rows
    sources: dict[tuple[str, str], list[tuple[str, str]]]  # (round, row id) → per merge: its two models' names
    # (round, continual row id) → per pair: each learner's (grid model name, task key, learning-curve rows)
    learner_curves: dict[tuple[str, str], list[list[tuple[str, str, list[dict]]]]]


def _evals(store: RunStore, parts: tuple[str, ...], tasks) -> dict[str, dict]:
    run = store.existing(*parts)
    missing = [t for t in tasks if run is None or not run.has(layout.evaluation(t))]
    if missing:
        raise MissingResults(f"{store.path(*parts)}: no evaluation on {missing} yet; run `crl-merge run` first")
    return {t: run.load_json(layout.evaluation(t)) for t in tasks}


def collect(suite: Suite, store: RunStore) -> Results:
    tasks = list(suite.tasks)
    models, model_task, curves = {}, {}, {}
    for job in suite.grid():
        parts = layout.training_parts(suite, job)
        models[job.model_name] = _evals(store, parts, tasks)
        model_task[job.model_name] = job.task_key
        curves[job.model_name] = read_curve(store.path(*parts) / "curve.csv")
    random = _evals(store, layout.random_parts(suite), tasks)
    merges, methods, sources, learner_curves = {}, {}, {}, {}
    merged_tasks = [key for key, _ in merged_model_evaluations(suite)]
    jobs = [(layout.merge_parts(suite, *job), *job) for job in merge_jobs(suite)]
    jobs += [(layout.continual_parts(suite, *job), *job) for job in continual_jobs(suite)]
    for parts, round_name, method, a, b in jobs:  # continual rows after the merges, as the leaderboard lists them
        merges.setdefault((round_name, method.row_id), []).append(_evals(store, parts, merged_tasks))
        sources.setdefault((round_name, method.row_id), []).append((a.model_name, b.model_name))
        methods[method.row_id] = method
        if isinstance(method, ContinualRow):
            learners = learner_jobs(method, a, b)[:2 if method.protocol == "federated" else 1]
            learner_curves.setdefault((round_name, method.row_id), []).append(
                [(job.model_name, job.task_key, read_curve(store.path(*parts) / f"curve-{job.model_name}.csv"))
                 for job in learners])
    return Results(models, model_task, random, merges, methods, curves, sources, learner_curves)


def pooled(records: list[dict]) -> dict:
    """Mean and std over all episodes of the records; the 95% CI is a t-interval over the
    records' means (models or merges are the replicates), or over episodes for one record."""
    returns = np.concatenate([r["returns"] for r in records])
    lengths = np.concatenate([r["lengths"] for r in records])
    means = np.array([r["mean_return"] for r in records])
    if len(records) > 1:
        ci = float(stats.t.ppf(0.975, len(means) - 1) * means.std(ddof=1) / math.sqrt(len(means)))
    else:
        ci = records[0]["ci95_return"]
    return {"n": len(records), "episodes": len(returns), "mean_return": float(returns.mean()),
            "std_return": float(returns.std()), "ci95": ci, "mean_length": float(lengths.mean())}


def over_runs(records: list[dict]) -> dict:
    """rliable's statistics over the runs (models or merges) of a row: the mean and the
    interquartile mean of their mean returns, each with a bootstrap 95% interval."""
    runs = np.array([r["mean_return"] for r in records])
    _, mean_low, mean_high = interval(runs, "mean")
    point, iqm_low, iqm_high = interval(runs, "iqm")
    return {"run_mean_low": mean_low, "run_mean_high": mean_high, "iqm": point, "iqm_low": iqm_low,
            "iqm_high": iqm_high}


def leaderboard(suite: Suite, results: Results) -> pd.DataFrame:
    """The main table: everything on the super-task, best first."""
    ref = suite.reference
    def both(records):
        return {**pooled(records), **over_runs(records)}

    rows = [{"row": "upper_bound", "kind": "upper bound (super-task models)",
             **both([e[SUPER] for m, e in results.models.items() if results.model_task[m] == SUPER])}]
    for task in suite.sub_tasks:
        rows.append({"row": f"on_super/{task}", "kind": f"{task} models on the super-task",
                     **both([e[SUPER] for m, e in results.models.items() if results.model_task[m] == task])})
    for (round_name, row_id), merges in results.merges.items():
        method = results.methods[row_id]
        baseline = results.merges.get((round_name, BASELINE))
        rows.append({"row": f"{round_name}/{row_id}", "kind": _kind(method), "round": round_name,
                     "method": method.method, "alpha": method.alpha, "direction": _direction(method),
                     "beyond_thesis": method.beyond_thesis, **both([m[SUPER] for m in merges]),
                     "p_over_average": None if baseline is None else probability_of_improvement(
                         [m[SUPER]["mean_return"] for m in merges], [m[SUPER]["mean_return"] for m in baseline]),
                     **retention(suite, results, round_name, row_id),
                     **forward_transfer(results, round_name, row_id)})
    rows.append({"row": "random", "kind": "random agent", **both([results.random[SUPER]])})
    table = pd.DataFrame(rows)
    ub = table.loc[table.row == "upper_bound", "mean_return"].item()
    rnd = table.loc[table.row == "random", "mean_return"].item()
    table["score"] = 100 * (table.mean_return - rnd) / (ub - rnd) if ub != rnd else float("nan")
    table["thesis"] = [ref.get(r) for r in table.row]
    columns = MAIN_COLUMNS + ([f"retention/{t}" for t in suite.sub_tasks]
                              if suite.evaluation.retention_episodes is not None else [])
    columns += [f"forward_transfer/{t}" for t in suite.sub_tasks] if results.learner_curves else []
    return table.reindex(columns=columns).sort_values("mean_return", ascending=False, ignore_index=True)


def _kind(method) -> str:
    if isinstance(method, ContinualRow):
        return f"continual ({method.protocol})"
    return "ensemble (not a merge)" if method.method == "ensemble" else "merge"


def _direction(method) -> str | None:
    if isinstance(method, ContinualRow):
        return method.direction if method.protocol == "checkpoint" or method.method == "rebasin" else None
    return method.direction if "directions" in method.info.settings else None


def retention(suite: Suite, results: Results, round_name: str, row_id: str) -> dict[str, float]:
    """``retention/<sub-task>``: how much of its source model's skill a merged (or continual)
    model keeps on each sub-task, 100·(R − R_random)/(R_source − R_random), where R_source is
    the pair's model trained on that sub-task, on its own task (100: all of it; 0: no better
    than random; forgetting, after Continual World, is 100 − retention). Averaged over the
    row's merges; empty without ``evaluation.retention_episodes``."""
    if suite.evaluation.retention_episodes is None:
        return {}
    out = {}
    for i, task in enumerate(suite.sub_tasks):
        rnd = results.random[task]["mean_return"]
        values = []
        for merge, pair in zip(results.merges[round_name, row_id], results.sources[round_name, row_id]):
            source = results.models[pair[i]][task]["mean_return"]
            values.append(100 * (merge[task]["mean_return"] - rnd) / (source - rnd) if source != rnd else math.nan)
        out[f"retention/{task}"] = float(np.mean(values))
    return out


def forward_transfer(results: Results, round_name: str, row_id: str) -> dict[str, float]:
    """``forward_transfer/<sub-task>`` of a continual row: how much faster its learner on that
    sub-task learned than the grid's model of the same task and seeds trained alone, after
    Continual World (:func:`forward_transfer_score`). Averaged over the row's pairs; only for
    the sub-tasks the protocol trains a learner on (federated: both; checkpoint: A's)."""
    if (round_name, row_id) not in results.learner_curves:
        return {}
    values: dict[str, list[float]] = {}
    for learners in results.learner_curves[round_name, row_id]:
        for model_name, task, curve in learners:
            values.setdefault(task, []).append(forward_transfer_score(
                curve, results.curves[model_name], results.random[task]["mean_return"],
                results.models[model_name][task]["mean_return"]))
    return {f"forward_transfer/{task}": float(np.mean(v)) for task, v in values.items()}


def forward_transfer_score(curve: list[dict], reference: list[dict], random_return: float,
                           source_return: float) -> float:
    """Continual World's forward transfer, 100·(AUC − AUC_ref)/(1 − AUC_ref), for returns: each
    learning curve (rolling mean training return against steps) is normalised to
    p = (R − R_random)/(R_source − R_random), R_source being the reference model's evaluated
    return on its task, and AUC is the mean of p over the steps both curves logged. 0: learned
    as fast as alone; 100: at the reference's final skill from the first update; < 0: slower."""
    if source_return == random_return:
        return math.nan
    ref = {row["step"]: row["rolling_return"] for row in reference}
    pairs = np.array([(row["rolling_return"], ref[row["step"]]) for row in curve if row["step"] in ref])
    pairs = pairs[np.isfinite(pairs).all(axis=1)] if len(pairs) else pairs
    if not len(pairs):
        return math.nan
    auc, auc_ref = ((pairs - random_return) / (source_return - random_return)).mean(axis=0)
    return float(100 * (auc - auc_ref) / (1 - auc_ref)) if auc_ref != 1 else math.nan


def own_task_table(suite: Suite, results: Results) -> pd.DataFrame:
    """Tables 4.2–4.5: each sub-task model on its own task, and the overall pool."""
    rows = []
    for task in (SUPER, *suite.sub_tasks):
        names = [m for m in results.models if results.model_task[m] == task]
        for name in names:
            rows.append({"task": task, "model": name, **pooled([results.models[name][task]])})
        rows.append({"task": task, "model": "overall", **pooled([results.models[m][task] for m in names]),
                     "thesis": suite.reference.get(f"own/{task}")})
    return pd.DataFrame(rows)


def cross_table(suite: Suite, results: Results) -> pd.DataFrame:
    """Mean return and episode length of each group of models on every task of the suite."""
    rows = []
    for trained_on in (SUPER, *suite.sub_tasks, "random"):
        for task in suite.tasks:
            records = ([results.random[task]] if trained_on == "random" else
                       [e[task] for m, e in results.models.items() if results.model_task[m] == trained_on])
            p = pooled(records)
            rows.append({"trained_on": trained_on, "task": task, "mean_return": p["mean_return"],
                         "mean_length": p["mean_length"], "episodes": p["episodes"],
                         "thesis_return": suite.reference.get(f"cross/{trained_on}->{task}"),
                         "thesis_length": suite.reference.get(f"length/cross/{trained_on}->{task}")})
    return pd.DataFrame(rows)


def analysis_table(suite: Suite, results: Results) -> pd.DataFrame:
    """Episode lengths on the analysis tasks (e.g. ``fruitbot/empty``: can a merge still pass walls?)."""
    rows = []
    for task in suite.analysis_tasks:
        groups = {"upper_bound": [e[task] for m, e in results.models.items() if results.model_task[m] == SUPER]}
        groups |= {f"{t} models": [e[task] for m, e in results.models.items() if results.model_task[m] == t]
                   for t in suite.sub_tasks}
        groups |= {f"{r}/{row_id}": [m[task] for m in merges] for (r, row_id), merges in results.merges.items()}
        groups["random"] = [results.random[task]]
        for name, records in groups.items():
            p = pooled(records)
            rows.append({"task": task, "row": name, "n": p["n"], "mean_length": p["mean_length"],
                         "mean_return": p["mean_return"], "thesis_length": suite.reference.get(f"length/{task}/{name}")})
    return pd.DataFrame(rows)


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else ""
    if isinstance(value, (float, np.floating)):
        return f"{value:.2f}"
    return str(value)


def markdown(table: pd.DataFrame) -> str:
    return markdown_table(list(table.columns), ([_cell(v) for v in row] for row in table.itertuples(index=False)))


def figures(suite: Suite, results: Results, board: pd.DataFrame, cross: pd.DataFrame, out: Path) -> list[str]:
    """Return along α per round (aligned and unaligned; when there are merges), learning
    curves, cross-evaluation heatmap. Returns the file names written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    first, second = suite.sub_tasks
    rounds = [r for r in suite.merge.rounds if any(key[0] == r for key in results.merges)]
    if rounds:
        fig, axes = plt.subplots(1, len(rounds), figsize=(5 * len(rounds), 3.6), squeeze=False)
        end_a = board.loc[board.row == f"on_super/{first}", "mean_return"].item()
        end_b = board.loc[board.row == f"on_super/{second}", "mean_return"].item()
        for ax, round_name in zip(axes[0], rounds):
            for method, label in (("average", "unaligned (weight averaging)"), ("rebasin", "aligned (Re-Basin, ab)")):
                picked = board[(board["round"] == round_name) & (board.method == method) & (board.kind == "merge")
                               & (board.direction.isin(["ab"]) | board.direction.isna())]
                points = sorted([(0.0, end_b), (1.0, end_a), *zip(picked.alpha, picked.mean_return)])
                ax.plot(*zip(*points), marker="o", label=label)
            for row, style in (("upper_bound", "--"), ("random", ":")):
                ax.axhline(board.loc[board.row == row, "mean_return"].item(), color="grey", linestyle=style, label=row)
            ax.set(title=f"{suite.name}: {round_name}", xlabel=f"α (1 = {first} model, 0 = {second} model)",
                   ylabel="mean return on the super-task")
        axes[0][0].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "alpha.png", dpi=110)
        written.append("alpha.png")

    tasks = [SUPER, *suite.sub_tasks]
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.5 * len(tasks), 3.4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for name, curve in results.curves.items():
            if results.model_task[name] == task:
                ax.plot([r["step"] for r in curve], [r["rolling_return"] for r in curve], label=name)
        ax.set(title=suite.tasks[task].name, xlabel="environment steps", ylabel="mean return, last 100 episodes")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=110)
    written.append("curves.png")

    if profile := performance_profile(suite, results, out):
        written.append(profile)

    matrix = cross.pivot(index="trained_on", columns="task", values="mean_return")
    matrix = matrix.reindex(index=[SUPER, *suite.sub_tasks, "random"], columns=list(suite.tasks))
    fig, ax = plt.subplots(figsize=(1.4 * len(matrix.columns) + 2, 1.0 * len(matrix) + 1))
    ax.imshow(matrix.values, cmap="viridis")
    ax.set_xticks(range(len(matrix.columns)), matrix.columns)
    ax.set_yticks(range(len(matrix.index)), [f"{i} models" if i != "random" else i for i in matrix.index])
    for (i, j), value in np.ndenumerate(matrix.values):
        ax.text(j, i, f"{value:.1f}", ha="center", va="center", color="white" if value < np.nanmean(matrix.values) else "black")
    ax.set(xlabel="evaluated on", title=f"{suite.name}: cross-evaluation (mean return)")
    fig.tight_layout()
    fig.savefig(out / "cross_eval.png", dpi=110)
    written.append("cross_eval.png")
    plt.close("all")
    return written


def run_scores(suite: Suite, results: Results) -> dict[str, np.ndarray]:
    """Each run's (model's or merge's) score on the super-task, 100·(R − R_random)/(R_UB − R_random),
    for the upper bound, the sub-task models, the thesis's two methods at α = 0.5 and every
    continual row, per round."""
    rnd = results.random[SUPER]["mean_return"]
    ub = np.mean([e[SUPER]["mean_return"] for m, e in results.models.items() if results.model_task[m] == SUPER])
    groups = {"upper_bound": [e[SUPER] for m, e in results.models.items() if results.model_task[m] == SUPER]}
    groups |= {f"on_super/{t}": [e[SUPER] for m, e in results.models.items() if results.model_task[m] == t]
               for t in suite.sub_tasks}
    groups |= {f"{r}/{row_id}": [m[SUPER] for m in merges] for (r, row_id), merges in results.merges.items()
               if row_id in (BASELINE, "rebasin-a0.5-ab") or isinstance(results.methods[row_id], ContinualRow)}
    return {name: 100 * (np.array([r["mean_return"] for r in records]) - rnd) / (ub - rnd)
            for name, records in groups.items()} if ub != rnd else {}


def performance_profile(suite: Suite, results: Results, out: Path) -> str | None:
    """rliable's performance profile: for each row, the fraction of its runs whose score
    exceeds τ, against τ, with its bootstrap 95% band (:func:`crl_merge.stats.performance_profile`;
    wide with the few runs of a small preset). Returns the file name, or None when the scores
    are undefined."""
    import matplotlib.pyplot as plt

    scores = run_scores(suite, results)
    if not scores:
        return None
    taus = np.linspace(min(v.min() for v in scores.values()) - 5, max(v.max() for v in scores.values()) + 5, 400)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    colours = plt.cm.tab20(np.linspace(0, 1, len(scores)))
    for (name, values), colour in zip(scores.items(), colours):
        fraction, low, high = profile_with_band(values, taus)
        ax.plot(taus, fraction, label=f"{name} (n = {len(values)})", color=colour,
                linestyle="--" if name == "upper_bound" or name.startswith("on_super/") else "-")
        ax.fill_between(taus, low, high, color=colour, alpha=0.12, linewidth=0)
    ax.set(title=f"{suite.name}: performance profile on the super-task", xlabel="score τ (random = 0, upper bound = 100)",
           ylabel="fraction of runs with score > τ")
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out / "profile.png", dpi=110)
    return "profile.png"


def latex_table(board: pd.DataFrame) -> str:
    """The main table for a paper (booktabs): mean return ± 95% CI, the thesis's figure in
    parentheses, the IQM with its interval, the score."""
    def escape(text: str) -> str:
        return str(text).replace("_", r"\_").replace("%", r"\%")

    lines = [r"\begin{tabular}{lrrrr}", r"\toprule",
             r"row & $n$ & mean return (thesis) & IQM [95\% CI] & score \\", r"\midrule"]
    for row in board.itertuples(index=False):
        thesis = "" if pd.isna(row.thesis) else f" ({row.thesis:.2f})"
        ci = "" if pd.isna(row.ci95) else f" $\\pm$ {row.ci95:.2f}"
        score = "" if pd.isna(row.score) else f"{row.score:.0f}"
        lines.append(f"{escape(row.row)} & {row.n} & {row.mean_return:.2f}{ci}{thesis} & "
                     f"{row.iqm:.2f} [{row.iqm_low:.2f}, {row.iqm_high:.2f}] & {score} \\\\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


REPORT_FORMATS = ("md", "csv", "latex")


def write_report(suite: Suite, store: RunStore, out: Path, command: str | None = None,
                 formats=("md", "csv")) -> pd.DataFrame:
    """Write the leaderboard (``leaderboard.md`` with every table and the figures,
    ``leaderboard.csv``, ``leaderboard.tex``, as ``formats`` ask) into ``out``; returns the main table."""
    results = collect(suite, store)
    board = leaderboard(suite, results)
    own, cross, analysis = own_task_table(suite, results), cross_table(suite, results), analysis_table(suite, results)
    out.mkdir(parents=True, exist_ok=True)
    images = figures(suite, results, board, cross, out)
    t, e = suite.training, suite.evaluation
    command = command or " ".join(shlex.quote(a) for a in ["crl-merge", *sys.argv[1:]])
    warning = [f"**Warning**: {w}"] if (w := upper_bound_warning(board)) else []
    warning += [r] if (r := resolution(board)) else []
    sections = [
        f"# {suite.name} leaderboard, preset `{suite.preset}`",
        f"Made by `{command}` with crl-merge {code_version()} from the run store `{store.root}`. Scale: "
        f"{t.total_steps:,} environment steps per model, {t.seeds_per_task} seed pair(s) per task, "
        f"{e.episodes} evaluation episodes per model on its own task ({e.cross_episodes} on "
        f"other tasks, counted by the `{e.rule}` rule), evaluation level seed {e.level_seed}, {e.actions} actions. "
        f"`thesis` is the thesis's figure for the row (25M steps, 5 seeds, 5000 episodes).",
        "## On the super-task", "score = 100·(R − R_random)/(R_UB − R_random); n = models or merges pooled; "
        "95% CI over their means (over episodes when n = 1). Over runs, after rliable: `run_mean_low/high` and "
        "`iqm_low/high` are percentile-bootstrap 95% intervals of the mean and the interquartile mean of the "
        f"runs' mean returns (crude with few runs); `p_over_average` is P(a merge of the row beats a `{BASELINE}` "
        "merge of its round).", *warning, markdown(board),
        "## Each model on its own task (thesis tables 4.2–4.5)", markdown(own),
        "## Cross-evaluation: return and episode length on every task", markdown(cross)]
    if len(analysis):
        sections += ["## Analysis tasks: episode lengths", markdown(analysis)]
    sections += ["## Figures", *(f"![{name}]({name})" for name in images)]
    if "md" in formats:
        atomic_write_text(out / "leaderboard.md", "\n\n".join(sections) + "\n")
    if "csv" in formats:
        atomic_write_bytes(out / "leaderboard.csv", board.to_csv(index=False).encode())
    if "latex" in formats:
        atomic_write_text(out / "leaderboard.tex", latex_table(board))
    return board


def upper_bound_warning(board: pd.DataFrame) -> str | None:
    """A sentence when the upper bound does not beat the random agent: then the scores mean
    nothing (too little training for this preset, or a broken task)."""
    ub = board.loc[board.row == "upper_bound", "mean_return"].item()
    rnd = board.loc[board.row == "random", "mean_return"].item()
    if ub > rnd:
        return None
    return (f"the upper bound ({ub:.2f}) is not above the random agent ({rnd:.2f}), so the scores are "
            "meaningless; train longer (a larger preset) before reading this table")


def resolution(board: pd.DataFrame) -> str | None:
    """How well the table can place a merge between the random agent and the upper bound: the
    gap UB − random over the median width (2 × ``ci95``) of each round's merge and continual
    rows' 95% CIs. Below about 3 the rows' intervals span a large part of the scale."""
    ub = board.loc[board.row == "upper_bound", "mean_return"].item()
    rnd = board.loc[board.row == "random", "mean_return"].item()
    rows = board[board["round"].notna() & ~board.kind.str.startswith("ensemble")]
    parts = []
    for round_name, group in rows.groupby("round", sort=False):
        width = 2 * group.ci95.median()
        runs = "/".join(str(n) for n in sorted(group.n.astype(int).unique()))
        ratio = f"{(ub - rnd) / width:.1f}×" if width > 0 else "∞×"  # identical runs: smoke-sized models
        parts.append(f"{ratio} the median 95% CI width of the {round_name} rows "
                     f"({width:.2f}; n = {runs})")
    if not parts:
        return None
    return f"Resolution: UB − random = {ub - rnd:.2f}, " + ", ".join(parts) + "."


def print_leaderboard(suite: Suite, board: pd.DataFrame) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{suite.name} [{suite.preset}]: on the super-task")
    columns = ["row", "n", "mean_return", "std_return", "ci95", "score", "thesis"]
    for col in columns:
        table.add_column(col, justify="left" if col == "row" else "right", no_wrap=col == "row")
    for row in board.itertuples(index=False):
        table.add_row(*(_cell(getattr(row, c)) for c in columns))
    console = Console()
    if not console.is_terminal:  # a log file: room for every column rather than 80 characters
        console = Console(width=160)
    console.print(table)
    if warning := upper_bound_warning(board):
        console.print(f"[bold red]warning:[/] {warning}")
    if line := resolution(board):
        console.print(line)
