"""One rule for randomness: every function that draws random numbers takes an ``rng`` argument.

``rng`` is a ``np.random.Generator`` (used as is, so it advances), an int seed or a
``SeedSequence`` (a new Generator seeded from it), or None (fresh entropy from the operating
system: a different result every call). This is the convention of SPEC 7, the Scientific Python
ecosystem's recommendation for seeding (scientific-python.org/specs/spec-0007). Nothing in minidl
touches NumPy's global random state (``np.random.seed``).

One run, one seed: ``seed_streams(seed)`` splits a run's integer seed into independent named
streams (initial weights, the order of the examples, dropout masks), so that changing how one of
them is used never shifts the numbers another one draws. README, "Reproducibility", lists every
place randomness enters.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from minidl._checks import describe, is_whole_number

RngLike = np.random.Generator | int | np.random.SeedSequence | None

STREAMS = ("weights", "order", "dropout")


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


def seed_streams(seed: int | None, names: Sequence[str] = STREAMS) -> dict[str, np.random.Generator]:
    """Independent Generators, one per name, all derived from one integer ``seed``.

    ``np.random.SeedSequence(seed).spawn(len(names))`` gives child sequences whose streams are
    statistically independent of each other; stream ``i`` depends only on ``seed`` and its
    position ``i``, so appending a name leaves the earlier streams as they were. The same seed
    gives the same streams on every machine; ``seed=None`` draws fresh entropy.

    >>> streams = seed_streams(3)
    >>> sorted(streams)
    ['dropout', 'order', 'weights']
    >>> float(streams["weights"].random()) == float(seed_streams(3)["weights"].random())
    True
    """
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ValueError(f"seed must be a non-negative int (or None for fresh entropy), got {seed!r}")
    names = list(names)
    if len(set(names)) != len(names) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"stream names must be distinct strings, got {names!r}")
    children = np.random.SeedSequence(seed).spawn(len(names))
    return {name: np.random.default_rng(child) for name, child in zip(names, children, strict=True)}
