"""Independent random streams: one per (seed, chunk of people, component).

Every component of a person's history draws from its own stream, so the history of a chunk does not depend on
which sources are written, on the extraction date, or on the other chunks.
"""

from __future__ import annotations

import zlib

import numpy as np


def stream(seed: int, chunk: int, component: str) -> np.random.Generator:
    """The random generator of ``component`` for chunk ``chunk`` of a generation seeded ``seed``."""
    return np.random.default_rng(np.random.SeedSequence([seed, chunk, zlib.crc32(component.encode())]))


def splitmix64(values: np.ndarray) -> np.ndarray:
    """A bijective 64-bit mixer (SplitMix64 finaliser): distinct inputs give distinct outputs."""
    z = values.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))
