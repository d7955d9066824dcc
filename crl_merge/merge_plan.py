"""The merge plan of a suite (protocols A): which pairs of sub-task models are merged
(rounds), by which methods, at which α and in which direction; and making each merged actor.

In a suite file::

    merge:
      rounds:       # pairs (first sub-task's seed pair, second sub-task's seed pair)
        same_init: [["00", "01"], ["11", "12"], ...]
        diff_init: [["00", "12"], ["11", "23"], ...]
      states: 2048  # rollout states for activation matching and Fisher merging
      methods:
        - {method: average, alpha: [0.5]}
        - {method: rebasin, alpha: [0.25, 0.5, 0.75], directions: [ab, ba]}
        - {method: fisher, beyond_thesis: true}

Direction ``ab`` makes the first sub-task's model A (kept) and the second's B (the one
permuted and weighted by 1 − α); ``ba`` swaps them. Methods that need a common base model
(task arithmetic, TIES) apply only to pairs with the same init seed, whose base is that
shared initialisation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

import envs
from crl_merge.merge import (LogitEnsemble, activation_matching, apply_permutation, average, diagonal_fisher,
                             fisher_merge, interpolate, nature_cnn_spec, rebasin_merge, task_arithmetic, ties_merge)
from crl_merge.models import NatureCNN, make_actor
from envs.config import ConfigError

METHODS = {  # method: (keys it takes besides method/beyond_thesis, needs a shared init)
    "average": ({"alpha"}, False),
    "rebasin": ({"alpha", "directions"}, False),
    "activation_matching": ({"alpha", "directions"}, False),
    "fisher": (set(), False),
    "task_arithmetic": ({"scale"}, True),
    "ties": ({"density", "scale"}, True),
    "ensemble": (set(), False),
}
DIRECTIONS = ("ab", "ba")
THESIS_METHODS = {"average", "rebasin"}


@dataclass(frozen=True)
class MergeMethod:
    """One row family of the leaderboard: a method at one α, in one direction."""

    method: str
    alpha: float | None = None
    direction: str = "ab"
    scale: float | None = None
    density: float | None = None
    beyond_thesis: bool = False

    @property
    def needs_shared_init(self) -> bool:
        return METHODS[self.method][1]

    @property
    def row_id(self) -> str:
        """A file-name-safe id: ``rebasin-a0.25-ab``, ``ties-d0.2-s1.0``, ``fisher``."""
        parts = [self.method]
        if self.alpha is not None:
            parts.append(f"a{self.alpha:g}")
        if self.density is not None:
            parts.append(f"d{self.density:g}")
        if self.scale is not None:
            parts.append(f"s{self.scale:g}")
        if "directions" in METHODS[self.method][0]:
            parts.append(self.direction)
        return "-".join(parts)


@dataclass(frozen=True)
class MergePlan:
    rounds: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    methods: tuple[MergeMethod, ...] = ()
    states: int = 2048


def _number(value, where: str, lo: float, hi: float, lo_open: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (lo < value if lo_open else lo <= value) \
        and value <= hi
    if not ok:
        raise ConfigError(f"{where} must be a number in {'(' if lo_open else '['}{lo}, {hi}], got {value!r}")
    return float(value)


def parse_merge_plan(data, where: str, seed_names: dict[str, list[str]]) -> MergePlan:
    """Validate a suite's ``merge`` section. ``seed_names`` are the trained seed pairs of the
    two sub-tasks (first, second), which the rounds must refer to."""
    if not data:
        return MergePlan()
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping with keys rounds, methods, states")
    unknown = sorted(set(data) - {"rounds", "methods", "states"})
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys: ['methods', 'rounds', 'states']")
    first, second = seed_names.values()
    rounds = {}
    for name, pairs in (data.get("rounds") or {}).items():
        if not isinstance(pairs, list) or not pairs:
            raise ConfigError(f"{where}.rounds.{name} must be a non-empty list of [seeds of A, seeds of B]")
        for i, pair in enumerate(pairs):
            if not (isinstance(pair, list) and len(pair) == 2 and pair[0] in first and pair[1] in second):
                raise ConfigError(f"{where}.rounds.{name}.{i} = {pair!r}: must be [\"IL\", \"IL\"], the seed pairs of "
                                  f"a first-sub-task model {first} and a second-sub-task model {second} (quoted)")
        rounds[name] = tuple(tuple(p) for p in pairs)
    methods = []
    for i, entry in enumerate(data.get("methods") or []):
        at = f"{where}.methods.{i}"
        if not isinstance(entry, dict) or entry.get("method") not in METHODS:
            raise ConfigError(f"{at}: needs 'method', one of {sorted(METHODS)}; got {entry!r}")
        keys, _ = METHODS[entry["method"]]
        unknown = sorted(set(entry) - keys - {"method", "beyond_thesis"})
        if unknown:
            raise ConfigError(f"{at}: unknown key(s) {unknown} for {entry['method']}; valid: {sorted(keys | {'beyond_thesis'})}")
        beyond = entry.get("beyond_thesis", entry["method"] not in THESIS_METHODS)
        if not isinstance(beyond, bool):
            raise ConfigError(f"{at}.beyond_thesis must be true or false, got {beyond!r}")
        alphas = entry.get("alpha", [0.5] if "alpha" in keys else [None])
        alphas = alphas if isinstance(alphas, list) else [alphas]
        directions = entry.get("directions", ["ab"])
        if not isinstance(directions, list) or not directions or any(d not in DIRECTIONS for d in directions):
            raise ConfigError(f"{at}.directions must be a list drawn from {list(DIRECTIONS)}, got {directions!r}")
        scale = _number(entry["scale"], f"{at}.scale", 0.0, 10.0, lo_open=True) if "scale" in entry else (
            1.0 if "scale" in keys else None)
        density = _number(entry["density"], f"{at}.density", 0.0, 1.0, lo_open=True) if "density" in entry else (
            0.2 if "density" in keys else None)
        for alpha in alphas:
            alpha = None if alpha is None else _number(alpha, f"{at}.alpha", 0.0, 1.0)
            for direction in directions:
                methods.append(MergeMethod(entry["method"], alpha, direction, scale, density, beyond))
    ids = [m.row_id for m in methods]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise ConfigError(f"{where}.methods: listed twice: {duplicated}")
    states = data.get("states", 2048)
    if isinstance(states, bool) or not isinstance(states, int) or states < 1:
        raise ConfigError(f"{where}.states must be an integer ≥ 1, got {states!r}")
    return MergePlan(rounds, tuple(methods), states)


@torch.no_grad()
def rollout_states(actor: NatureCNN, task, count: int, level_seed: int, seed: int = 0, num_envs: int = 64,
                   device="cpu") -> torch.Tensor:
    """``count`` frames visited by ``actor`` (sampling its actions) on ``task``'s training levels."""
    env = envs.make(task, num_envs=min(num_envs, count), seed=level_seed, device=str(device))
    gen = torch.Generator(device=device).manual_seed(seed)
    obs, frames = env.reset(), []
    while sum(len(f) for f in frames) < count:
        frames.append(obs)
        action = torch.multinomial(torch.softmax(actor(obs), 1), 1, generator=gen).squeeze(1)
        obs = env.step(action)[0]
    return torch.cat(frames)[:count]


@dataclass
class PairModels:
    """The two actors of a merge in the direction asked (A kept, B permuted), their own
    tasks and level seeds (for states from their rollouts), and their init seeds."""

    a: NatureCNN
    b: NatureCNN
    task_a: envs.Task
    task_b: envs.Task
    level_seed_a: int
    level_seed_b: int
    init_a: int
    init_b: int


def merged_actor(method: MergeMethod, pair: PairModels, states: int, device="cpu") -> torch.nn.Module:
    """The merged actor (for ``ensemble``, the logit ensemble of A and B, which is not a merge).
    ``states``: how many rollout frames activation matching and Fisher merging use."""
    a, b = pair.a.state_dict(), pair.b.state_dict()
    if method.method == "average":
        merged = interpolate(a, b, method.alpha)
    elif method.method == "rebasin":
        merged = rebasin_merge(nature_cnn_spec(), a, b, method.alpha)
    elif method.method == "activation_matching":
        inputs = torch.cat([rollout_states(pair.a, pair.task_a, states // 2, pair.level_seed_a, device=device),
                            rollout_states(pair.b, pair.task_b, states - states // 2, pair.level_seed_b, device=device)])
        perm = activation_matching(nature_cnn_spec(), pair.a, pair.b, inputs)
        merged = interpolate(a, apply_permutation(nature_cnn_spec(), perm, b), method.alpha)
    elif method.method == "fisher":
        fishers = [diagonal_fisher(model, rollout_states(model, task, states, seed, device=device))
                   for model, task, seed in ((pair.a, pair.task_a, pair.level_seed_a),
                                             (pair.b, pair.task_b, pair.level_seed_b))]
        merged = fisher_merge([a, b], fishers)
    elif method.method in ("task_arithmetic", "ties"):
        if pair.init_a != pair.init_b:
            raise ValueError(f"{method.method} needs models from one initialisation; got init seeds "
                             f"{pair.init_a} and {pair.init_b}")
        base = make_actor(pair.init_a).state_dict()
        merged = (task_arithmetic(base, [a, b], method.scale) if method.method == "task_arithmetic"
                  else ties_merge(base, [a, b], method.density, method.scale))
    elif method.method == "ensemble":
        return LogitEnsemble([pair.a, pair.b]).eval()
    else:
        raise ValueError(f"unknown merge method {method.method!r}; valid: {sorted(METHODS)}")
    actor = make_actor().to(device)
    actor.load_state_dict(merged)
    return actor.eval()
