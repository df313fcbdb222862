"""The randomness rule: one integer seed per run, split into independent named streams."""

from __future__ import annotations

import numpy as np
import pytest

from minidl import SGD, Dense, Dropout, ReLU, Sequential, SoftmaxCrossEntropy, fit, seed_streams


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


def _run(seed: int, batch_size: int):
    data = np.random.default_rng(100)
    X, y = data.standard_normal((48, 6)).astype(np.float32), data.integers(0, 3, 48)
    streams = seed_streams(seed)
    model = Sequential([Dense(6, 8, rng=streams["weights"]), ReLU(), Dropout(0.3, rng=streams["dropout"]),
                        Dense(8, 3, rng=streams["weights"])])  # fmt: skip
    initial = model.state_dict()
    history = fit(model, X, y, loss=SoftmaxCrossEntropy(), optimizer=SGD(model.parameters(), lr=0.1),
                  epochs=2, batch_size=batch_size, rng=streams["order"], verbose=0)  # fmt: skip
    return initial, model.state_dict(), history.history


def test_one_seed_per_run_gives_bit_identical_runs_and_independent_streams():
    start, end, history = _run(5, 8)
    start_again, end_again, history_again = _run(5, 8)
    assert history == history_again
    for name in end:
        np.testing.assert_array_equal(end[name], end_again[name])
    # another batch size draws the order differently, and leaves the initial weights as they were
    start_other, end_other, _ = _run(5, 16)
    for name in start:
        np.testing.assert_array_equal(start[name], start_other[name])
    assert not np.array_equal(end["0.W"], end_other["0.W"])
