"""Counter-based random numbers for batched level generation.

Every draw is a pure function of (level seed, stream id, draw index): a 32-bit integer
hash, evaluated with int64 tensor arithmetic so it gives the same bits on every device.
There is no generator state to carry, split or copy, which is what lets a whole batch of
levels be generated in one vectorised call (the gymnax/JAX way of doing randomness).
"""

from __future__ import annotations

import torch

MASK32 = 0xFFFFFFFF


def _mul32(x: torch.Tensor, c: int) -> torch.Tensor:
    """(x * c) mod 2**32 for x in [0, 2**32) without overflowing int64."""
    lo, hi = c & 0xFFFF, c >> 16
    return (x * lo + ((x * hi) & 0xFFFF) * 65536) & MASK32


def _fmix32(h: torch.Tensor) -> torch.Tensor:
    """MurmurHash3's 32-bit finaliser: a bijection on [0, 2**32) with good avalanche."""
    h = h ^ (h >> 16)
    h = _mul32(h, 0x85EBCA6B)
    h = h ^ (h >> 13)
    h = _mul32(h, 0xC2B2AE35)
    return h ^ (h >> 16)


def hash_bits(key: torch.Tensor, stream: int, n: int) -> torch.Tensor:
    """``n`` 32-bit draws per key: int64 tensor of shape ``key.shape + (n,)``.

    ``key`` is an integer tensor (typically the level seed); ``stream`` separates the
    independent uses of one key (ship schedule, fruit positions, ...).
    """
    k = key.to(torch.int64) & MASK32
    h = _fmix32(k ^ _mul32(torch.full_like(k, (stream + 1) & MASK32), 0x9E3779B9))
    idx = torch.arange(1, n + 1, device=key.device, dtype=torch.int64)
    return _fmix32(h.unsqueeze(-1) ^ _mul32(idx, 0x27D4EB2F))


def uniform(key: torch.Tensor, stream: int, n: int) -> torch.Tensor:
    """``n`` float32 draws in [0, 1) per key (24 random bits each, so 1.0 is impossible)."""
    return (hash_bits(key, stream, n) >> 8).to(torch.float32) * (1.0 / (1 << 24))


def randint(key: torch.Tensor, stream: int, n: int, low, high) -> torch.Tensor:
    """``n`` integers in [low, high) per key, like Procgen's ``randint`` (upper bound exclusive).

    ``low``/``high`` may be ints or tensors broadcastable to ``key.shape + (n,)``.
    """
    span = high - low
    return low + hash_bits(key, stream, n) % span


def level_seeds(seed: int, domain: int, env_index: torch.Tensor, episode: torch.Tensor,
                num_levels: int, start_level: int) -> torch.Tensor:
    """The level seed of episode ``episode`` of environment ``env_index`` (int64 tensors).

    Procgen semantics: with ``num_levels == 0`` seeds are uniform over [0, 2**31 − 1);
    otherwise over [start_level, start_level + num_levels), drawn with replacement.
    ``domain`` separates independent streams (training vs evaluation) for the same seed.
    """
    env_key = _fmix32(_fmix32(torch.full_like(env_index, seed & MASK32) ^ _mul32(torch.full_like(env_index, domain + 1), 0x9E3779B9))
                      ^ _mul32(env_index & MASK32, 0x85EBCA77))
    bits = _fmix32(env_key ^ _mul32((episode + 1) & MASK32, 0x27D4EB2F))
    if num_levels == 0:
        return bits % (2**31 - 1)
    return start_level + bits % num_levels
