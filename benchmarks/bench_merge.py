"""Seconds per Git Re-Basin weight matching of two models, CPU (goals: NatureCNN actors
under 1 s, 3-layer 128-wide Decision Transformers under 5 s).

    make bench-merge
    python benchmarks/bench_merge.py --repeats 5 --threads 0   # torch's default thread count

Each pair is two independently initialised models (different seeds), the case with the
most sweeps; a permuted copy converges in fewer. The time covers validation, the float64
copies, both starts, every sweep and the objective per sweep, but not applying the
permutation. It runs on one torch thread by default: the matrices are small, and when
other processes keep the cores busy torch's thread pool makes it several times slower
(on a 2-core machine under load: NatureCNN 0.65 s on one thread, 3.2 s on two).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from crl_merge.merge import apply_permutation, l2_distance, spec_for, weight_matching
from crl_merge.models import DecisionTransformer, DTConfig, make_actor

GOALS_S = {"NatureCNN actor": 1.0, "DT 3×128, 1 head": 5.0, "DT 3×128, 4 heads": 5.0}


def pairs() -> dict[str, tuple[torch.nn.Module, torch.nn.Module]]:
    def dt(seed: int, n_head: int) -> DecisionTransformer:
        torch.manual_seed(seed)
        return DecisionTransformer(DTConfig(envs={"hopper": (11, 3)}, n_layer=3, n_head=n_head, n_embd=128))

    return {"NatureCNN actor": (make_actor(0), make_actor(1)),
            "DT 3×128, 1 head": (dt(0, 1), dt(1, 1)), "DT 3×128, 4 heads": (dt(0, 4), dt(1, 4))}


def bench(a: torch.nn.Module, b: torch.nn.Module, repeats: int) -> dict:
    spec, sa, sb = spec_for(a), a.state_dict(), b.state_dict()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        perm, objective = weight_matching(spec, sa, sb, seed=0)
        times.append(time.perf_counter() - start)
    return {"seconds": statistics.median(times), "sweeps": len(objective) - 1,
            "parameters": sum(v.numel() for v in sa.values()),
            "l2_before": l2_distance(sa, sb), "l2_after": l2_distance(sa, apply_permutation(spec, perm, sb))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per pair (the median is reported)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads; 0: torch's default")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    rows = [{"pair": name, **bench(a, b, args.repeats), "goal_s": GOALS_S[name]} for name, (a, b) in pairs().items()]
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print(f"# {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}, median of {args.repeats}")
    print(f"{'pair':<20} {'params':>10} {'sweeps':>7} {'seconds':>8} {'goal':>6} {'L2 before':>10} {'L2 after':>9}")
    for r in rows:
        print(f"{r['pair']:<20} {r['parameters']:>10,} {r['sweeps']:>7} {r['seconds']:>8.3f} {r['goal_s']:>5.0f}s "
              f"{r['l2_before']:>10.2f} {r['l2_after']:>9.2f}")


if __name__ == "__main__":
    main()
