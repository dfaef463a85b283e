"""Random streams keyed by (seed, stream name, keys...).

Each (seed, name, day, ...) gets its own generator, so a mechanism's draws do not
depend on how many draws other mechanisms made, and adding a mechanism does not
shift the random numbers of the others.
"""

from __future__ import annotations

import zlib

import numba as _nb
import numpy as np


def stream(seed: int, name: str, *keys: int) -> np.random.Generator:
    """An independent Philox generator for this seed, stream name and integer keys."""
    entropy = [int(seed) & 0xFFFFFFFFFFFFFFFF, zlib.crc32(name.encode()), *(int(k) & 0xFFFFFFFF for k in keys)]
    return np.random.Generator(np.random.Philox(np.random.SeedSequence(entropy)))


# ---------------------------------------------------------------- counter-based draws for the engine
# A draw is a pure function of (key, stream, day, entity, k): no generator state moves, so
# the order in which members or workers are visited cannot change any number, and two
# scenarios see the same number for the same member on the same day (common random
# numbers). The mixer is SplitMix64's finaliser (Steele, Lea & Flood, OOPSLA 2014), whose
# counter-mode output passes BigCrush.


_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2**-53


@_nb.njit(inline="always", cache=True)
def _mix(z: np.uint64) -> np.uint64:
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def stream_key(seed: int, name: str) -> np.uint64:
    """The 64-bit key of one named stream under one replication seed."""
    mask = 0xFFFFFFFFFFFFFFFF
    z = (int(seed) & mask) ^ ((zlib.crc32(name.encode()) * 0x9E3779B97F4A7C15) & mask)
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return np.uint64(z ^ (z >> 31))


@_nb.njit(inline="always", cache=True)
def uniform(key: np.uint64, day: int, entity: int, k: int = 0) -> float:
    """A uniform in [0, 1) for (stream key, day, entity, k); k numbers an entity's draws within a day."""
    z = _mix(np.uint64(key) ^ (np.uint64(day + 1048576) * _GOLD))
    z = _mix(z + np.uint64(entity) * _M2 + np.uint64(k))
    return float(z >> _S11) * _TO_UNIT


@_nb.njit(inline="always", cache=True)
def exponential(key: np.uint64, day: int, entity: int, k: int, mean: float) -> float:
    return -mean * np.log1p(-uniform(key, day, entity, k))


@_nb.njit(inline="always", cache=True)
def geometric_days(key: np.uint64, day: int, entity: int, k: int, mean: float) -> int:
    """Whole days >= 1 with the given mean (a memoryless length of stay)."""
    if mean <= 1.0:
        return 1
    q = 1.0 - 1.0 / mean
    return 1 + int(np.log1p(-uniform(key, day, entity, k)) / np.log(q))


@_nb.njit(inline="always", cache=True)
def poisson(key: np.uint64, day: int, entity: int, k: int, lam: float) -> int:
    """Poisson by inversion (for the small means the engine uses; normal approximation past 60)."""
    u = uniform(key, day, entity, k)
    if lam > 60.0:
        # Wichura-free normal approximation via a second uniform (Box-Muller)
        v = uniform(key, day, entity, k + 1)
        z = np.sqrt(-2.0 * np.log1p(-u)) * np.cos(2.0 * np.pi * v)
        return max(0, int(lam + np.sqrt(lam) * z + 0.5))
    p = np.exp(-lam)
    cdf = p
    n = 0
    while u > cdf and n < 1000:
        n += 1
        p *= lam / n
        cdf += p
    return n


@_nb.njit(cache=True)
def uniforms(key: np.uint64, day: int, entities: np.ndarray, k: int = 0) -> np.ndarray:
    """`uniform` for each entity (vectorised)."""
    out = np.empty(len(entities))
    for j in range(len(entities)):
        out[j] = uniform(key, day, entities[j], k)
    return out
