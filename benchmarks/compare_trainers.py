"""Do two training configurations learn alike? Train the same task, budget and seeds with
each (a trainer, and for ``fast`` a precision: ``fast`` and ``sb3``, the stable-baselines3
reference, by default; ``fast fast:bf16`` for bf16 autocast against fp32) and plot their
learning curves together.

    make compare-trainers                       # starpilot/shoot, 200k steps, seed pairs 01 12
    python benchmarks/compare_trainers.py --task starpilot/shoot --steps 200000 --seeds 0:1 1:2
    python benchmarks/compare_trainers.py --configs fast fast:bf16 --seeds 0:1 1:2 2:3 --steps 1000000

Runs go to the run store (``runs/single/…``, resumable); the plot and a CSV of final
rolling returns go to ``--out`` (default ``results/train/``).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from crl_merge.cli import main as crl_merge  # noqa: E402
from crl_merge.procgen.ppo import PPOConfig  # noqa: E402
from crl_merge.procgen.ppo.curve import read_curve  # noqa: E402

COLOURS = ["tab:blue", "tab:orange", "tab:green", "tab:red"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="starpilot/shoot")
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--seeds", nargs="+", default=["0:1", "1:2"], help="init:level seed pairs")
    parser.add_argument("--configs", nargs="+", default=["fast", "sb3"],
                        help="TRAINER or TRAINER:PRECISION (fast:bf16) to compare, two to four")
    parser.add_argument("--policy", default="shared", choices=["shared", "separate"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--store", default="runs")
    parser.add_argument("--out", default="results/train")
    args = parser.parse_args()
    if not 1 < len(args.configs) <= len(COLOURS):
        parser.error(f"--configs: two to {len(COLOURS)} configurations, got {len(args.configs)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    slug = args.task.replace("/", "_")
    steps = PPOConfig().steps_trained(args.steps)  # whole rollouts, as `crl-merge train` names its folder
    fig, ax = plt.subplots(figsize=(7, 4))
    rows = []
    for colour, config in zip(COLOURS, args.configs):
        trainer, _, precision = config.partition(":")
        precision = precision or "fp32"
        for pair in args.seeds:
            init, level = pair.split(":")
            code = crl_merge(["train", args.task, "--steps", str(args.steps), "--init-seed", init, "--level-seed", level,
                              "--trainer", trainer, "--precision", precision, "--policy", args.policy,
                              "--device", args.device, "--store", args.store])
            if code:
                raise SystemExit(code)
            suffix = "" if precision == "fp32" else f"-{precision}"  # the folder `crl-merge train` names
            run = Path(args.store) / "single" / slug / f"{init}{level}-{trainer}-{args.policy}{suffix}-{steps}"
            curve = read_curve(run / "curve.csv")
            ax.plot([r["step"] for r in curve], [r["rolling_return"] for r in curve], color=colour,
                    alpha=0.8, label=f"{config} {init}{level}")
            rows.append({"trainer": trainer, "precision": precision, "seeds": f"{init}{level}",
                         "steps": int(curve[-1]["step"]),
                         "final_rolling_return": round(curve[-1]["rolling_return"], 3),
                         "mean_steps_per_second": round(sum(r["steps_per_second"] for r in curve) / len(curve), 1)})
    ax.set(xlabel="environment steps", ylabel="mean return, last 100 episodes",
           title=f"{args.task}: " + " vs ".join(args.configs))
    ax.legend()
    fig.tight_layout()
    name = "trainers" if args.configs == ["fast", "sb3"] else "_".join(c.replace(":", "-") for c in args.configs)
    fig.savefig(out / f"{name}_{slug}.png", dpi=120)
    with open(out / f"{name}_{slug}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    for r in rows:
        print(r)


if __name__ == "__main__":
    main()
