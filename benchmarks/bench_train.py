"""Environment steps per second of end-to-end PPO training, in one run: the ``fast`` trainer
with all the machine's threads (fp32 as a library call makes it; fp32 and bf16 autocast in a
process that keeps freed memory, as ``crl-merge`` does) and with one, K models trained as one
batch (``--batch K``), N concurrent one-thread trainings (what ``crl-merge run --jobs N`` does
with a grid), and stable-baselines3's PPO (the reference), same task and hyperparameters.
Every CPU measurement runs in a fresh process, so that no setting leaks from one to the next.

    make bench-train                                   # CPU, and the GPU if there is one
    python benchmarks/bench_train.py --updates 3 --device cuda

Each measurement trains for ``--updates`` PPO updates (64 envs × 256 steps each, the
thesis's settings) after one warm-up update, and reports steps/s over the timed updates.
The header says what the CPU offers (torch's vector-instruction level, and whether it has
the AVX-512 bf16 instructions that would make bf16 autocast pay on a CPU).
"""

from __future__ import annotations

import argparse
import multiprocessing
import platform
import time
from pathlib import Path

import torch

import envs
from crl_merge.host_memory import keep_freed_memory
from crl_merge.models import make_actor_critic
from crl_merge.procgen.ppo.config import PPOConfig
from crl_merge.procgen.ppo.batched import train_fast_batched
from crl_merge.procgen.ppo.fast import train_fast
from crl_merge.procgen.ppo.sb3 import train_sb3

TRAINERS = {"fast": train_fast, "sb3": train_sb3}


def steps_per_second(trainer: str, task_name: str, ppo: PPOConfig, updates: int, device: str,
                     threads: int | None = None, precision: str = "fp32", keep_memory: bool = False) -> float:
    if threads:
        torch.set_num_threads(threads)
    if keep_memory:
        keep_freed_memory()
    rows = []
    options = {"precision": precision} if trainer == "fast" else {}
    TRAINERS[trainer](envs.get_task(task_name), ppo, (updates + 1) * ppo.rollout_size, 0, 0, device=device,
                      progress=lambda step, row: rows.append(row), **options)
    timed = rows[1:]  # the first update pays for warm-up (allocation, kernel selection)
    return len(timed) * ppo.rollout_size / sum(ppo.rollout_size / r["steps_per_second"] for r in timed)


def batched_steps_per_second(count: int, task_name: str, ppo: PPOConfig, updates: int, device: str) -> float:
    """Aggregate steps/s of ``count`` models trained as one batch (the batched ``fast``)."""
    rows = []
    train_fast_batched([envs.get_task(task_name)] * count, ppo, (updates + 1) * ppo.rollout_size,
                       [(k, k) for k in range(count)], device=device, progress=lambda step, r: rows.append(r[0]))
    timed = rows[1:]
    return count * len(timed) * ppo.rollout_size / sum(ppo.rollout_size / r["steps_per_second"] for r in timed)


def in_processes(jobs: int, *args) -> float:
    """The summed :func:`steps_per_second` of ``jobs`` fresh processes measuring ``args`` at once."""
    with multiprocessing.get_context("spawn").Pool(jobs) as pool:
        return sum(pool.starmap(steps_per_second, [args] * jobs))


def minibatch_update_ms(input_layout: str, bf16: bool, batch_size: int, keep_memory: bool = False,
                        repeats: int = 5) -> float:
    """Milliseconds of one PPO-sized forward + backward + Adam step of the shared actor-critic
    on ``batch_size`` frames, the frames handed to the convolutions as ``fast`` does (a
    channels-last view, ``"view"``) or as contiguous NCHW memory (``"copy"``: the layout
    before, without the cost of making the copy), in fp32 or under CPU bf16 autocast, in a
    process that keeps freed memory or not. The median of ``repeats`` after a warm-up."""
    if keep_memory:
        keep_freed_memory()
    policy = make_actor_critic("shared", 0)
    optimizer = torch.optim.Adam(policy.parameters(), lr=5e-4)
    frames = torch.randint(0, 256, (batch_size, 64, 64, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    obs = frames.permute(0, 3, 1, 2)
    obs = (obs.contiguous() if input_layout == "copy" else obs).permute(0, 2, 3, 1)  # NHWC again, as the trunk reads it
    times = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits, values = policy(obs)
            loss = logits.float().logsumexp(1).mean() + values.float().pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(1000 * (time.perf_counter() - started))
    return sorted(times[1:])[len(times[1:]) // 2]


def matmul_gflops(threads: int, size: int = 2048, repeats: int = 5) -> float:
    """fp32 GFLOP/s of a ``size``² matrix product on ``threads`` threads: what the CPU reaches."""
    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size ** 3 * repeats / (time.perf_counter() - started) / 1e9


def update_gflop(batch_size: int) -> float:
    """The multiply-adds of one forward + backward of the shared actor-critic on ``batch_size``
    frames, ×2 as FLOPs: the forward's, and twice that for the backward, less conv1's input
    gradient (its input is the frames, which need none)."""
    conv1, conv2, conv3 = 15 * 15 * 32 * 3 * 8 * 8, 6 * 6 * 64 * 32 * 4 * 4, 4 * 4 * 64 * 64 * 3 * 3
    forward = conv1 + conv2 + conv3 + 1024 * 512 + 512 * 16
    return 2 * batch_size * (3 * forward - conv1) / 1e9


def cpu_flags() -> set[str]:
    cpuinfo = Path("/proc/cpuinfo")
    for line in cpuinfo.read_text().splitlines() if cpuinfo.exists() else []:
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="starpilot/super")
    parser.add_argument("--updates", type=int, default=2, help="timed PPO updates per measurement")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cpu, plus cuda if available)")
    parser.add_argument("--n-envs", type=int, default=64)
    parser.add_argument("--jobs", type=int, default=2, help="concurrent one-thread trainings to measure (CPU)")
    parser.add_argument("--batch", type=int, default=2, help="models trained as one batch to measure")
    parser.add_argument("--layers", action="store_true",
                        help="only the minibatch update: input layout (channels-last view vs NCHW copy) × fp32/bf16")
    args = parser.parse_args()
    devices = [args.device] if args.device else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    ppo = PPOConfig.from_mapping({"n_envs": args.n_envs}, "--n-envs")
    threads = torch.get_num_threads()
    bf16 = "has" if "avx512_bf16" in cpu_flags() else "lacks"
    print(f"# {platform.machine()}, {threads} torch threads, torch {torch.__version__}, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, {bf16} avx512_bf16"
          + (f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""))
    print(f"# {args.task}, {ppo.n_envs} envs × {ppo.n_steps} steps per update, {ppo.n_epochs} epochs, "
          f"minibatch {ppo.batch_size}; {args.updates} timed updates")
    if args.layers:
        print(f"# one minibatch update of {ppo.batch_size} frames (forward, backward, Adam), median of 5, "
              "each in a fresh process")
        print(f"{'frames reach the convolutions as':<36} {'freed memory':<13} {'fp32 ms':>8} {'bf16 ms':>8}")
        for layout, name in (("view", "a channels-last view (fast)"), ("copy", "a contiguous NCHW copy (before)")):
            for keep in (False, True):
                with multiprocessing.get_context("spawn").Pool(1) as pool:
                    fp32, bf16_ms = (pool.apply(minibatch_update_ms, (layout, bf16, ppo.batch_size, keep))
                                     for bf16 in (False, True))
                print(f"{name:<36} {'kept' if keep else 'returned':<13} {fp32:>8.0f} {bf16_ms:>8.0f}   (fp32: "
                      f"{update_gflop(ppo.batch_size) / fp32 * 1000:.0f} GFLOP/s)")
        print(f"# fp32 2048² matrix product: {matmul_gflops(1):.0f} GFLOP/s on 1 thread, "
              f"{matmul_gflops(threads):.0f} on {threads}")
        return
    print(f"{'configuration':<46} {'steps/s':>9} {'/ sb3':>7} {'/ fast fp32':>12}")
    for device in devices:
        started = time.perf_counter()
        # on the CPU each measurement is a fresh process; a GPU keeps no such host state.
        # Arguments: trainer, task, ppo, updates, device, threads, precision, keep freed memory
        measure = (lambda *a: in_processes(1, *a)) if device == "cpu" else steps_per_second  # noqa: E731
        common = (args.task, ppo, args.updates, device)
        sb3 = measure("sb3", *common)
        rows = [(f"{device}: sb3 ({threads} threads)", sb3),
                (f"{device}: fast fp32 ({threads} threads)", measure("fast", *common))]
        if device == "cpu":
            rows += [("cpu: fast fp32, freed memory kept", measure("fast", *common, None, "fp32", True)),
                     ("cpu: fast bf16, freed memory kept", measure("fast", *common, None, "bf16", True)),
                     ("cpu: fast fp32 (1 thread)", measure("fast", *common, 1))]
            if args.jobs > 1:
                rows += [(f"cpu: fast fp32, {args.jobs} 1-thread jobs (sum)", in_processes(args.jobs, "fast", *common, 1)),
                         (f"cpu: fast bf16 kept, {args.jobs} 1-thread jobs (sum)",
                          in_processes(args.jobs, "fast", *common, 1, "bf16", True))]
        else:
            rows.append((f"{device}: fast bf16", measure("fast", *common, None, "bf16")))
        if args.batch > 1:
            rows.append((f"{device}: fast, batch of {args.batch} (sum)",
                         batched_steps_per_second(args.batch, args.task, ppo, args.updates, device)))
        for name, rate in rows:
            print(f"{name:<46} {rate:>9,.0f} {rate / sb3:>6.2f}x {rate / rows[1][1]:>11.2f}x")
        print(f"# {device}: measured in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
