"""The merge plan of a suite (protocols A): which pairs of sub-task models are merged
(rounds), by which methods, at which α and in which direction. Parsing only: making the
merged actors is :mod:`crl_merge.procgen.merging`.

In a suite file::

    merge:
      rounds:       # pairs (first sub-task's seed pair, second sub-task's seed pair)
        same_init: [["00", "01"], ["11", "12"], ...]
        diff_init: [["00", "12"], ["11", "23"], ...]
      states: 2048  # rollout states for activation matching and Fisher merging
      pairs_per_round: 2   # optional: merge only the first pairs of each round
      methods:
        - {method: average, alpha: [0.5]}
        - {method: rebasin, alpha: [0.25, 0.5, 0.75], directions: [ab, ba]}
        - {method: fisher, beyond_thesis: true}
      continual:    # optional: merging during training (the thesis code's train_and_merge.py)
        - {protocol: federated, method: average, alpha: [0.5], every: [1, 4]}
        - {protocol: checkpoint, method: rebasin, alpha: [0.5], every: [4], directions: [ab, ba]}

Methods and their settings are :data:`crl_merge.merge.methods.MERGE_METHODS`. Direction
``ab`` makes the first sub-task's model A (kept) and the second's B (the one permuted and
weighted by 1 − α); ``ba`` swaps them. Methods that need a common base model (task
arithmetic, TIES) apply only to pairs with the same init seed, whose base is that shared
initialisation.

``continual`` rows (:class:`ContinualRow`, run by :mod:`crl_merge.procgen.continual`) train
new models on the same pairs: ``federated`` trains A on the first sub-task and B on the
second at once and replaces both by their merge every ``every`` PPO updates; ``checkpoint``
trains A (direction ``ab``; B for ``ba``) and merges it every ``every`` updates with the
snapshot of the same update count of the grid's model of the other sub-task. Only the
thesis code's two procedures, ``average`` and ``rebasin``, merge during training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from crl_merge.merge.methods import DEFAULTS, DIRECTIONS, MERGE_METHODS
from envs.schema import ConfigError, Option, check_keys, check_value, join, mapping

_ALPHA = Option("float", lo=0.0, hi=1.0)
_SETTINGS = {"scale": Option("float", lo=0.0, hi=10.0, check=lambda v: None if v > 0 else "must be > 0"),
             "density": Option("float", lo=0.0, hi=1.0, check=lambda v: None if v > 0 else "must be > 0"),
             "outliers": Option("float", lo=0.0, hi=1.0, check=lambda v: None if v < 1 else "must be < 1")}
FLAGS = ("repair", "exact")  # true/false settings, named in the row id when true
PLAN_KEYS = ("rounds", "methods", "states", "pairs_per_round", "continual")
CONTINUAL_PROTOCOLS = ("federated", "checkpoint")
CONTINUAL_METHODS = ("average", "rebasin")  # the procedures of the thesis code's train_and_merge.py


@dataclass(frozen=True)
class MergeMethod:
    """One row family of the leaderboard: a method at one α, in one direction."""

    method: str
    alpha: float | None = None
    direction: str = "ab"
    scale: float | None = None
    density: float | None = None
    outliers: float | None = None
    repair: bool = False
    exact: bool = False
    beyond_thesis: bool = False

    @property
    def info(self):
        return MERGE_METHODS[self.method]

    @property
    def needs_shared_init(self) -> bool:
        return self.info.needs_base

    @property
    def needs_states(self) -> bool:
        """Whether making it plays rollouts of the source models."""
        return self.info.needs_states or self.repair

    @property
    def row_id(self) -> str:
        """A file-name-safe id: ``rebasin-a0.25-ab``, ``ties-d0.2-s1.0``, ``fisher``."""
        parts = [self.method]
        if self.alpha is not None:
            parts.append(f"a{self.alpha:g}")
        if self.density is not None:
            parts.append(f"d{self.density:g}")
        if self.outliers is not None:
            parts.append(f"o{self.outliers:g}")
        if self.scale is not None:
            parts.append(f"s{self.scale:g}")
        if "directions" in self.info.settings:
            parts.append(self.direction)
        parts += [flag for flag in FLAGS if getattr(self, flag)]
        return "-".join(parts)


@dataclass(frozen=True)
class ContinualRow:
    """One continual-merging row: a protocol with a merge procedure at one α, merging every
    ``every`` PPO updates. ``direction`` ``ab``: α weighs the first sub-task's model A (kept
    by Re-Basin, and the learner of ``checkpoint``); ``ba`` swaps the sub-tasks' roles."""

    protocol: str
    method: str
    alpha: float
    every: int
    direction: str = "ab"
    rounds: tuple[str, ...] | None = None  # the rounds whose pairs it trains (None: all)
    beyond_thesis: bool = True  # the thesis code has these schemes; the thesis reports none

    @property
    def row_id(self) -> str:
        """``federated-average-a0.5-m4``, ``checkpoint-rebasin-a0.5-m4-ba``."""
        direction = f"-{self.direction}" if self.protocol == "checkpoint" or self.method == "rebasin" else ""
        return f"{self.protocol}-{self.method}-a{self.alpha:g}-m{self.every}{direction}"


@dataclass(frozen=True)
class MergePlan:
    rounds: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    methods: tuple[MergeMethod, ...] = ()
    states: int = 2048
    pairs_per_round: int | None = None  # merge only the first pairs of each round that the grid allows
    continual: tuple[ContinualRow, ...] = ()

    @property
    def snapshot_every(self) -> int | None:
        """Every how many updates the grid's sub-task trainings keep a snapshot of their
        policy: what the ``checkpoint`` rows merge with (None when there are none)."""
        intervals = [row.every for row in self.continual if row.protocol == "checkpoint"]
        return math.gcd(*intervals) if intervals else None


def _method_rows(entry, at: str) -> list[MergeMethod]:
    """The leaderboard rows of one ``methods`` entry: one per α and direction."""
    if not isinstance(entry, dict) or entry.get("method") not in MERGE_METHODS:
        raise ConfigError(f"{at}: needs 'method', one of {sorted(MERGE_METHODS)}; got {entry!r}")
    name = entry["method"]
    info = MERGE_METHODS[name]
    check_keys(entry, {"method", "beyond_thesis", *info.settings}, f"{at} ({name})")
    flags = {flag: check_value(entry.get(flag, False), Option("bool"), join(at, flag))
             for flag in FLAGS if flag in info.settings}
    beyond = check_value(entry.get("beyond_thesis", not info.in_thesis or any(flags.values())), Option("bool"),
                         join(at, "beyond_thesis"))
    alphas = entry.get("alpha", [DEFAULTS["alpha"]] if "alpha" in info.settings else [None])
    alphas = alphas if isinstance(alphas, list) else [alphas]
    directions = check_value(entry.get("directions", ["ab"]), Option("list", choices=DIRECTIONS),
                             join(at, "directions"))
    settings = {k: check_value(entry.get(k, DEFAULTS[k]), option, join(at, k)) if k in info.settings else None
                for k, option in _SETTINGS.items()}
    return [MergeMethod(name, None if alpha is None else check_value(alpha, _ALPHA, join(at, "alpha")), direction,
                        beyond_thesis=beyond, **flags, **settings)
            for alpha in alphas for direction in directions]


def _continual_rows(entry, at: str, round_names) -> list[ContinualRow]:
    """The rows of one ``continual`` entry: one per α, interval and direction."""
    keys = ("protocol", "method", "alpha", "every", "directions", "rounds")
    entry = mapping(entry, at)
    check_keys(entry, keys, at, required=("protocol", "method", "every"))
    protocol = check_value(entry["protocol"], Option("str", choices=CONTINUAL_PROTOCOLS), join(at, "protocol"))
    method = check_value(entry["method"], Option("str", choices=CONTINUAL_METHODS), join(at, "method"))
    as_list = lambda v: v if isinstance(v, list) else [v]  # noqa: E731
    alphas = [check_value(a, _ALPHA, join(at, "alpha")) for a in as_list(entry.get("alpha", DEFAULTS["alpha"]))]
    intervals = [check_value(m, Option("int", lo=1), join(at, "every")) for m in as_list(entry["every"])]
    directions = check_value(entry.get("directions", ["ab"]), Option("list", choices=DIRECTIONS),
                             join(at, "directions"))
    if protocol == "federated" and method == "average" and tuple(directions) != ("ab",):
        raise ConfigError(f"{join(at, 'directions')}: federated averaging treats A and B alike (α weighs A); "
                          "give alpha instead of directions")
    rounds = entry.get("rounds")
    if rounds is not None:
        rounds = tuple(check_value(rounds, Option("list", choices=tuple(round_names)), join(at, "rounds")))
    return [ContinualRow(protocol, method, alpha, every, direction, rounds)
            for alpha in alphas for every in intervals for direction in directions]


def parse_merge_plan(data, where: str, seed_names: dict[str, list[str]]) -> MergePlan:
    """Validate a suite's ``merge`` section. ``seed_names`` are the trained seed pairs of the
    two sub-tasks (first, second), which the rounds must refer to."""
    data = mapping(data, where)
    check_keys(data, PLAN_KEYS, where, required=("rounds", "methods"))
    first, second = seed_names.values()
    rounds = {}
    for name, pairs in mapping(data["rounds"], join(where, "rounds")).items():
        if not isinstance(pairs, list) or not pairs:
            raise ConfigError(f"{where}.rounds.{name} must be a non-empty list of [seeds of A, seeds of B]")
        for i, pair in enumerate(pairs):
            if not (isinstance(pair, list) and len(pair) == 2 and pair[0] in first and pair[1] in second):
                raise ConfigError(f"{where}.rounds.{name}[{i}] = {pair!r}: must be [\"IL\", \"IL\"], the seed pairs of "
                                  f"a first-sub-task model {first} and a second-sub-task model {second} (quoted)")
        rounds[name] = tuple(tuple(p) for p in pairs)
    if not rounds:
        raise ConfigError(f"{where}.rounds is empty: name at least one round of pairs to merge")
    entries = data["methods"]
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{where}.methods must be a non-empty list of {{method: NAME, ...}}; "
                          f"methods: {sorted(MERGE_METHODS)}")
    methods = [row for i, entry in enumerate(entries) for row in _method_rows(entry, f"{where}.methods[{i}]")]
    ids = [m.row_id for m in methods]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise ConfigError(f"{where}.methods: listed twice: {duplicated}")
    states = check_value(data.get("states", 2048), Option("int", lo=1), join(where, "states"))
    pairs = check_value(data.get("pairs_per_round"), Option("int", lo=1, nullable=True), join(where, "pairs_per_round"))
    entries = data.get("continual") or []
    if not isinstance(entries, list):
        raise ConfigError(f"{where}.continual must be a list of {{protocol: {'|'.join(CONTINUAL_PROTOCOLS)}, "
                          f"method: {'|'.join(CONTINUAL_METHODS)}, alpha: [...], every: [...]}}")
    continual = [row for i, entry in enumerate(entries) for row in _continual_rows(entry, f"{where}.continual[{i}]", rounds)]
    ids = [row.row_id for row in continual]
    if duplicated := sorted({i for i in ids if ids.count(i) > 1}):
        raise ConfigError(f"{where}.continual: listed twice: {duplicated}")
    return MergePlan(rounds, tuple(methods), states, pairs, tuple(continual))
