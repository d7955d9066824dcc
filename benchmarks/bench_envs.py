"""Frames per second of our engine vs the real Procgen's gym3 env, side by side, one run.

    make bench-envs                     # CPU, 64 environments (and GPU if one is present)
    python benchmarks/bench_envs.py --num-envs 64 8192 --device cuda

Both sides step a uniform-random policy and produce 64×64×3 observations; ours keeps
them on the torch device (that is how training consumes them). The real Procgen runs
on the CPU only, so it is measured at 64 environments.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch

import envs
from envs.procgen_ref import _import_procgen


def bench_ours(task: str, num_envs: int, device: str, steps: int) -> float:
    env = envs.make(task, num_envs=num_envs, seed=0, device=device)
    env.reset()
    gen = torch.Generator(device=device).manual_seed(0)
    actions = [torch.randint(0, 15, (num_envs,), device=device, generator=gen) for _ in range(64)]
    for i in range(20):  # warm-up
        env.step(actions[i % 64])
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for i in range(steps):
        env.step(actions[i % 64])
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return steps * num_envs / (time.perf_counter() - start)


def bench_procgen(game: str, num_envs: int, steps: int) -> float:
    ProcgenGym3Env = _import_procgen()
    env = ProcgenGym3Env(num=num_envs, env_name=game, distribution_mode="easy", use_backgrounds=False,
                         restrict_themes=True, rand_seed=0)
    rng = np.random.default_rng(0)
    actions = [rng.integers(0, 15, num_envs).astype(np.int32) for _ in range(64)]
    for i in range(20):
        env.act(actions[i % 64])
        env.observe()
    start = time.perf_counter()
    for i in range(steps):
        env.act(actions[i % 64])
        env.observe()
    return steps * num_envs / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-envs", type=int, nargs="+", default=None,
                        help="environment counts for our engine (default: 64 on CPU; 64 and 8192 on a GPU)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cpu, plus cuda if available)")
    parser.add_argument("--steps", type=int, default=300, help="batched steps timed per measurement")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    devices = [args.device] if args.device else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    for game in ("starpilot", "fruitbot"):
        ref = bench_procgen(game, 64, args.steps)
        rows.append({"game": game, "engine": "procgen (real, gym3)", "device": "cpu", "num_envs": 64, "fps": ref})
        for device in devices:
            counts = args.num_envs or ([64] if device == "cpu" else [64, 8192])
            for n in counts:
                fps = bench_ours(f"{game}/original", n, device, args.steps)
                rows.append({"game": game, "engine": "crl-merge envs", "device": device, "num_envs": n, "fps": fps,
                             "ratio_vs_procgen": fps / ref})
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print(f"# {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}")
    if torch.cuda.is_available():
        print(f"# GPU: {torch.cuda.get_device_name(0)}")
    print(f"{'game':<10} {'engine':<22} {'device':<6} {'envs':>6} {'frames/s':>12} {'vs procgen':>11}")
    for r in rows:
        ratio = f"{r['ratio_vs_procgen']:.2f}x" if "ratio_vs_procgen" in r else ""
        print(f"{r['game']:<10} {r['engine']:<22} {r['device']:<6} {r['num_envs']:>6} {r['fps']:>12,.0f} {ratio:>11}")


if __name__ == "__main__":
    main()
