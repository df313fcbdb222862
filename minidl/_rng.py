"""One rule for randomness: every function takes ``rng``, a Generator or an int seed (SPEC 7)."""

from __future__ import annotations

import numpy as np

RngLike = np.random.Generator | int | np.random.SeedSequence | None


def as_generator(rng: RngLike) -> np.random.Generator:
    """Return ``rng`` itself if it is a Generator, else a new one seeded from it (None: fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)
