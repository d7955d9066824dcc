"""``crl-merge train``, ``eval``, ``run`` and ``report``: one training run, one evaluation, a
whole suite (train, evaluate, merge, report), and its leaderboard."""

from __future__ import annotations

import argparse
import json
import re
import sys

from rich.console import Console
from rich.table import Table

from crl_merge.progress import progress_bars
from envs.schema import ConfigError

DEFAULT_STORE = "runs"
TRAINER_HELP = "fast (device-resident PPO) or sb3 (stable-baselines3's PPO, the reference)"
DEFAULT_RESULTS = "results"  # the committed leaderboards; a smoke run's go into its store instead


def _parse_ppo_overrides(pairs: list[str]) -> dict:
    """``["n_envs=16", "learning_rate=3e-4"]`` → typed values (YAML scalars)."""
    import yaml

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--ppo takes KEY=VALUE, got {pair!r}")
        out[key] = yaml.safe_load(value)
    return out


def _train(args) -> int:
    import envs
    from crl_merge.device import resolve_device
    from crl_merge.procgen.ppo import PPOConfig, train_run, training_spec
    from crl_merge.store import RunStore

    task = envs.get_task(args.task)
    ppo = PPOConfig.from_mapping(_parse_ppo_overrides(args.ppo), "--ppo")
    if args.steps < 1:
        raise ConfigError(f"--steps {args.steps}: must be ≥ 1 environment step")
    steps = ppo.steps_trained(args.steps)
    if steps != args.steps:
        print(f"--steps {args.steps:,} rounded up to {steps:,}: whole rollouts of n_envs × n_steps = "
              f"{ppo.rollout_size:,} steps", file=sys.stderr)
    slug = re.sub(r"[^A-Za-z0-9._=+-]+", "_", task.name).strip("_")
    spec = training_spec(task, ppo, steps, args.init_seed, args.level_seed, args.trainer, args.policy,
                         precision=args.precision)
    precision = "" if args.precision == "fp32" else f"-{args.precision}"  # fp32 runs keep their folders
    run = RunStore(args.store).run(
        "single", slug, f"{args.init_seed}{args.level_seed}-{args.trainer}-{args.policy}{precision}-{steps}", spec=spec)
    with progress_bars() as bars:
        bar = bars.add_task(f"train {task.name} ({args.trainer}, {args.policy})", total=steps, status="")
        trained = train_run(run, task, ppo, steps, args.init_seed, args.level_seed, trainer=args.trainer,
                            policy=args.policy, precision=args.precision, device=resolve_device(args.device),
                            checkpoint_every=args.checkpoint_every, log=bars.console.print,
                            progress=lambda step, row: bars.update(
                                bar, completed=step,
                                status=f"return {row['rolling_return']:.2f} · {row['steps_per_second']:,.0f} steps/s"))
    print(f"{'trained' if trained else 'already trained'} ({steps:,} steps): {run.path}/actor.safetensors")
    return 0


def _actor(path: str, device: str):
    """A Procgen actor from a checkpoint; a critic or a Decision Transformer is named as such."""
    import envs
    from crl_merge.checkpoint import load_model

    model, meta = load_model(path, device)
    kind = meta["architecture"].get("name")
    if kind != "nature_cnn":
        raise ConfigError(f"{path} is a {kind} checkpoint; `crl-merge eval` plays Procgen actors "
                          "(Decision Transformers are evaluated by `crl-merge dt-train` and `dt-run`)")
    if model.out_dim != envs.NUM_ACTIONS:
        raise ConfigError(f"{path} has {model.out_dim} output(s), not {envs.NUM_ACTIONS} action logits: "
                          f"a critic{' (role: ' + meta['role'] + ')' if 'role' in meta else ''}; "
                          "evaluate the actor checkpoint beside it")
    return model


def _eval(args) -> int:
    import envs
    from crl_merge.device import resolve_device
    from crl_merge.procgen.evaluate import evaluate

    device = resolve_device(args.device)
    actor = None if args.model == "random" else _actor(args.model, device)
    task = envs.get_task(args.task)
    with progress_bars(disable=args.json) as bars:
        bar = bars.add_task(f"eval on {task.name}", total=args.episodes, status="")
        stats = evaluate(actor, task, args.episodes, num_envs=args.num_envs, level_seed=args.level_seed,
                         actions=args.actions, device=device, seed=args.seed, rule=args.rule,
                         progress=lambda n: bars.update(bar, completed=n))
    summary = {"model": args.model, "task": task.name, "actions": args.actions, "rule": args.rule,
               "level_seed": args.level_seed,
               **stats.summary()}
    if args.json:
        print(json.dumps(summary))
        return 0
    table = Table(title=f"{args.model} on {task.name}: {summary['episodes']} episodes, level seed {args.level_seed}")
    for col in ("mean return", "std", "95% CI", "mean length", "completion"):
        table.add_column(col, justify="right")
    table.add_row(f"{summary['mean_return']:.3f}", f"{summary['std_return']:.3f}", f"±{summary['ci95_return']:.3f}",
                  f"{summary['mean_length']:.1f}", f"{summary['completion_rate']:.3f}")
    Console().print(table)
    return 0


def _load_suite(args):
    """The suite of a ``run``/``report`` command at its preset, with ``--precision`` in place of
    the suite's ``training.precision`` when given (the two commands must agree: the precision
    names the run folders)."""
    from dataclasses import replace

    from crl_merge.procgen.suite import load_suite

    suite = load_suite(args.suite, args.preset)
    if args.precision is not None:
        suite = replace(suite, training=replace(suite.training, precision=args.precision))
    return suite


def _report(suite, args) -> None:
    from pathlib import Path

    from crl_merge.procgen.report import print_leaderboard, write_report
    from crl_merge.store import RunStore

    results = args.results or (Path(args.store) / "results" if suite.preset == "smoke" else DEFAULT_RESULTS)
    out = Path(results) / suite.name / suite.preset
    formats = args.format
    board = write_report(suite, RunStore(args.store), out, formats=formats)
    print_leaderboard(suite, board)
    print(f"leaderboard in {out}: " + ", ".join(f"leaderboard.{'tex' if f == 'latex' else f}" for f in formats)
          + "; figures beside it")


def _run(args) -> int:
    import torch

    from crl_merge.procgen.protocol import run_locally, run_protocol
    from crl_merge.procgen.ray_executor import import_ray, ray_executor
    from crl_merge.procgen.workers import start_workers, threads_per_job, wait_for
    from crl_merge.store import RunStore

    suite = _load_suite(args)
    if args.jobs < 1:
        raise ConfigError(f"--jobs {args.jobs}: must be ≥ 1 process")
    if args.batch < 1 or (args.batch > 1 and args.trainer != "fast"):
        raise ConfigError(f"--batch {args.batch}: must be ≥ 1 model, and > 1 only with --trainer fast "
                          f"(got --trainer {args.trainer})")
    precision = suite.training.precision
    if precision != "fp32" and (args.trainer != "fast" or args.batch > 1):
        which = f"--trainer {args.trainer}" if args.trainer != "fast" else f"--batch {args.batch}"
        raise ConfigError(f"{which} trains in fp32 only, and the suite's training.precision at preset "
                          f"{args.preset!r} is {precision!r}; add --precision fp32 (to run and to report)")
    if not 0 < args.gpu_share <= 1:
        raise ConfigError(f"--gpu-share {args.gpu_share}: must be in (0, 1]")
    executor = run_locally
    if args.executor == "ray":
        if args.jobs > 1:
            raise ConfigError("--jobs is for --executor local; with --executor ray the cluster's CPUs and GPUs "
                              "decide how many jobs run at once")
        executor = ray_executor(args.address)
        import_ray()  # before any work: a missing Ray is a one-line error
    elif args.address:
        raise ConfigError("--address is the Ray cluster of --executor ray")
    workers = start_workers(args, args.jobs - 1) if args.jobs > 1 else []
    if args.jobs > 1:
        torch.set_num_threads(threads_per_job(args.jobs))
    try:
        with progress_bars() as bars:
            run_protocol(suite, RunStore(args.store), trainer=args.trainer, device=args.device,
                         progress=bars, log=bars.console.print, batch=args.batch, executor=executor,
                         gpu_share=args.gpu_share)
    finally:
        wait_for(workers)
    if not args.worker:
        _report(suite, args)
    return 0


def _leaderboard(args) -> int:
    _report(_load_suite(args), args)
    return 0


def add_commands(sub) -> None:
    from crl_merge.device import DEVICE_FORMS
    from crl_merge.models import POLICY_LAYOUTS
    from crl_merge.procgen.evaluate import ACTION_MODES
    from crl_merge.procgen.ppo import TRAINERS
    from crl_merge.procgen.ppo.precision import PRECISIONS
    from crl_merge.procgen.report import REPORT_FORMATS
    from envs.episodes import EPISODE_RULES
    from crl_merge.suite_files import PRESET_NAMES

    def common(p):
        p.add_argument("--device", default="auto", help=DEVICE_FORMS)
        p.add_argument("--store", default=DEFAULT_STORE, help="the run store folder")

    p = sub.add_parser("train", help="train one PPO actor/critic pair on a task into the run store")
    p.add_argument("task", help="a task name (e.g. starpilot/shoot) or file.yaml#name")
    p.add_argument("--steps", type=int, required=True, help="environment steps, rounded up to whole rollouts (n_envs × n_steps; said when it happens)")
    p.add_argument("--init-seed", type=int, default=0, help="seed of the initial weights and of action sampling")
    p.add_argument("--level-seed", type=int, default=0, help="seed of the training levels (Procgen's rand_seed)")
    p.add_argument("--trainer", choices=TRAINERS, default="fast", help=TRAINER_HELP)
    p.add_argument("--policy", choices=POLICY_LAYOUTS, default="shared",
                   help="one trunk with action and value heads (SB3's CnnPolicy, the thesis), or separate networks")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="the fast trainer's network arithmetic: fp32 (the reference) or bf16 autocast")
    p.add_argument("--ppo", nargs="*", default=[], metavar="KEY=VALUE",
                   help="PPO hyperparameters to change from the thesis's (e.g. n_envs=16)")
    p.add_argument("--checkpoint-every", type=int, default=None, help="steps between resume checkpoints")
    common(p)
    p.set_defaults(func=_train)

    p = sub.add_parser("eval", help="play N episodes of a checkpoint (or 'random') on a task's evaluation levels")
    p.add_argument("model", help="an actor checkpoint (.safetensors with its .json sidecar), or 'random'")
    p.add_argument("task", help="a task name (e.g. starpilot/super) or file.yaml#name")
    p.add_argument("--episodes", type=int, default=1000, help="complete episodes to play")
    p.add_argument("--actions", choices=ACTION_MODES, default="stochastic",
                   help="sample from the actor's logits (SB3's predict default, the thesis's) or take their argmax")
    p.add_argument("--level-seed", type=int, default=5, help="evaluation level seed (the thesis's: 5)")
    p.add_argument("--num-envs", type=int, default=64, help="environments played at once")
    p.add_argument("--seed", type=int, default=0, help="action-sampling seed")
    p.add_argument("--rule", choices=EPISODE_RULES, default="per_env",
                   help="which finished episodes count: each env's first ones (per_env), or the first N to finish "
                        "(thesis, biased to short episodes)")
    p.add_argument("--device", default="auto", help=DEVICE_FORMS)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.set_defaults(func=_eval)

    def suite_args(p):
        p.add_argument("suite", help="a suite name (starpilot, fruitbot) or a path to a suite .yaml")
        p.add_argument("--preset", choices=PRESET_NAMES, required=True,
                       help="smoke: about a minute (tests); quick: one to two hours per suite on a 2-core CPU; "
                            "paper: the thesis's scale (25M steps × 15 models; a GPU)")
        p.add_argument("--results", help="where leaderboards go: RESULTS/<suite>/<preset>/ (default: results, or "
                                         "STORE/results for the smoke preset, which is for tests)")
        p.add_argument("--format", nargs="+", choices=REPORT_FORMATS, default=["md", "csv"],
                       help="which leaderboard files to write: Markdown (every table, the figures), CSV, "
                            "LaTeX (booktabs)")
        p.add_argument("--precision", choices=PRECISIONS, default=None,
                       help="the fast trainer's arithmetic in place of the suite's training.precision (the quick "
                            "preset: bf16; --trainer sb3 and --batch > 1 need fp32) (default: the suite's)")
        common(p)

    p = sub.add_parser("run", help="a whole suite: train, evaluate, merge, report; finished work is skipped, "
                                   "interrupted work resumed")
    suite_args(p)
    p.add_argument("--trainer", choices=TRAINERS, default="fast", help=TRAINER_HELP)
    p.add_argument("--jobs", type=int, default=1,
                   help="processes working on the grid at once, each with its share of the CPU threads; they "
                        "split the jobs through the run store's claims (logs of the extra ones in STORE/logs/)")
    p.add_argument("--batch", type=int, default=1,
                   help="train this many models of the grid at a time in one program (the batched fast trainer: "
                        "the same algorithm, one kernel launch for all; pays on a GPU, not on a CPU)")
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local: this machine, --jobs processes; ray: every job a Ray task on the cluster at "
                        "--address (needs pip install crl-merge[ray]; see the README)")
    p.add_argument("--address", help="with --executor ray: the Ray cluster to connect to (auto, HOST:6379, "
                                     "ray://HOST:10001); default: start Ray on this machine")
    p.add_argument("--gpu-share", type=float, default=0.25,
                   help="with --executor ray on GPUs: the share of a GPU each job asks for (0.25: four trainings "
                        "share one GPU; a --batch K training asks K times as much, up to one GPU)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # one of --jobs' extra processes
    p.set_defaults(func=_run)

    p = sub.add_parser("report", help="write and print the leaderboard of a suite run from the run store")
    suite_args(p)
    p.set_defaults(func=_leaderboard)
