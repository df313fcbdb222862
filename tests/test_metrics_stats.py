"""Paired comparisons of two classifiers: the exact test and the interval for a difference in error rates."""

from __future__ import annotations

import numpy as np
import pytest

from minidl.metrics import error_rate_difference, mcnemar, paired_exact_test

Z95 = 1.959963984540054  # the normal distribution's 97.5% quantile


def disagreeing(b: int, c: int, agree: int = 5) -> tuple[list[int], list[int]]:
    """b examples A right and B wrong, c the reverse, then ``agree`` both right and both wrong."""
    a = [1] * b + [0] * c + [1] * agree + [0] * agree
    return a, [0] * b + [1] * c + [1] * agree + [0] * agree


@pytest.mark.parametrize(
    ("b", "c", "p"),
    [
        (18, 18, 1.0),  # a perfectly even split (McNemar's chi-square version says 0.868)
        (3, 1, 0.625),  # 2 * (1 + 4) / 2**4
        (5, 0, 0.0625),  # 2 / 2**5
        (10, 2, 158 / 4096),  # 2 * (1 + 12 + 66) / 2**12
        (0, 0, 1.0),
    ],
)
def test_exact_test_by_hand(b, c, p):
    a, bb = disagreeing(b, c)
    assert paired_exact_test(a, bb) == pytest.approx(p, rel=1e-12)
    assert paired_exact_test(bb, a) == pytest.approx(p, rel=1e-12)


def test_exact_test_is_mcnemars_exact_branch_for_one_run():
    rng = np.random.default_rng(0)
    for _ in range(50):
        a, b = rng.random(30) < 0.6, rng.random(30) < 0.5
        _, p, n_b, n_c = mcnemar(a, b)
        if n_b + n_c < 25:  # where mcnemar is exact too
            assert paired_exact_test(a, b) == pytest.approx(p, rel=1e-12)
        assert paired_exact_test(a[None], b[None]) == paired_exact_test(a, b)


def test_exact_test_over_runs_by_hand():
    # Per example, runs right with A minus runs right with B: k = (2, 1, 1), sum 4. Of the 8 sign
    # patterns of (2, 1, 1) two reach |sum| >= 4, so p = 2/8.
    a = np.array([[1, 1, 1], [1, 1, 1]], bool)
    b = np.array([[0, 0, 0], [0, 1, 1]], bool)
    assert paired_exact_test(a, b) == 0.25
    assert paired_exact_test(b, a) == 0.25
    assert paired_exact_test(a, a) == 1.0


def test_interval_for_one_run_by_hand():
    # A wrong on 3 examples B gets right, B wrong on 1 that A gets right, 6 agreements: D has
    # three +1, one -1, six 0; d = 0.2, var(D) = (3 * 0.8**2 + 1.2**2 + 6 * 0.2**2) / 9 = 0.4,
    # so the standard error is sqrt(0.4 / 10) = 0.2.
    a, b = disagreeing(1, 3, agree=3)
    d, low, high = error_rate_difference(a, b)
    assert d == pytest.approx(0.2)
    assert (low, high) == pytest.approx((0.2 - Z95 * 0.2, 0.2 + Z95 * 0.2))
    assert error_rate_difference(b, a) == pytest.approx((-0.2, -0.2 - Z95 * 0.2, -0.2 + Z95 * 0.2))


def test_identical_runs_give_the_one_run_interval():
    rng = np.random.default_rng(1)
    a, b = rng.random(200) < 0.8, rng.random(200) < 0.7
    repeated = error_rate_difference(np.tile(a, (5, 1)), np.tile(b, (5, 1)))
    assert repeated == pytest.approx(error_rate_difference(a, b))


@pytest.mark.parametrize(("runs", "run_spread", "seed"), [(1, 0.0, 5), (5, 0.0, 6), (5, 0.01, 9)])
def test_interval_covers_the_true_difference_95_percent_of_the_time(runs, run_spread, seed):
    # 2000 simulated comparisons on 400 examples each. Example i is hard for both classifiers in
    # proportion to u_i**2; A errs with probability 0.02 + 0.30 u**2, B with 0.02 + 0.25 u**2 (so
    # A's error rate is higher by 0.05 / 3 on average), each run shifted by its own seed's luck.
    rng = np.random.default_rng(seed)
    true, covered = 0.05 / 3, 0
    for _ in range(2000):
        u = rng.random(400)
        shift_a, shift_b = rng.uniform(-run_spread, run_spread, (2, runs, 1))
        wrong_a = rng.random((runs, 400)) < 0.02 + 0.30 * u**2 + shift_a
        wrong_b = rng.random((runs, 400)) < 0.02 + 0.25 * u**2 + shift_b
        _, low, high = error_rate_difference(~wrong_a, ~wrong_b)
        covered += low <= true <= high
    assert 0.93 <= covered / 2000 <= 0.97


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match=r"\(3,\).*\(2,\)"):
        paired_exact_test([1, 0, 1], [1, 0])
    with pytest.raises(ValueError, match="booleans or 0/1"):
        error_rate_difference([1, 0, 2], [1, 0, 1])
    with pytest.raises(ValueError, match="confidence"):
        error_rate_difference([1, 0], [0, 1], confidence=95)
