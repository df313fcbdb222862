"""The randomness rule: one integer seed per run, split into independent named streams."""

from __future__ import annotations

import numpy as np
import pytest

from minidl import seed_streams


def test_seed_streams_are_reproducible_distinct_and_stable_under_appending():
    a, b = seed_streams(7), seed_streams(7)
    assert list(a) == ["weights", "order", "dropout"]
    draws = {name: g.random(5) for name, g in a.items()}
    for name, g in b.items():
        np.testing.assert_array_equal(g.random(5), draws[name])
    assert not np.array_equal(draws["weights"], draws["order"])
    assert not np.array_equal(seed_streams(8)["weights"].random(5), draws["weights"])
    longer = seed_streams(7, ("weights", "order", "dropout", "split"))
    np.testing.assert_array_equal(longer["order"].random(5), draws["order"])
    # the rule spelled out: child i of SeedSequence(seed)
    child = np.random.SeedSequence(7).spawn(3)[1]
    np.testing.assert_array_equal(np.random.default_rng(child).random(5), draws["order"])


@pytest.mark.parametrize("seed", [-1, 1.5, True, "3"])
def test_seed_streams_rejects_a_seed_that_is_not_a_non_negative_int(seed):
    with pytest.raises(ValueError, match="non-negative int"):
        seed_streams(seed)


def test_seed_streams_rejects_repeated_names():
    with pytest.raises(ValueError, match="distinct"):
        seed_streams(0, ("weights", "weights"))
