"""The whole DT suite: datasets, single-task DTs, the paper's experiments, the report.

Each experiment's rows are stored in its run (``rows``) once complete, and every training
and evaluation inside it is stored as it finishes, so a killed run picks up where it
stopped and a finished one re-renders its report without training or evaluating anything.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

from crl_merge.dt.experiments import EXPERIMENTS
from crl_merge.dt.report import write_report
from crl_merge.dt.suite import Suite
from crl_merge.dt.workbench import Workbench
from crl_merge.files import atomic_write_json
from crl_merge.store import RunStore
from envs.mujoco.tasks import get_task


def run_suite(suite: Suite, store_root: str | Path, results_dir: str | Path, device: str = "cpu", progress=None,
              only: list[str] | None = None, command: str = "", log=print) -> list[Path]:
    """Run (or resume) the experiments (``only`` these, if given) and write the report."""
    unknown = sorted(set(only or []) - set(EXPERIMENTS))
    if unknown:
        raise ValueError(f"unknown experiment(s) {unknown}; known: {list(EXPERIMENTS)}")
    wb = Workbench(suite, RunStore(store_root), device=device, progress=progress)
    for env, kind in sorted(suite.datasets_needed()):
        wb.dataset_path(env, kind)
    results, timings = {}, {}
    for name, experiment in EXPERIMENTS.items():
        run = wb.experiment_run(name)
        if run.has("rows"):
            results[name], timings[name] = run.load_json("rows"), run.info("rows").get("seconds")
            continue
        if only is not None and name not in only:
            results[name] = None
            continue
        log(f"experiment {name} …")
        started = time.time()
        rows = experiment(wb)
        seconds = round(time.time() - started, 1)
        atomic_write_json(run.path / "rows.json", rows)
        run.record("rows", ["rows.json"], seconds=seconds)
        results[name], timings[name] = rows, seconds
        log(f"experiment {name} done in {seconds:.0f} s")
    stats = {}
    for env, kind in sorted(suite.datasets_needed()):
        summary = wb.dataset(env, kind).summary()
        stats[env, kind] = {**summary, "mean_score": float(get_task(env).normalized_score(summary["mean_return"]))}
    header = _header(suite, command, device, timings, stats)
    return write_report(results, suite.config, stats, Path(results_dir), header)


def _kept(config) -> str:
    """Which weights a run keeps, in words."""
    if config.keep == "final" or not config.evaluation_steps():
        return "final weights"
    return f"the best of {len(config.evaluation_steps())} evaluations of {config.eval_episodes} episode(s)"


def _header(suite: Suite, command: str, device: str, timings: dict, stats: dict) -> str:
    lines = [f"# Decision Transformer merging — preset `{suite.preset}`", ""]
    if command:
        lines += [f"Produced by `{command}` on {platform.node() or 'this machine'} ({platform.processor() or platform.machine()}, "
                  f"device {device}), {time.strftime('%Y-%m-%d')}.", ""]
    cfg = suite.config
    lines += [f"DT: {cfg['model']['n_layer']} layers, {cfg['model']['n_head']} head, width {cfg['model']['n_embd']}, "
              f"K = {cfg['model']['context']}; {cfg['train']['steps']:,} training steps (batch {cfg['train']['batch_size']}, "
              f"lr {cfg['train']['learning_rate']}), MFF finetuning {cfg['finetune']['steps']:,} steps; "
              f"kept weights: {_kept(suite.train_config())} in training, {_kept(suite.train_config(finetune=True))} "
              "in finetuning; "
              f"{cfg['evaluation']['episodes']} episodes per table cell, {cfg['evaluation']['sweep_episodes']} per "
              f"figure point; datasets of {cfg['datasets']['rows']:,} rows.", "",
              "| experiment | wall time (s) |", "|---|---|"]
    lines += [f"| {name} | {'—' if t is None else f'{t:.0f}'} |" for name, t in timings.items()]
    lines += ["", "| dataset | episodes | mean return | mean D4RL score |", "|---|---|---|---|"]
    lines += [f"| {env}-{kind} | {s['episodes']} | {s['mean_return']:.0f} | {s['mean_score']:.1f} |"
              for (env, kind), s in sorted(stats.items())]
    return "\n".join(lines) + "\n"

