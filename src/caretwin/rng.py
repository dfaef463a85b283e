"""Random streams keyed by (seed, stream name, keys...).

Each (seed, name, day, ...) gets its own generator, so a mechanism's draws do not
depend on how many draws other mechanisms made, and adding a mechanism does not
shift the random numbers of the others.
"""

from __future__ import annotations

import zlib

import numpy as np


def stream(seed: int, name: str, *keys: int) -> np.random.Generator:
    """An independent Philox generator for this seed, stream name and integer keys."""
    entropy = [int(seed) & 0xFFFFFFFFFFFFFFFF, zlib.crc32(name.encode()), *(int(k) & 0xFFFFFFFF for k in keys)]
    return np.random.Generator(np.random.Philox(np.random.SeedSequence(entropy)))
