"""``std::mt19937``, the 32-bit Mersenne Twister of the C++ standard, for a batch of
independent generators at once (one per environment), in int64 tensor arithmetic.

Procgen draws all its randomness from ``std::mt19937`` (``randgen.cpp``), so generating
its levels exactly needs the same generator. Every word is held in an int64 in
``[0, 2**32)``; products stay below ``2**63`` (a 32-bit word times a 31-bit constant), so
every operation gives the same bits on every device.

A generator's output ``k`` (0-based) is the tempered word ``k % 624`` of its state after
``k // 624 + 1`` twists (the standard engine twists before its first draw).
:class:`Outputs` holds the tempered outputs of whole twist blocks for a batch, so that
each environment can read a different number of draws from its own cursor.
"""

from __future__ import annotations

import torch

N, M = 624, 397
MASK32 = 0xFFFFFFFF
MATRIX_A = 0x9908B0DF
UPPER, LOWER = 0x80000000, 0x7FFFFFFF
INIT_MULT = 1812433253
DEFAULT_SEED = 5489
# the twist in chunks whose inputs are all known when the chunk starts: word i needs old
# word i + 1 and word i + 397 (old for i < 227, already new after that)
_CHUNKS = ((0, N - M), (N - M, 2 * (N - M)), (2 * (N - M), N))


def seed_state(seed: torch.Tensor) -> torch.Tensor:
    """``[B, 624]`` states of ``mt19937(seed)`` (``init_genrand``) for int seeds ``[B]``,
    taken modulo 2**32 as the C++ engine takes them (a negative int seed included)."""
    x = seed.to(torch.int64) & MASK32
    words = [x]
    for i in range(1, N):
        x = ((x ^ (x >> 30)) * INIT_MULT + i) & MASK32
        words.append(x)
    return torch.stack(words, dim=-1)


def twist(state: torch.Tensor) -> torch.Tensor:
    """The next state (``[B, 624]``), a new tensor."""
    new = torch.empty_like(state)
    for lo, hi in _CHUNKS:
        nxt = state[:, lo + 1:hi + 1] if hi < N else torch.cat([state[:, lo + 1:], new[:, :1]], 1)
        far = state[:, lo + M:hi + M] if lo + M < N else new[:, lo + M - N:hi + M - N]
        y = (state[:, lo:hi] & UPPER) | (nxt & LOWER)
        new[:, lo:hi] = far ^ (y >> 1) ^ ((y & 1) * MATRIX_A)
    return new


def temper(words: torch.Tensor) -> torch.Tensor:
    """The outputs of state words (any shape)."""
    y = words ^ (words >> 11)
    y = y ^ ((y << 7) & 0x9D2C5680)
    y = y ^ ((y << 15) & 0xEFC60000)
    return y ^ (y >> 18)


class Outputs:
    """The first ``624 · blocks`` outputs of a batch of generators, extended on demand.

    ``take(cursor, k)`` reads outputs ``cursor .. cursor + k − 1`` of every generator
    (``cursor`` an int64 ``[B]`` tensor). Reading past what is held twists further; that
    check reads the cursors on the host, so pass ``blocks`` large enough up front (or
    ``grow=False``) to keep a caller free of host synchronisation.
    """

    def __init__(self, seed: torch.Tensor, blocks: int = 1, grow: bool = True):
        self._state = seed_state(seed)
        self.grow = grow
        self.values = torch.empty(seed.shape[0], 0, dtype=torch.int64, device=seed.device)
        self.extend(blocks)

    def extend(self, blocks: int) -> None:
        """Twist ``blocks`` more times and hold those outputs too."""
        new = []
        for _ in range(blocks):
            self._state = twist(self._state)
            new.append(temper(self._state))
        self.values = torch.cat([self.values, *new], 1)

    def take(self, cursor: torch.Tensor, k: int) -> torch.Tensor:
        """``[B, k]`` outputs starting at each generator's ``cursor``."""
        if self.grow:
            need = int(cursor.max()) + k if cursor.numel() else 0
            if need > self.values.shape[1]:
                self.extend(-(-(need - self.values.shape[1]) // N))
        index = cursor[:, None] + torch.arange(k, device=cursor.device)
        return self.values.gather(1, index)


def outputs_at(seed: int, index: torch.Tensor) -> torch.Tensor:
    """Outputs number ``index`` (int64 tensor, any shape) of one generator ``mt19937(seed)``."""
    blocks = int(index.max()) // N + 1 if index.numel() else 1
    gen = Outputs(torch.tensor([seed], device=index.device), blocks, grow=False)
    return gen.values[0][index]
