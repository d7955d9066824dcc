"""Everything only a GPU can show, in one command of a few minutes (``make bench-gpu``):

- env frames/s of our engine at 64 / 1,024 / 8,192 / 32,768 environments, both games;
- PPO environment steps/s end to end: stable-baselines3, ``fast`` (one model) and the
  batched ``fast`` at K = 5, 15, 35 models (the thesis's settings: 64 envs × 256 steps per
  model and update, 3 epochs of 2,048-frame minibatches);
- Decision Transformer training steps/s and evaluation episodes/s.

Writes ``results/gpu/bench.json`` and ``results/gpu/summary.md`` (``--out`` elsewhere). It
refuses to run without CUDA. ``--cpu-check`` runs the same code at tiny sizes on the CPU
into a scratch folder, to check the script before spending device time on it.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

import envs
from bench_dt import bench_eval, bench_train as bench_dt_train
from bench_envs import Ours
from bench_train import batched_steps_per_second, steps_per_second
from crl_merge.procgen.ppo.config import PPOConfig

FULL = {"num_envs": [64, 1024, 8192, 32768], "env_steps": 100, "batch": [5, 15, 35], "ppo": {},
        "updates": 1, "dt_steps": 50, "dt_episodes": 20, "dt_eval_steps": 1000}
CPU_CHECK = {"num_envs": [4, 16], "env_steps": 5, "batch": [2], "ppo": {"n_envs": 4, "n_steps": 16, "batch_size": 32},
             "updates": 1, "dt_steps": 2, "dt_episodes": 2, "dt_eval_steps": 10}
GAMES = {"starpilot": "starpilot/super", "fruitbot": "fruitbot/super"}


def measure_all(device: str, sizes: dict, log) -> dict:
    results: dict = {"env_frames_per_second": {}, "ppo_steps_per_second": {}, "dt": {}}
    for game, task in GAMES.items():
        for n in sizes["num_envs"]:
            rate = Ours(task, n, device).run(sizes["env_steps"])
            results["env_frames_per_second"][f"{game}/{n}"] = rate
            log(f"env {game}, {n:,} envs: {rate:,.0f} frames/s")
    ppo = PPOConfig.from_mapping(sizes["ppo"], "bench-gpu")
    task = GAMES["starpilot"]
    for trainer in ("sb3", "fast"):
        rate = steps_per_second(trainer, task, ppo, sizes["updates"], device)
        results["ppo_steps_per_second"][trainer] = rate
        log(f"PPO {trainer}, one model: {rate:,.0f} steps/s")
    for count in sizes["batch"]:
        rate = batched_steps_per_second(count, task, ppo, sizes["updates"], device)
        results["ppo_steps_per_second"][f"fast batched K={count}"] = rate
        log(f"PPO fast, batch of {count}: {rate:,.0f} steps/s (sum)")
    results["dt"]["train_steps_per_second"] = bench_dt_train(device, sizes["dt_steps"], 64)
    results["dt"]["eval_episodes_per_second"] = bench_eval(device, sizes["dt_episodes"], sizes["dt_eval_steps"])
    log(f"DT: {results['dt']['train_steps_per_second']:.1f} training steps/s, "
        f"{results['dt']['eval_episodes_per_second']:.2f} evaluation episodes/s")
    return results


def summary(results: dict, header: str) -> str:
    lines = [f"# GPU benchmark\n\n{header}\n", "## Env frames/s (random actions)\n", "| game | envs | frames/s |",
             "|---|---|---|"]
    lines += [f"| {key.split('/')[0]} | {int(key.split('/')[1]):,} | {rate:,.0f} |"
              for key, rate in results["env_frames_per_second"].items()]
    sb3 = results["ppo_steps_per_second"]["sb3"]
    lines += ["\n## PPO steps/s (starpilot/super)\n", "| trainer | steps/s | / sb3 |", "|---|---|---|"]
    lines += [f"| {name} | {rate:,.0f} | {rate / sb3:.1f}× |" for name, rate in results["ppo_steps_per_second"].items()]
    lines += ["\n## Decision Transformer\n",
              f"training: {results['dt']['train_steps_per_second']:.1f} steps/s (batch 64); evaluation: "
              f"{results['dt']['eval_episodes_per_second']:.2f} complete 1,000-step HalfCheetah episodes/s "
              f"(episodes cut at {results['sizes']['dt_eval_steps']:,} steps, counted in 1,000-step units)\n"]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="results/gpu", help="where bench.json and summary.md go")
    parser.add_argument("--cpu-check", action="store_true", help="tiny sizes on the CPU, to check the script")
    args = parser.parse_args()
    if args.cpu_check:
        device, sizes = "cpu", CPU_CHECK
    elif torch.cuda.is_available():
        device, sizes = "cuda", FULL
    else:
        print("bench-gpu: no CUDA device is visible to torch (torch.cuda.is_available() is False); run it on a "
              "GPU machine, or `python benchmarks/bench_gpu.py --cpu-check` to check the script here", file=sys.stderr)
        return 2
    started = time.perf_counter()
    header = (f"{platform.machine()}, torch {torch.__version__}, "
              + (f"GPU {torch.cuda.get_device_name(0)}" if device == "cuda" else "CPU check (tiny sizes)"))
    results = measure_all(device, sizes, lambda text: print(text, flush=True))
    results.update({"device": device, "header": header, "seconds": time.perf_counter() - started, "sizes": sizes})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "summary.md").write_text(summary(results, header + f"; measured in {results['seconds']:.0f} s"))
    print(f"bench-gpu: {out / 'bench.json'}, {out / 'summary.md'} ({results['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
