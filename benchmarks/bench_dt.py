"""Decision Transformer speed: training steps per second and evaluation episodes per second.

    make bench-dt                                   # CPU (and GPU if one is present)
    python benchmarks/bench_dt.py --device cpu --episodes 10 --eval-steps 200 --json

The model is the paper's (3 layers, 1 head, width 128, K = 20); a training step is one
batch of 64 windows (forward, backward, AdamW), as in ``crl_merge.dt.train``. Evaluation
plays ``--episodes`` HalfCheetah episodes (it never terminates early, so every episode is
the full length) in lockstep, one batched ``get_action`` per step, and reports complete
1,000-step episodes per second (extrapolated when ``--eval-steps`` cuts them short). The
data is random (speed does not depend on it); MuJoCo steps are included.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch

from crl_merge.dt.data import SequenceSampler
from crl_merge.dt.evaluate import evaluate
from crl_merge.dt.train import action_loss
from crl_merge.models import DecisionTransformer, DTConfig
from envs.mujoco.datasets import OfflineDataset
from envs.mujoco.tasks import get_task


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.machine()


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bench_train(device: str, steps: int, batch_size: int) -> float:
    task = get_task("halfcheetah")
    rng = np.random.default_rng(0)
    n = 20_000
    data = OfflineDataset(rng.normal(size=(n, task.state_dim)), rng.uniform(-1, 1, (n, task.act_dim)),
                          rng.normal(size=n), np.zeros(n, bool), np.arange(n) % 1000 == 999)
    sampler = SequenceSampler(data, context=20)
    model = DecisionTransformer(DTConfig(envs={"halfcheetah": (task.state_dim, task.act_dim)})).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-4)

    def step():
        loss = action_loss(model, "halfcheetah", sampler.sample(batch_size, rng).to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        opt.step()

    for _ in range(3):
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return steps / (time.perf_counter() - start)


def bench_eval(device: str, episodes: int, max_steps: int) -> float:
    task = get_task("halfcheetah")
    model = DecisionTransformer(DTConfig(envs={"halfcheetah": (task.state_dim, task.act_dim)}))
    mean, std = np.zeros(task.state_dim, np.float32), np.ones(task.state_dim, np.float32)
    evaluate(model, "halfcheetah", task, mean, std, 2, 12000, device=device, max_steps=5)  # warm-up
    _sync(device)
    start = time.perf_counter()
    result = evaluate(model, "halfcheetah", task, mean, std, episodes, 12000, device=device, max_steps=max_steps)
    _sync(device)
    seconds = time.perf_counter() - start
    return episodes * (result.lengths.mean() / task.max_episode_steps) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", nargs="+", default=None, help="default: cpu, and cuda if available")
    parser.add_argument("--train-steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--eval-steps", type=int, default=1000, help="cut episodes after this many steps")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    devices = args.device or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    rows = []
    for device in devices:
        name = torch.cuda.get_device_name() if device.startswith("cuda") else _cpu_name()
        rows.append({"device": device, "name": name, "threads": torch.get_num_threads(),
                     "train_steps_per_s": bench_train(device, args.train_steps, args.batch_size),
                     "eval_episodes": args.episodes,
                     "eval_episodes_per_s": bench_eval(device, args.episodes, args.eval_steps)})
    if args.json:
        print(json.dumps(rows))
        return
    for r in rows:
        per_50 = 50 / r["eval_episodes_per_s"]
        print(f"{r['device']} ({r['name']}, {r['threads']} thread(s)): {r['train_steps_per_s']:.2f} training steps/s "
              f"(batch {args.batch_size}); {r['eval_episodes_per_s']:.3f} episodes/s with {r['eval_episodes']} in "
              f"lockstep (50 × 1,000-step episodes ≈ {per_50:.0f} s)")


if __name__ == "__main__":
    main()
