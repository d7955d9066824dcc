"""``crl-merge env-stats`` and ``env-frames``: inspect a task, and look at its frames."""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table

from crl_merge.progress import progress_bars


def _env_stats(args) -> int:
    import envs
    from envs.episodes import collect_episodes
    from envs.policies import make_policy

    if args.backend == "procgen":
        from envs.procgen_ref import ProcgenRef

        env = ProcgenRef(args.task, args.num_envs, seed=args.seed, levels=args.levels,
                         allow_visual_differences=True)
    else:
        env = envs.make(args.task, num_envs=args.num_envs, seed=args.seed, device=args.device, levels=args.levels)
    policy = make_policy(args.policy, args.num_envs, seed=args.seed)
    with progress_bars(disable=args.json) as bar:
        job = bar.add_task(f"{env.task.name} [{args.backend}] {args.policy}", total=args.episodes, status="")
        stats = collect_episodes(env, policy, args.episodes, progress=lambda n: bar.update(job, completed=n))
    summary = {"task": env.task.name, "backend": args.backend, "policy": args.policy, "seed": args.seed,
               "num_envs": args.num_envs, **stats.summary()}
    if args.json:
        print(json.dumps(summary))
        return 0
    table = Table(title=f"{summary['task']} — {args.backend}, policy {args.policy}, {summary['episodes']} episodes")
    for col in ("mean return", "std", "95% CI", "mean length", "completion", "frames/s"):
        table.add_column(col, justify="right")
    table.add_row(f"{summary['mean_return']:.3f}", f"{summary['std_return']:.3f}", f"±{summary['ci95_return']:.3f}",
                  f"{summary['mean_length']:.1f}", f"{summary['completion_rate']:.3f}",
                  f"{summary['frames_per_second']:,.0f}")
    Console().print(table)
    return 0


def _env_frames(args) -> int:
    from pathlib import Path

    import envs
    from envs.gallery import gallery

    tasks = args.tasks or envs.builtin_tasks()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    gallery(tasks, args.steps, with_reference=not args.no_reference).save(args.out)
    print(f"wrote {args.out}")
    return 0


def add_commands(sub) -> None:
    from envs.policies import POLICIES

    p = sub.add_parser("env-stats", help="return, episode length and completion rate of a policy on a task")
    p.add_argument("task", help="a task name (e.g. starpilot/dodge) or file.yaml#name")
    p.add_argument("--policy", default="random", choices=sorted(POLICIES))
    p.add_argument("--episodes", type=int, default=1000, help="complete episodes to collect")
    p.add_argument("--backend", choices=["ours", "procgen"], default="ours",
                   help="our engine, or the real Procgen (stock games and wrapper-made variants only)")
    p.add_argument("--num-envs", type=int, default=64, help="environments stepped at once")
    p.add_argument("--seed", type=int, default=0, help="level seed (Procgen's rand_seed) and the policy's seed")
    p.add_argument("--levels", choices=["train", "eval"], default="train")
    p.add_argument("--device", default="cpu", help="the torch device our engine runs on")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.set_defaults(func=_env_stats)

    p = sub.add_parser("env-frames", help="save frames of tasks next to the real Procgen's frames (PNG)")
    p.add_argument("tasks", nargs="*", help="task names (default: all built-in tasks)")
    p.add_argument("--steps", type=int, nargs="+", default=[0, 25, 50, 75, 100], help="step indices to show")
    p.add_argument("--out", default="results/envs/frames.png", help="the PNG to write")
    p.add_argument("--no-reference", action="store_true", help="leave out the real Procgen's rows")
    p.set_defaults(func=_env_frames)
