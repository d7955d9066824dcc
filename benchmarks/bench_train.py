"""Environment steps per second of end-to-end PPO training: the ``fast`` trainer against
stable-baselines3's PPO (the reference), same task and hyperparameters, in one run.

    make bench-train                                   # CPU, and the GPU if there is one
    python benchmarks/bench_train.py --updates 3 --device cuda

Each measurement trains for ``--updates`` PPO updates (64 envs × 256 steps each, the
thesis's settings) after one warm-up update, and reports steps/s over the timed updates.
"""

from __future__ import annotations

import argparse
import platform

import torch

import envs
from crl_merge.procgen.ppo.config import PPOConfig
from crl_merge.procgen.ppo.fast import train_fast
from crl_merge.procgen.ppo.sb3 import train_sb3

TRAINERS = {"fast": train_fast, "sb3": train_sb3}


def steps_per_second(trainer: str, task, ppo: PPOConfig, updates: int, device: str) -> float:
    rows = []
    TRAINERS[trainer](task, ppo, (updates + 1) * ppo.rollout_size, 0, 0, device=device,
                      progress=lambda step, row: rows.append(row))
    timed = rows[1:]  # the first update pays for warm-up (allocation, kernel selection)
    return len(timed) * ppo.rollout_size / sum(ppo.rollout_size / r["steps_per_second"] for r in timed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="starpilot/super")
    parser.add_argument("--updates", type=int, default=2, help="timed PPO updates per measurement")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cpu, plus cuda if available)")
    parser.add_argument("--n-envs", type=int, default=64)
    args = parser.parse_args()
    devices = [args.device] if args.device else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    task = envs.get_task(args.task)
    ppo = PPOConfig.from_mapping({"n_envs": args.n_envs}, "--n-envs")
    print(f"# {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"
          + (f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""))
    print(f"# {args.task}, {ppo.n_envs} envs × {ppo.n_steps} steps per update, {ppo.n_epochs} epochs, "
          f"minibatch {ppo.batch_size}; {args.updates} timed updates")
    print(f"{'device':<7} {'fast steps/s':>13} {'sb3 steps/s':>12} {'fast / sb3':>11}")
    for device in devices:
        fast = steps_per_second("fast", task, ppo, args.updates, device)
        sb3 = steps_per_second("sb3", task, ppo, args.updates, device)
        print(f"{device:<7} {fast:>13,.0f} {sb3:>12,.0f} {fast / sb3:>10.2f}x")


if __name__ == "__main__":
    main()
