"""``crl-merge merge METHOD A.safetensors B.safetensors [...] -o OUT``: merge checkpoints
without extra data. The architecture comes from the first checkpoint's sidecar; the merged
model is written with :func:`crl_merge.checkpoint.save_model`, and its sidecar records the
method, its settings and the source checkpoints (with their SHA-256)."""

from __future__ import annotations

import argparse
from pathlib import Path

from crl_merge.checkpoint import load_model, save_model
from crl_merge.merge.checks import check_alpha, merge_names
from crl_merge.merge.diagnostics import l2_distance
from crl_merge.merge.operators import average, interpolate, task_arithmetic, ties_merge
from crl_merge.merge.specs import spec_for
from crl_merge.merge.weight_matching import align

METHODS = {
    "average": "equal-weight mean of two or more models",
    "interpolate": "alpha·A + (1 − alpha)·B",
    "rebasin": "Git Re-Basin: weight-match B onto A, then alpha·A + (1 − alpha)·π(B)",
    "task-arithmetic": "base + scale·Σ(model − base) (needs --base)",
    "ties": "TIES: trimmed, sign-elected task vectors added to --base",
}
PAIRWISE = ("interpolate", "rebasin")
WITH_BASE = ("task-arithmetic", "ties")


def add_commands(subparsers) -> None:
    """Add the ``merge`` command to the ``crl-merge`` parser's subparsers."""
    p = subparsers.add_parser("merge", help="merge checkpoints (weight averaging, interpolation, Git Re-Basin, …)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                              epilog="methods:\n" + "\n".join(f"  {k:16} {v}" for k, v in METHODS.items()))
    p.add_argument("method", choices=list(METHODS))
    p.add_argument("checkpoints", nargs="+", metavar="CHECKPOINT", help="A.safetensors B.safetensors …")
    p.add_argument("-o", "--out", required=True, help="output path (.safetensors; a .json sidecar goes beside it)")
    p.add_argument("--alpha", type=float, help="weight of A for interpolate and rebasin (default 0.5)")
    p.add_argument("--subset", action="append",
                   help="merge only these parameters: a group name (attention, mlp, conv3, layer1, …) or a regex; "
                        "repeat for a union (default: all mergeable parameters)")
    p.add_argument("--seed", type=int, default=0, help="seed of the weight-matching permutation order (rebasin)")
    p.add_argument("--base", help="the shared starting checkpoint (task-arithmetic, ties)")
    p.add_argument("--scale", type=float, default=1.0, help="task-vector scale (task-arithmetic, ties)")
    p.add_argument("--density", type=float, default=0.2, help="fraction of each task vector kept (ties)")
    p.set_defaults(func=merge_command)


def merge_command(args) -> int:
    _check_arguments(args)
    paths = ([args.base] if args.base else []) + list(args.checkpoints)
    models, metas = zip(*(load_model(path) for path in paths))
    names = {m["architecture"].get("name") for m in metas}
    if len(names) > 1:
        raise ValueError("checkpoints of different architectures: "
                         + ", ".join(f"{p} is {m['architecture'].get('name')}" for p, m in zip(paths, metas)))
    state_dicts = [m.state_dict() for m in models]
    provenance = {"method": args.method, "subset": args.subset,
                  "sources": [{"path": str(p), "sha256": m["weights"]["sha256"], "task": m.get("task")}
                              for p, m in zip(paths, metas)]}
    if args.base:
        provenance["base"] = provenance["sources"][0]
        provenance["sources"] = provenance["sources"][1:]
    merged, provenance = _merge(args, state_dicts, [m["architecture"] for m in metas], provenance)
    model = models[0]
    model.load_state_dict(merged)
    out = save_model(args.out, model, merge=provenance)
    print(f"wrote {out} ({args.method} of {', '.join(Path(p).name for p in args.checkpoints)})")
    if "objective" in provenance:
        print(f"weight matching: objective {provenance['objective'][0]:.4g} → {provenance['objective'][-1]:.4g} "
              f"in {len(provenance['objective']) - 1} sweeps; L2(A, B) {provenance['l2_before']:.4g} → "
              f"L2(A, π(B)) {provenance['l2_after']:.4g}")
    return 0


def _check_arguments(args) -> None:
    count = len(args.checkpoints)
    if args.method in PAIRWISE and count != 2:
        raise ValueError(f"{args.method} merges exactly two checkpoints, got {count}")
    if args.method == "average" and count < 2:
        raise ValueError("average needs at least two checkpoints")
    if args.method not in PAIRWISE and args.alpha is not None:
        raise ValueError(f"--alpha applies to {' and '.join(PAIRWISE)}, not to {args.method}")
    if (args.method in WITH_BASE) != (args.base is not None):
        raise ValueError(f"--base is needed by {' and '.join(WITH_BASE)} and only by them")


def _merge(args, state_dicts: list, architectures: list, provenance: dict) -> tuple[dict, dict]:
    """The merged state dict, and the provenance completed with the method's settings."""
    if args.method == "average":
        return average(state_dicts, subset=args.subset), provenance
    if args.method in WITH_BASE:
        base, models = state_dicts[0], state_dicts[1:]
        provenance["scale"] = args.scale
        if args.method == "task-arithmetic":
            return task_arithmetic(base, models, args.scale, subset=args.subset), provenance
        provenance["density"] = args.density
        return ties_merge(base, models, args.density, args.scale, subset=args.subset), provenance
    alpha = 0.5 if args.alpha is None else args.alpha
    a, b = state_dicts
    provenance["alpha"] = alpha
    if args.method == "interpolate":
        return interpolate(a, b, alpha, subset=args.subset), provenance
    check_alpha(alpha)
    merge_names([a, b], args.subset)  # fail on bad input before the matching
    alignment = align(spec_for(*architectures), a, b, seed=args.seed)
    provenance |= {"seed": args.seed, "objective": alignment.objective,
                   "l2_before": l2_distance(a, b), "l2_after": l2_distance(a, alignment.aligned)}
    return interpolate(a, alignment.aligned, alpha, subset=args.subset), provenance
