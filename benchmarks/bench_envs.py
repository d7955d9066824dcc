"""Frames per second of our engine vs the real Procgen's gym3 env, side by side, one run.

    make bench-envs                     # CPU, 64 environments (and GPU if one is present)
    python benchmarks/bench_envs.py --num-envs 64 8192 --device cuda

Both sides step a uniform-random policy and produce 64×64×3 observations; ours keeps
them on the torch device (that is how training consumes them). The real Procgen runs
on the CPU only, so it is measured at 64 environments.

On a shared machine the load changes from second to second, so the two engines are
measured in alternating rounds (``--rounds``, each ``--steps`` batched steps) and each
is reported by its median round; the ratio is of those medians. On the CPU our engine is
measured twice: as it runs by default (the renderer's C kernel, ``envs/native``) and with the
torch renderer (the reference the kernel is tested equal to). Each engine holds its last
observation until the next step gives one, as any consumer of the frames does, and the
process keeps freed memory as ``crl-merge`` does (``crl_merge.host_memory``: without it, the
fresh frames of each of our steps were often page-faulted in anew). On a GPU our engine is
stepped as a trainer would (``validate=False``: no host synchronisation in a step).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import numpy as np
import torch

import envs
from envs.procgen_ref import _import_procgen
from crl_merge.host_memory import keep_freed_memory
from envs.render import Renderer


class Ours:
    def __init__(self, task: str, num_envs: int, device: str, native_render: bool | None = None):
        self.env = envs.make(task, num_envs=num_envs, seed=0, device=device)
        if native_render is False:  # the torch renderer instead of the CPU's default C kernel
            renderer = self.env.renderer
            self.env.renderer = Renderer(self.env.game.textures, device, compact=renderer.compact, native=False)
        self.env.reset()
        self.num_envs, self.device = num_envs, device
        self.validate = not device.startswith("cuda")
        gen = torch.Generator(device=device).manual_seed(0)
        self.actions = [torch.randint(0, 15, (num_envs,), device=device, generator=gen) for _ in range(64)]
        self.i = 0
        self.run(20)  # warm-up

    def run(self, steps: int) -> float:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(steps):
            self.obs = self.env.step(self.actions[self.i % 64], validate=self.validate)[0]
            self.i += 1
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
        return steps * self.num_envs / (time.perf_counter() - start)


class Real:
    def __init__(self, game: str, num_envs: int):
        ProcgenGym3Env = _import_procgen()
        self.env = ProcgenGym3Env(num=num_envs, env_name=game, distribution_mode="easy", use_backgrounds=False,
                                  restrict_themes=True, rand_seed=0)
        rng = np.random.default_rng(0)
        self.actions = [rng.integers(0, 15, num_envs).astype(np.int32) for _ in range(64)]
        self.num_envs, self.i = num_envs, 0
        self.run(20)

    def run(self, steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            self.env.act(self.actions[self.i % 64])
            self.obs = self.env.observe()
            self.i += 1
        return steps * self.num_envs / (time.perf_counter() - start)


def measure(engines: list, rounds: int, steps: int) -> list[list[float]]:
    """fps of every engine in each of ``rounds`` alternating rounds."""
    fps = [[] for _ in engines]
    for _ in range(rounds):
        for k, engine in enumerate(engines):
            fps[k].append(engine.run(steps))
    return fps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-envs", type=int, nargs="+", default=None,
                        help="environment counts for our engine (default: 64 on CPU; 64 and 8192 on a GPU)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cpu, plus cuda if available)")
    parser.add_argument("--steps", type=int, default=200, help="batched steps per measured round")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per engine (median reported)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    keep_freed_memory()
    devices = [args.device] if args.device else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    for game in ("starpilot", "fruitbot"):
        engines, labels = [Real(game, 64)], [("procgen (real, gym3)", "cpu", 64)]
        for device in devices:
            for n in args.num_envs or ([64] if device == "cpu" else [64, 8192]):
                engines.append(Ours(f"{game}/original", n, device))
                labels.append(("crl-merge envs", device, n))
                if device == "cpu" and engines[-1].env.renderer.native is not None:
                    engines.append(Ours(f"{game}/original", n, device, native_render=False))
                    labels.append(("  torch renderer", device, n))
        fps = measure(engines, args.rounds, args.steps)
        ref = statistics.median(fps[0])
        for (engine, device, n), f in zip(labels, fps):
            row = {"game": game, "engine": engine, "device": device, "num_envs": n, "fps": statistics.median(f),
                   "fps_rounds": [round(x) for x in f]}
            if engine != "procgen (real, gym3)":
                row["ratio_vs_procgen"] = row["fps"] / ref
            rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print(f"# {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}; "
          f"median of {args.rounds} alternating rounds of {args.steps} steps")
    if torch.cuda.is_available():
        print(f"# GPU: {torch.cuda.get_device_name(0)}")
    print(f"{'game':<10} {'engine':<22} {'device':<6} {'envs':>6} {'frames/s':>12} {'vs procgen':>11}  rounds")
    for r in rows:
        ratio = f"{r['ratio_vs_procgen']:.2f}x" if "ratio_vs_procgen" in r else ""
        spread = f"{min(r['fps_rounds']):,}-{max(r['fps_rounds']):,}"
        print(f"{r['game']:<10} {r['engine']:<22} {r['device']:<6} {r['num_envs']:>6} {r['fps']:>12,.0f} {ratio:>11}  {spread}")


if __name__ == "__main__":
    main()
