"""How a suite run's resolution (UB − random over the median width of each round's 95% CIs,
the leaderboard's last line) would change with fewer evaluation episodes per model, read from
the records of one run: what sizing a preset's ``evaluation.episodes`` needs.

    python benchmarks/resolution_by_episodes.py fruitbot --preset quick --store runs --episodes 500 1000 2000

Under the thesis's episode rule an evaluation of N episodes keeps the first N to finish, in
finishing order, and the environments, levels and sampled actions do not depend on N; so the
first n episodes of a stored N-episode record are exactly the record an evaluation of n
episodes makes (``tests/test_resolution_by_episodes.py`` checks this). Under ``per_env``
they are not, and the script refuses. Nothing is trained or evaluated here.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

import numpy as np

from crl_merge.procgen.report import collect, leaderboard, resolution
from crl_merge.procgen.suite import SUPER, load_suite
from crl_merge.store import RunStore
from envs.episodes import ci95


def first_episodes(record: dict, episodes: int) -> dict:
    """The super-task record an evaluation of ``episodes`` episodes would have written (the
    fields the leaderboard reads), from a record of at least that many."""
    if len(record["returns"]) < episodes:
        raise SystemExit(f"a record holds {len(record['returns'])} episodes, fewer than {episodes}: "
                         "ask for fewer, or evaluate with more (evaluation.episodes)")
    returns = np.asarray(record["returns"][:episodes])
    return {**record, "returns": returns.tolist(), "lengths": record["lengths"][:episodes],
            "mean_return": float(returns.mean()), "ci95_return": ci95(returns)}


def truncated(results, episodes: int):
    """``results`` with every super-task record made with ``evaluation.episodes`` (the upper
    bound's, the random agent's and the merges') cut to its first ``episodes`` episodes; the
    sub-task models' cross-evaluations keep their ``cross_episodes``."""
    def cut(evals: dict[str, dict]) -> dict[str, dict]:
        return {**evals, SUPER: first_episodes(evals[SUPER], episodes)}

    models = {m: cut(e) if results.model_task[m] == SUPER else e for m, e in results.models.items()}
    return replace(results, models=models, random=cut(results.random),
                   merges={key: [cut(e) for e in runs] for key, runs in results.merges.items()})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("suite", help="a suite name or file, as for crl-merge run")
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--store", default="runs")
    parser.add_argument("--episodes", type=int, nargs="+", required=True, help="episode counts to compare")
    args = parser.parse_args(argv)
    suite = load_suite(args.suite, args.preset)
    if suite.evaluation.rule != "thesis":
        raise SystemExit(f"evaluation.rule is {suite.evaluation.rule!r}: only the 'thesis' rule's records "
                         "have their shorter evaluations as prefixes")
    if bad := [n for n in args.episodes if n < 2]:
        raise SystemExit(f"--episodes must be at least 2 (a CI needs two episodes), got {bad}")
    results = collect(suite, RunStore(args.store))
    for episodes in args.episodes:
        board = leaderboard(suite, truncated(results, episodes))
        print(f"{episodes} episodes: {resolution(board)}")


if __name__ == "__main__":
    main(sys.argv[1:])
