"""One rule for randomness: every function takes ``rng``, a Generator or an int seed (SPEC 7)."""

from __future__ import annotations

import numpy as np

from minidl._checks import describe, is_whole_number

RngLike = np.random.Generator | int | np.random.SeedSequence | None


def as_generator(rng: RngLike) -> np.random.Generator:
    """Return ``rng`` itself if it is a Generator, else a new one seeded from it (None: fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    seed = is_whole_number(rng) and rng >= 0
    if not (rng is None or seed or isinstance(rng, np.random.SeedSequence)):
        error = ValueError if is_whole_number(rng) else TypeError
        raise error(
            "rng must be None (fresh entropy), a seed (an int >= 0), a numpy SeedSequence or a numpy "
            f"Generator, got {describe(rng)}"
        )
    return np.random.default_rng(rng)
