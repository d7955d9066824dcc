"""Procgen's ``RandGen`` draws (``randgen.cpp``) on 32-bit ``std::mt19937`` outputs, and
Procgen's level-seed stream (``vecgame.cpp``, ``game.cpp``).

The draws are functions of one output word ``x`` (int64 tensors in ``[0, 2**32)``), so a
caller reads the words it needs from :class:`envs.mt19937.Outputs` and converts them here.

The level-seed stream: a master ``mt19937(rand_seed)`` gives environment ``n`` its
level-seed generator ``mt19937(master output n)``; every reset of that environment draws
its next level seed from it with ``randint(low, high)``, where ``[low, high)`` is
``[start_level, start_level + num_levels)``, or ``[0, 2**31 − 1)`` for ``num_levels = 0``.
The level is then generated from ``mt19937(level seed)``.
"""

from __future__ import annotations

import torch

from envs import mt19937

INT32_MAX = 2**31 - 1
TWO32 = float(2**32)
# level streams and episodes are reached by twisting from the seed: bound the work
MAX_STREAM = 2**20
MAX_EPISODE = 2**20


def randint(x: torch.Tensor, low, high) -> torch.Tensor:
    """``low + x % (high − low)`` (the range taken as an unsigned 32-bit int)."""
    return low + x % (high - low)


def randn(x: torch.Tensor, n) -> torch.Tensor:
    """``x % n``."""
    return x % n


def rand01(x: torch.Tensor) -> torch.Tensor:
    """float32 ``(float)((double)x / 2**32)``: the double quotient is exact, then rounded
    to float32 (1.0 itself for the largest words)."""
    return (x.to(torch.float64) / TWO32).to(torch.float32)


def rand_seed(seed: int, domain: int) -> int:
    """Procgen's ``rand_seed`` for our ``seed`` and level domain (0 training, 1 evaluation):
    evaluation levels come from the master generator of ``seed + 2**30``."""
    return seed + (1 << 30) * domain


def seed_range(num_levels: int, start_level: int) -> tuple[int, int]:
    """``(low, high)`` of the level-seed draw, as ``vecgame.cpp`` sets them."""
    return (0, INT32_MAX) if num_levels == 0 else (start_level, start_level + num_levels)


def stream_seeds(rand_seed: int, stream: torch.Tensor) -> torch.Tensor:
    """Seeds of the level-seed generators of environments ``stream`` (master outputs)."""
    if stream.numel() and int(stream.max()) >= MAX_STREAM:
        raise ValueError(f"with level_stream: procgen, level streams (environment indices and adapter seeds) must "
                         f"be below {MAX_STREAM}, got {int(stream.max())}")
    return mt19937.outputs_at(rand_seed, stream)


class LevelSeeds:
    """The level-seed generators of a set of environments (``stream``: their indices in the
    real game, ``[E]``), each kept where it was last read, so that drawing the next level
    seeds costs a gather (and a twist every 624 episodes), not a re-seeding.

    ``draw(rows, episode)``: the level seed of episode ``episode`` (0: the first) of the
    environments ``rows`` (indices into ``stream``, no repeats), in any order of episodes.
    """

    def __init__(self, rand_seed: int, stream: torch.Tensor, num_levels: int, start_level: int):
        self.low, self.high = seed_range(num_levels, start_level)
        self.seeds = stream_seeds(rand_seed, stream)
        self.state = mt19937.seed_state(self.seeds)
        self.block = torch.full_like(self.seeds, -1)  # twists done, minus one: the block the state holds

    def draw(self, rows: torch.Tensor, episode: torch.Tensor) -> torch.Tensor:
        if episode.numel() and int(episode.max()) >= MAX_EPISODE:
            raise ValueError(f"with level_stream: procgen, episodes must be below {MAX_EPISODE}, "
                             f"got {int(episode.max())}")
        want, pos = episode // mt19937.N, episode % mt19937.N
        state, block = self.state.index_select(0, rows), self.block.index_select(0, rows)
        back = want < block  # an earlier block: start again from the seed
        if bool(back.any()):
            state = torch.where(back[:, None], mt19937.seed_state(self.seeds.index_select(0, rows)), state)
            block = torch.where(back, -1, block)
        while bool((block < want).any()):
            behind = block < want
            state = torch.where(behind[:, None], mt19937.twist(state), state)
            block = block + behind
        self.state.index_copy_(0, rows, state)
        self.block.index_copy_(0, rows, block)
        return randint(mt19937.temper(state.gather(1, pos[:, None])[:, 0]), self.low, self.high)


def level_seeds(rand_seed: int, stream: torch.Tensor, episode: torch.Tensor, num_levels: int,
                start_level: int) -> torch.Tensor:
    """The level seed of episode ``episode`` (0: the first) of environment ``stream`` of a
    real Procgen game made with ``rand_seed``, ``num_levels``, ``start_level``."""
    return LevelSeeds(rand_seed, stream, num_levels, start_level).draw(torch.arange(stream.shape[0]), episode)
