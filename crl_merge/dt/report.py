"""Tables and figures of the DT suite, shaped like the paper's: Table 1 (Merge-Freeze-
Finetune), Table 2 (attention perturbation), Table 3 (multi-task merging, per
initialisation), single-task scores against the published DT scores, and Figs. 1-4.

Every table is written as Markdown (all in ``tables.md``) and as CSV; a cell shows ours and,
in parentheses, the paper's figure where it has one. Cells of experiments not run are "—".
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from crl_merge.dt import paper
from crl_merge.dt.experiments.mff import configurations
from crl_merge.dt.experiments.multitask import METHODS, group_members, group_name
from crl_merge.files import atomic_write_bytes, atomic_write_text
from crl_merge.tables import markdown_table
from crl_merge.dt.surgery import PERTURBATIONS

DASH = "—"


def _fmt(value, digits: int = 1) -> str:
    return DASH if value is None or (isinstance(value, float) and not np.isfinite(value)) else f"{value:.{digits}f}"


def _with_paper(ours, theirs, digits: int = 1, unit: str = "") -> str:
    mine = _fmt(ours, digits) + (unit if ours is not None else "")
    return mine if theirs is None else f"{mine} ({theirs}{unit})"


class Table:
    def __init__(self, name: str, title: str, columns: list[str], note: str = ""):
        self.name, self.title, self.columns, self.note = name, title, columns, note
        self.rows: list[list[str]] = []

    def add(self, *cells) -> None:
        self.rows.append([str(c) for c in cells])

    def markdown(self) -> str:
        lines = [f"### {self.title}", ""]
        if self.note:
            lines += [self.note, ""]
        return "\n".join(lines) + "\n" + markdown_table(self.columns, self.rows) + "\n"

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(self.columns)
        writer.writerows(self.rows)
        return out.getvalue()


def table1(rows: list[dict] | None, pair: list[str]) -> Table:
    a, b = pair
    paper_pair = tuple(pair) == paper.TABLE1_ENVS
    t = Table("table1_mff", f"Table 1 — Merge-Freeze-Finetune, {a} and {b} (expert data), % of pre-merge return",
              ["Configuration", a, b, "Transformer size"],
              "ours (paper); M = merged only, MFF = merged, frozen, rest finetuned" if paper_pair else "")
    ours = {row["configuration"]: row for row in rows or []}
    for name in configurations(a, b):
        row, theirs = ours.get(name, {}), paper.TABLE1.get(name) if paper_pair else None
        size = 100 * row["size"] if "size" in row else None
        t.add(name, _with_paper(row.get(a), theirs and theirs[0]), _with_paper(row.get(b), theirs and theirs[1]),
              _with_paper(size, theirs and round(100 * theirs[2], 2), 2, "%"))
    return t


def table2(rows: list[dict] | None, datasets: list[str], envs: list[str]) -> Table:
    t = Table("table2_attention_perturbation", "Table 2 — attention perturbation, D4RL normalised score",
              ["Dataset", "Environment", "Original", "Random", "Identity (all weights 1: the paper's code)",
               "Identity (identity matrices)", "Removed attention"],
              "ours (paper); the paper's numbers are its code's identity, all weights 1")
    scores = {(r["dataset"], r["env"], r["variant"]): r["score"] for r in rows or []}
    for kind in datasets:
        for env in envs:
            theirs = dict(zip(("original", "random", "identity", "removed"), paper.TABLE2.get((kind, env), ())))
            t.add(kind, env, *(_with_paper(scores.get((kind, env, v)), theirs.get(v))
                               for v in ("original", *PERTURBATIONS)))
    return t


def table3(rows: list[dict] | None, init: str, envs: list[str]) -> Table:
    t = Table(f"table3_multitask_{init}", f"Table 3 — multi-task merging, medium data, {init} initialisation, "
              "% of pre-merge return", ["Method", "Models", *envs, "Size"],
              "ours (paper: ChibiT init + language co-training, which ours replaces)")
    merges = [r for r in rows or [] if r["row"] == "merge" and r["init"] == init]
    for subset, method in METHODS:
        for members in group_members(envs):
            group = group_name(members, envs)
            cells = {r["env"]: r for r in merges if (r["subset"], r["method"], r["group"]) == (subset, method, group)}
            theirs = paper.TABLE3.get((subset, method), {}).get(group, {})
            size = next(iter(cells.values()))["size"] if cells else None
            t.add(f"{subset} ({method})", group,
                  *(_with_paper(cells[e]["percent"] if e in cells else None, theirs.get(e)) if e in members else ""
                    for e in envs), _with_paper(None if size is None else 100 * size, None, 2, "%"))
    originals = {r["env"]: r["score"] for r in rows or [] if r["row"] == "original" and r["init"] == init}
    t.add("pre-merge D4RL score", "", *(_with_paper(originals.get(e), paper.TABLE3_PRE_MERGE.get(e)) for e in envs), "")
    return t


def distances_table(rows: list[dict] | None, inits: list[str]) -> Table:
    t = Table("table3_distances", "Initialisation — L2 distance between two envs' DTs (medium data)",
              ["Initialisation", "Pair", "attention", "mlp", "transformer"])
    dist = {(r["init"], r["pair"], r["subset"]): r["l2"] for r in rows or [] if r["row"] == "distance"}
    for init in inits:
        for pair in dict.fromkeys(p for i, p, _ in dist if i == init):
            t.add(init, pair, *(_fmt(dist.get((init, pair, s)), 2) for s in ("attention", "mlp", "transformer")))
    return t


def single_task_table(perturbation_rows: list[dict] | None, datasets: dict[tuple[str, str], dict]) -> Table:
    t = Table("single_task_scores", "Single-task DTs on our datasets against the published DT scores (D4RL normalised)",
              ["Dataset", "Data mean score", "Our DT", "Published DT", "Difference"])
    ours = {(r["env"], r["dataset"]): r["score"] for r in perturbation_rows or [] if r["variant"] == "original"}
    for (env, kind), stats in sorted(datasets.items()):
        published = paper.DT_SCORES.get((env, kind))
        score = ours.get((env, kind))
        diff = DASH if published is None or score is None else f"{score - published:+.1f}"
        t.add(f"{env}-{kind}", _fmt(stats["mean_score"]), _fmt(score), DASH if published is None else published, diff)
    return t


# -- figures ---------------------------------------------------------------------------

def _pyplot():
    try:
        import matplotlib
    except ImportError as e:
        raise RuntimeError("figures need matplotlib (pip install matplotlib)") from e
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())
    return path


def figure1(rows: list[dict], path: Path) -> Path:
    plt = _pyplot()
    merges = [r for r in rows if r["row"] == "merge"]
    units = list(dict.fromkeys(r["unit"] for r in merges))
    fig, ax = plt.subplots(figsize=(10, 3.5))
    ps = sorted({r["p"] for r in merges})
    width = 0.8 / len(ps)
    for i, p in enumerate(ps):
        means = [np.mean([r["normalized"] for r in merges if r["unit"] == u and r["p"] == p]) for u in units]
        ax.bar(np.arange(len(units)) + i * width, means, width, label=f"p = {p}")
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    ax.set_xticks(np.arange(len(units)) + width * (len(ps) - 1) / 2, units, rotation=45, ha="right")
    ax.set_ylabel("return / pre-merge return")
    ax.set_title("Fig. 1 — merging a single layer (mean over ordered pairs)")
    ax.legend()
    return _save(fig, path)


def figure2(rows: list[dict], path: Path) -> Path:
    plt = _pyplot()
    dist = [r for r in rows if r["row"] == "distance"]
    units = list(dict.fromkeys(r["unit"] for r in dist))
    fig, ax = plt.subplots(figsize=(10, 3.5))
    ax.bar(units, [np.mean([r["l2"] for r in dist if r["unit"] == u]) for u in units])
    ax.set_ylabel("L2 distance")
    ax.set_title("Fig. 2 — L2 distance between layers (mean over pairs)")
    ax.tick_params(axis="x", rotation=45)
    return _save(fig, path)


def figure3(rows: list[dict], path: Path) -> Path:
    plt = _pyplot()
    pairs = list(dict.fromkeys((r["source"], r["target"]) for r in rows))
    fig, axes = plt.subplots(1, len(pairs), figsize=(5 * len(pairs), 3.5), squeeze=False)
    for ax, (source, target) in zip(axes[0], pairs):
        sel = [r for r in rows if (r["source"], r["target"]) == (source, target)]
        ax.plot([r["layers"] for r in sel], [r["normalized"] for r in sel], marker="o")
        ax.set_xticks([r["layers"] for r in sel], [r["last_unit"] for r in sel], rotation=60, ha="right")
        ax.axhline(1.0, color="k", lw=0.8, ls="--")
        ax.set_title(f"{source} → {target}")
        ax.set_ylabel("return / pre-merge return")
    fig.suptitle("Fig. 3 — incremental merging (p = 0.5), merged set grows in depth")
    return _save(fig, path)


def figure4(rows: list[dict], path: Path) -> Path:
    plt = _pyplot()
    pairs = list(dict.fromkeys(r["pair"] for r in rows))
    fig, axes = plt.subplots(1, len(pairs), figsize=(4.5 * len(pairs), 3.5), squeeze=False)
    for ax, pair in zip(axes[0], pairs):
        for env in dict.fromkeys(r["env"] for r in rows if r["pair"] == pair):
            sel = [r for r in rows if r["pair"] == pair and r["env"] == env]
            ax.plot([r["lambda"] for r in sel], [r["normalized"] for r in sel], marker="o", label=f"on {env}")
        ax.axhline(1.0, color="k", lw=0.8, ls="--")
        ax.set_title(pair)
        ax.set_xlabel("λ (0: first env's attention, 1: second's)")
        ax.legend()
    axes[0][0].set_ylabel("return / pre-merge return")
    fig.suptitle("Fig. 4 — all attention weights interpolated")
    return _save(fig, path)


# -- the whole report --------------------------------------------------------------------

def write_report(results: dict[str, list[dict] | None], suite_config: dict, dataset_stats: dict, out: Path,
                 header: str = "") -> list[Path]:
    """Write every table (Markdown + CSV) and figure for ``results`` (experiment → rows, or
    None when not run) into ``out``; returns the files written."""
    out = Path(out)
    exp, envs = suite_config["experiments"], suite_config["envs"]
    tables = [single_task_table(results.get("attention_perturbation"), dataset_stats),
              table1(results.get("merge_freeze_finetune"), exp["merge_freeze_finetune"]["pair"]),
              table2(results.get("attention_perturbation"), exp["attention_perturbation"]["datasets"], envs)]
    tables += [table3(results.get("multitask"), init, envs) for init in exp["multitask"]["inits"]]
    tables.append(distances_table(results.get("multitask"), exp["multitask"]["inits"]))
    written = []
    for t in tables:
        path = out / f"{t.name}.csv"
        atomic_write_text(path, t.csv())
        written.append(path)
    markdown = "\n".join([header] + [t.markdown() for t in tables])
    figures = {"fig1_single_layer.png": ("single_layer", figure1), "fig2_l2_distance.png": ("single_layer", figure2),
               "fig3_incremental.png": ("incremental", figure3),
               "fig4_attention_interpolation.png": ("attention_interpolation", figure4)}
    for filename, (name, draw) in figures.items():
        if results.get(name):
            written.append(draw(results[name], out / filename))
            markdown += f"\n![{filename}]({filename})\n"
    atomic_write_text(out / "tables.md", markdown)
    return [out / "tables.md", *written]

