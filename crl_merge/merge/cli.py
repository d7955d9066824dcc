"""``crl-merge merge METHOD A.safetensors B.safetensors [...] -o OUT``: merge checkpoints
without extra data (the weights-only methods of :data:`crl_merge.merge.methods.MERGE_METHODS`,
the same names as in a suite's merge plan). The architecture comes from the first
checkpoint's sidecar; the merged model is written with :func:`crl_merge.checkpoint.save_model`,
and its sidecar records the method, its settings and the source checkpoints (with their
SHA-256). An existing output file is refused unless ``--force``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from crl_merge.checkpoint import load_model, save_model
from crl_merge.merge.methods import DEFAULTS, MERGE_METHODS, WEIGHTS_ONLY, merge_weights
from crl_merge.merge.specs import spec_for
from crl_merge.store import MANIFEST


def add_commands(subparsers) -> None:
    """Add the ``merge`` command to the ``crl-merge`` parser's subparsers."""
    p = subparsers.add_parser(
        "merge", help="merge checkpoints (weight averaging, Git Re-Basin, SLERP, task-vector methods)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="methods:\n" + "\n".join(f"  {k:16} {MERGE_METHODS[k].doc}" for k in WEIGHTS_ONLY)
        + "\n(activation_matching, fisher and ensemble need rollouts: they run inside `crl-merge run`)")
    p.add_argument("method", choices=list(WEIGHTS_ONLY))
    p.add_argument("checkpoints", nargs="+", metavar="CHECKPOINT", help="A.safetensors B.safetensors …")
    p.add_argument("-o", "--out", required=True, help="output path (.safetensors; a .json sidecar goes beside it)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.add_argument("--alpha", type=float,
                   help="weight of A (average of two, rebasin, slerp); default: the equal-weight mean, or 0.5")
    p.add_argument("--subset", action="append",
                   help="merge only these parameters: a group name (attention, mlp, conv3, layer1, …) or a regex; "
                        "repeat for a union (default: all mergeable parameters)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the weight-matching permutation order (rebasin, merge_many) or of the drops (dare)")
    p.add_argument("--max-iter", type=int, default=100,
                   help="weight matching's most sweeps (rebasin) or passes (merge_many); default %(default)s")
    p.add_argument("--weights", type=float, nargs="+", metavar="W",
                   help="per-model coefficients of average, one per checkpoint (normalised to sum to 1)")
    p.add_argument("--initial-permutation", metavar="JSON",
                   help="rebasin: start weight matching from this permutation: the .json sidecar of an earlier "
                        "rebasin merge (its merge.permutation) or a JSON mapping of permutation name to indices")
    p.add_argument("--base", help="the shared starting checkpoint (task_arithmetic, ties, dare, breadcrumbs, "
                                  "model_stock)")
    p.add_argument("--scale", type=float, default=DEFAULTS["scale"],
                   help="task-vector scale (task_arithmetic, ties, dare, breadcrumbs; default %(default)s)")
    p.add_argument("--density", type=float, default=DEFAULTS["density"],
                   help="fraction of each task vector kept (ties, dare, breadcrumbs; default %(default)s)")
    p.add_argument("--outliers", type=float, default=DEFAULTS["outliers"],
                   help="fraction of largest task-vector entries dropped (breadcrumbs; default %(default)s)")
    p.set_defaults(func=merge_command)


def _initial_permutation(path: str | None) -> dict[str, torch.Tensor] | None:
    """The permutation in a JSON file: an earlier rebasin merge's sidecar or a plain mapping."""
    if path is None:
        return None
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"--initial-permutation {path}: cannot read it as JSON ({e})") from None
    data = data.get("merge", {}).get("permutation", data) if isinstance(data, dict) else data
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise ValueError(f"--initial-permutation {path}: expected an earlier rebasin merge's sidecar or a mapping "
                         "of permutation name to a list of indices")
    return {name: torch.tensor(values, dtype=torch.long) for name, values in data.items()}


def merge_command(args) -> int:
    out = Path(args.out)
    sources = [Path(p).with_suffix("") for p in ([args.base] if args.base else []) + list(args.checkpoints)]
    if out.with_suffix("") in sources:
        raise ValueError(f"--out {out} is one of the checkpoints being merged; write the merge elsewhere")
    if (out.parent / MANIFEST).is_file():
        raise ValueError(f"--out {out} is inside a run folder of a run store ({out.parent}), which only its run "
                         "writes; write the merge elsewhere")
    if not args.force and (out.with_suffix(".safetensors").exists() or out.with_suffix(".json").exists()):
        raise ValueError(f"--out {out} exists; give another path, or --force to overwrite it")
    paths = ([args.base] if args.base else []) + list(args.checkpoints)
    models, metas = zip(*(load_model(path) for path in paths))
    names = {m["architecture"].get("name") for m in metas}
    if len(names) > 1:
        raise ValueError("checkpoints of different architectures: "
                         + ", ".join(f"{p} is {m['architecture'].get('name')}" for p, m in zip(paths, metas)))
    tasks = {m.get("task") for m in metas if m.get("task")}
    games = {t.split("/")[0] for t in tasks}
    if len(games) > 1:
        raise ValueError(f"checkpoints trained on different games ({sorted(tasks)}): their actions and "
                         "observations mean different things, so a merge is meaningless")
    state_dicts = [m.state_dict() for m in models]
    base = state_dicts[0] if args.base else None
    state_dicts = state_dicts[1:] if args.base else state_dicts
    provenance = {"method": args.method, "subset": args.subset,
                  "sources": [{"path": str(p), "sha256": m["weights"]["sha256"], "task": m.get("task")}
                              for p, m in zip(paths, metas)]}
    if args.base:
        provenance["base"] = provenance["sources"][0]
        provenance["sources"] = provenance["sources"][1:]
    merged, record = merge_weights(args.method, state_dicts, alpha=args.alpha, base=base, scale=args.scale,
                                   density=args.density, outliers=args.outliers, max_iter=args.max_iter,
                                   spec=spec_for(*[m["architecture"] for m in metas]),
                                   seed=args.seed, subset=args.subset, weights=args.weights,
                                   initial=_initial_permutation(args.initial_permutation))
    provenance |= record
    model = models[0]
    model.load_state_dict(merged)
    written = save_model(out, model, merge=provenance)
    print(f"wrote {written} ({args.method} of {', '.join(Path(p).name for p in args.checkpoints)})")
    if "objective" in provenance:
        print(f"weight matching: objective {provenance['objective'][0]:.4g} → {provenance['objective'][-1]:.4g} "
              f"in {len(provenance['objective']) - 1} sweeps; L2(A, B) {provenance['l2_before']:.4g} → "
              f"L2(A, π(B)) {provenance['l2_after']:.4g}")
    return 0
