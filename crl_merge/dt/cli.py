"""``crl-merge`` subcommands of the MuJoCo Decision Transformer track.

    crl-merge dt-policies hopper --steps 300000      SAC behaviour policy (resumable), then publish it
    crl-merge dt-datasets hopper --kinds medium      D4RL-style HDF5 datasets
    crl-merge dt-train benchmarks/mujoco_dt.yaml --preset quick --env hopper --dataset medium
    crl-merge dt-run benchmarks/mujoco_dt.yaml --preset quick
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from crl_merge.progress import progress_bars
from crl_merge.suite_files import project_path

DEFAULT_SUITE = "benchmarks/mujoco_dt.yaml"  # found from any folder (suite_files.suite_path)
DEFAULT_POLICIES = "crl_merge/dt/policies"  # the committed ones, found from any folder (project_path)


def _device(name: str, threads: int) -> str:
    """The torch device for ``--device``, with ``threads`` CPU threads for torch."""
    import torch

    from crl_merge.device import resolve_device

    torch.set_num_threads(threads)
    return resolve_device(name)


def _policies(args) -> int:
    from crl_merge.dt.behaviour import ALGORITHMS, publish, train_behaviour
    from envs.mujoco.tasks import get_task

    console = Console(stderr=True)
    for name in args.tasks:
        task = get_task(name)
        folder = Path(args.training_dir) / task.name
        if not args.publish_only:
            sizes = {"batch_size": args.batch_size, "hidden": tuple(args.hidden) if args.hidden else None}
            config = ALGORITHMS[args.algorithm](**{k: v for k, v in sizes.items() if v is not None})
            train_behaviour(task, folder, args.steps, seed=args.seed, config=config,
                            checkpoint_every=args.checkpoint_every, device=args.device, log=console.print)
        if not args.no_publish:
            published = publish(task, folder, project_path(args.policies), medium_score=args.medium_score)
            console.print(f"published {task.name}'s behaviour policies to {published}")
    return 0


def _task_name(name: str) -> str:
    from envs.mujoco.tasks import TASKS

    if name not in TASKS:
        raise argparse.ArgumentTypeError(f"unknown task {name!r}; valid: {', '.join(sorted(TASKS))}")
    return name


def _datasets(args) -> int:
    from envs.mujoco.datasets import load_d4rl_hdf5
    from crl_merge.dt.datasets import ensure_dataset
    from envs.mujoco.tasks import TASKS, get_task

    table = Table(title=f"datasets ({args.rows:,} rows, seed {args.seed})")
    for col in ("dataset", "file", "steps", "episodes", "mean return", "D4RL score"):
        table.add_column(col, justify="right" if col not in ("dataset", "file") else "left")
    with progress_bars() as bars:
        for name in args.tasks or sorted(TASKS):
            for kind in args.kinds:
                job = bars.add_task(f"{name}-{kind}", total=args.rows)
                path = ensure_dataset(args.root, name, kind, args.rows, args.seed, project_path(args.policies),
                                      progress=lambda n, total: bars.update(job, completed=n))
                s = load_d4rl_hdf5(path).summary()
                table.add_row(f"{name}-{kind}", str(path), f"{s['steps']:,}", str(s["episodes"]),
                              f"{s['mean_return']:.1f}", f"{float(get_task(name).normalized_score(s['mean_return'])):.1f}")
    Console().print(table)
    return 0


def _train(args) -> int:
    from crl_merge.dt.suite import load_suite
    from crl_merge.dt.workbench import Workbench
    from crl_merge.store import RunStore

    suite = load_suite(args.suite, args.preset)
    console = Console(stderr=True)
    episodes = args.episodes or suite.config["evaluation"]["episodes"]
    with progress_bars() as bars:
        wb = Workbench(suite, RunStore(args.store), device=_device(args.device, args.threads), progress=bars)
        model = wb.single(args.env, args.dataset, init=args.init)
        run = wb.store.run("dt", suite.preset, "evaluations", f"{args.env}-{args.dataset}",
                           spec={"suite": suite.config, "init": args.init, "episodes": episodes})
        result = wb.evaluate(run, f"{args.init}.{episodes}", args.env, args.dataset, model, episodes)
    console.print(f"{args.env}-{args.dataset} ({args.init} init, preset {suite.preset}): mean return "
                  f"{result['mean_return']:.1f} ± {result['std_return']:.1f}, D4RL score {result['mean_score']:.1f} "
                  f"over {result['episodes']} episodes (mean length {result['mean_length']:.0f})")
    return 0


def _run(args) -> int:
    from crl_merge.dt.pipeline import run_suite
    from crl_merge.dt.suite import load_suite

    suite = load_suite(args.suite, args.preset)
    console = Console(stderr=True)
    smoke = suite.preset == "smoke"  # for tests: not into the committed results/
    results = args.results or (f"{args.store}/results/dt/smoke" if smoke else f"results/dt/{suite.preset}")
    command = "crl-merge " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else ""
    with progress_bars() as bars:
        written = run_suite(suite, args.store, results, device=_device(args.device, args.threads), progress=bars, only=args.only,
                            command=command, log=console.print)
    console.print(f"wrote {len(written)} files to {results}/ (tables in {written[0]})")
    return 0


def add_commands(subparsers) -> None:
    """Add the ``dt-*`` subcommands to the ``crl-merge`` parser's subparsers."""
    from crl_merge.dt.experiments import EXPERIMENTS
    from crl_merge.dt.suite import INITS
    from crl_merge.suite_files import PRESET_NAMES
    from envs.mujoco.tasks import DATASET_KINDS, TASKS

    from crl_merge.dt.behaviour import ALGORITHMS, SACConfig, TD3Config

    p = subparsers.add_parser("dt-policies", help="train behaviour policies (SAC or TD3) and publish expert/medium snapshots")
    p.add_argument("tasks", nargs="+", choices=sorted(TASKS))
    p.add_argument("--algorithm", choices=sorted(ALGORITHMS), default="sac",
                   help="sac (D4RL's algorithm) or td3 (cheaper per update on a CPU)")
    p.add_argument("--steps", type=int, default=300_000, help="environment steps")
    p.add_argument("--seed", type=int, default=0, help="seed of the networks, replay sampling and environments")
    p.add_argument("--hidden", type=int, nargs="+", default=None,
                   help=f"actor and critic hidden layers (default: sac {' '.join(map(str, SACConfig.hidden))}, "
                        f"td3 {' '.join(map(str, TD3Config.hidden))}; D4RL's SAC: 256 256)")
    p.add_argument("--batch-size", type=int, default=None,
                   help=f"batch size (default: sac {SACConfig.batch_size}, td3 {TD3Config.batch_size}; D4RL's SAC: 256)")
    p.add_argument("--training-dir", default="runs/behaviour",
                   help="snapshots, learning curve and resume checkpoint (not committed); a folder with a "
                        "checkpoint is continued up to --steps")
    p.add_argument("--checkpoint-every", type=int, default=50_000,
                   help="steps between resume checkpoints (a multiple of the 10,000-step snapshots)")
    p.add_argument("--device", default="cpu", help="torch device of the networks (cpu, cuda)")
    p.add_argument("--policies", default=DEFAULT_POLICIES, help="where the chosen policies are published")
    p.add_argument("--medium-score", type=float, default=None,
                   help="D4RL score the medium policy is chosen nearest to (default: D4RL's medium data score, "
                        "or the same fraction of our expert's when it is weaker than D4RL's)")
    publishing = p.add_mutually_exclusive_group()
    publishing.add_argument("--publish-only", action="store_true", help="choose and copy from an existing training folder")
    publishing.add_argument("--no-publish", action="store_true",
                   help="train (or continue) only; the committed policies stay as they are")
    p.set_defaults(func=_policies)

    p = subparsers.add_parser("dt-datasets", help="generate D4RL-style datasets from the committed behaviour policies")
    # no `choices`: Python 3.11's argparse checks an empty nargs="*" list against them as one value
    p.add_argument("tasks", nargs="*", type=_task_name, help=f"any of {', '.join(sorted(TASKS))} (default: all)")
    p.add_argument("--kinds", nargs="+", default=list(DATASET_KINDS), choices=DATASET_KINDS)
    p.add_argument("--rows", type=int, default=1_000_000, help="steps per expert/medium dataset (D4RL: 1M)")
    p.add_argument("--seed", type=int, default=0, help="seed of the rollouts (environments and sampled actions)")
    p.add_argument("--root", default="runs/datasets", help="files go to ROOT/ROWS/TASK-KIND.hdf5")
    p.add_argument("--policies", default=DEFAULT_POLICIES, help="the behaviour policies the data is rolled out from")
    p.set_defaults(func=_datasets)

    p = subparsers.add_parser("dt-train", help="train (or load) one single-task DT of a suite and evaluate it")
    p.add_argument("suite", nargs="?", default=DEFAULT_SUITE, help="the DT suite file")
    p.add_argument("--preset", default="quick", choices=PRESET_NAMES)
    p.add_argument("--env", required=True, choices=sorted(TASKS))
    p.add_argument("--dataset", required=True, choices=DATASET_KINDS)
    p.add_argument("--init", default="independent", choices=[i for i in INITS if i != "cotrained"])
    p.add_argument("--episodes", type=int, default=None, help="evaluation episodes (default: the suite's)")
    p.add_argument("--store", default="runs", help="the run store folder")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: with shared or few cores more threads mostly wait)")
    p.set_defaults(func=_train)

    p = subparsers.add_parser("dt-run", help="run the DT merging suite (resumable) and write its tables and figures")
    p.add_argument("suite", nargs="?", default=DEFAULT_SUITE, help="the DT suite file")
    p.add_argument("--preset", default="quick", choices=PRESET_NAMES)
    p.add_argument("--only", nargs="+", choices=list(EXPERIMENTS), help="run only these experiments")
    p.add_argument("--store", default="runs", help="the run store folder")
    p.add_argument("--results", default=None,
                   help="report folder (default: results/dt/PRESET, or STORE/results/dt/smoke for the smoke preset)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: with shared or few cores more threads mostly wait)")
    p.set_defaults(func=_run)

