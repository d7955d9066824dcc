"""Do the two PPO trainers learn alike? Train the same task, budget and seeds with ``fast``
and ``sb3`` (the stable-baselines3 reference) and plot their learning curves together.

    make compare-trainers                       # starpilot/shoot, 200k steps, seed pairs 01 12
    python benchmarks/compare_trainers.py --task starpilot/shoot --steps 200000 --seeds 0:1 1:2

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
from crl_merge.procgen.ppo.curve import read_curve  # noqa: E402

COLOURS = {"fast": "tab:blue", "sb3": "tab:orange"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="starpilot/shoot")
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--seeds", nargs="+", default=["0:1", "1:2"], help="init:level seed pairs")
    parser.add_argument("--policy", default="shared", choices=["shared", "separate"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--store", default="runs")
    parser.add_argument("--out", default="results/train")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    slug = args.task.replace("/", "_")
    fig, ax = plt.subplots(figsize=(7, 4))
    rows = []
    for trainer in ("fast", "sb3"):
        for pair in args.seeds:
            init, level = pair.split(":")
            code = crl_merge(["train", args.task, "--steps", str(args.steps), "--init-seed", init, "--level-seed", level,
                              "--trainer", trainer, "--policy", args.policy, "--device", args.device,
                              "--store", args.store])
            if code:
                raise SystemExit(code)
            run = Path(args.store) / "single" / slug / f"{init}{level}-{trainer}-{args.policy}-{args.steps}"
            curve = read_curve(run / "curve.csv")
            ax.plot([r["step"] for r in curve], [r["rolling_return"] for r in curve], color=COLOURS[trainer],
                    alpha=0.8, label=f"{trainer} {init}{level}")
            rows.append({"trainer": trainer, "seeds": f"{init}{level}", "steps": int(curve[-1]["step"]),
                         "final_rolling_return": round(curve[-1]["rolling_return"], 3),
                         "mean_steps_per_second": round(sum(r["steps_per_second"] for r in curve) / len(curve), 1)})
    ax.set(xlabel="environment steps", ylabel="mean return, last 100 episodes",
           title=f"{args.task}: fast vs stable-baselines3 PPO")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / f"trainers_{slug}.png", dpi=120)
    with open(out / f"trainers_{slug}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    for r in rows:
        print(r)


if __name__ == "__main__":
    main()
