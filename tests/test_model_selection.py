"""Splits, folds and grid search against hand-computed cases and scikit-learn's conventions.

The literal folds below were produced by scikit-learn (KFold / StratifiedKFold without shuffle)
and are copied here, so the suite does not need scikit-learn.
"""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidl.model_selection import (
    KFold,
    ParameterGrid,
    StratifiedKFold,
    grid_search,
    stratified_split,
    stratified_subsample,
    train_val_split,
)
from minidl.sweep import SweepConflict

FAST = settings(max_examples=40, deadline=None)


def val_folds(splitter, X, y=None) -> list[list[int]]:
    return [val.tolist() for _, val in splitter.split(X, y)]


def check_partition(folds, n: int) -> None:
    """Every fold: train and val disjoint, together everything, sorted; val folds tile 0..n-1."""
    all_val = []
    for train, val in folds:
        assert train.dtype.kind == "i" and val.dtype.kind == "i"
        assert np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)
        assert np.intersect1d(train, val).size == 0
        assert np.array_equal(np.union1d(train, val), np.arange(n))
        all_val.append(val)
    assert np.array_equal(np.sort(np.concatenate(all_val)), np.arange(n))


def sklearn_fold_sizes(n: int, k: int) -> list[int]:
    return [n // k + 1] * (n % k) + [n // k] * (k - n % k)


# --- KFold -------------------------------------------------------------------------------------


def test_kfold_matches_sklearn_literals():
    assert val_folds(KFold(5), np.zeros(12)) == [[0, 1, 2], [3, 4, 5], [6, 7], [8, 9], [10, 11]]
    assert [len(v) for v in val_folds(KFold(4), np.zeros(10))] == [3, 3, 2, 2]
    assert KFold(4).get_n_splits() == 4


@FAST
@given(n=st.integers(2, 60), k=st.integers(2, 8), shuffle=st.booleans(), seed=st.integers(0, 2**32))
def test_kfold_partitions_with_sklearn_fold_sizes(n, k, shuffle, seed):
    k = min(k, n)
    splitter = KFold(k, shuffle=shuffle, rng=seed if shuffle else None)
    folds = list(splitter.split(np.zeros((n, 3))))
    assert len(folds) == k
    check_partition(folds, n)
    assert [len(val) for _, val in folds] == sklearn_fold_sizes(n, k)


def test_kfold_shuffle_same_seed_same_folds_other_seed_other_folds():
    X = np.zeros(50)
    assert val_folds(KFold(5, shuffle=True, rng=7), X) == val_folds(KFold(5, shuffle=True, rng=7), X)
    assert val_folds(KFold(5, shuffle=True, rng=7), X) != val_folds(KFold(5, shuffle=True, rng=8), X)
    assert val_folds(KFold(5, shuffle=True), X) != val_folds(KFold(5), X)
    # an int seed repeats on every split() call; a Generator moves on
    seeded = KFold(5, shuffle=True, rng=3)
    assert val_folds(seeded, X) == val_folds(seeded, X)
    gen = KFold(5, shuffle=True, rng=np.random.default_rng(3))
    first, second = val_folds(gen, X), val_folds(gen, X)
    assert first == val_folds(seeded, X) and second != first


def test_kfold_rejects_bad_arguments():
    with pytest.raises(ValueError, match="shuffle=False"):
        KFold(3, rng=0)
    with pytest.raises(ValueError, match="at least 2"):
        KFold(1)
    with pytest.raises(ValueError, match="cannot split 3 examples"):
        list(KFold(4).split(np.zeros(3)))
    with pytest.raises(ValueError, match="X has 4 examples but y has 5"):
        list(KFold(2).split(np.zeros(4), np.zeros(5)))


# --- StratifiedKFold ---------------------------------------------------------------------------


def test_stratified_kfold_matches_sklearn_literals():
    y = np.array([0] * 6 + [1] * 4)
    assert val_folds(StratifiedKFold(3), np.zeros(10), y) == [[0, 1, 6, 7], [2, 3, 8], [4, 5, 9]]
    # scikit-learn numbers classes by first appearance, which changes who gets the extra member
    y = np.array([2, 0, 1, 0, 2, 1, 0, 1, 2, 0, 1, 0])
    expected = [[0, 1, 2, 3], [4, 5, 6, 9], [7, 8, 10, 11]]
    assert val_folds(StratifiedKFold(3), np.zeros(12), y) == expected


labels = st.lists(st.integers(0, 4), min_size=1, max_size=80)


@FAST
@given(y=labels, k=st.integers(2, 6), shuffle=st.booleans(), seed=st.integers(0, 2**32))
def test_stratified_kfold_keeps_class_proportions(y, k, shuffle, seed):
    # top up every class that appears to k members, so the split is allowed
    y = np.array(y + [c for c in set(y) for _ in range(k)])
    n = len(y)
    folds = list(StratifiedKFold(k, shuffle=shuffle, rng=seed if shuffle else None).split(None, y))
    check_partition(folds, n)
    assert [len(val) for _, val in folds] == sklearn_fold_sizes(n, k)
    for c in np.unique(y):
        count = int((y == c).sum())
        per_fold = [int((y[val] == c).sum()) for _, val in folds]
        assert set(per_fold) <= {count // k, -(-count // k)}, (c, count, per_fold)


def test_stratified_kfold_shuffle_reproducible():
    y = np.repeat(np.arange(3), 20)
    X = np.zeros(60)
    a = val_folds(StratifiedKFold(4, shuffle=True, rng=0), X, y)
    assert a == val_folds(StratifiedKFold(4, shuffle=True, rng=0), X, y)
    assert a != val_folds(StratifiedKFold(4, shuffle=True, rng=1), X, y)
    assert a != val_folds(StratifiedKFold(4), X, y)


def test_stratified_kfold_class_smaller_than_n_splits_is_an_error():
    y = np.array([0] * 10 + [1] * 2)
    with pytest.raises(ValueError, match=r"n_splits=3: \{1: 2\}"):
        list(StratifiedKFold(3).split(np.zeros(12), y))
    with pytest.raises(ValueError, match="needs the labels"):
        list(StratifiedKFold(3).split(np.zeros(12), None))


# --- one split and subsamples ------------------------------------------------------------------


def test_stratified_split_counts_by_hand():
    y = np.repeat([0, 1, 2], [50, 30, 20])
    train, val = stratified_split(y, 0.2, rng=0)
    assert np.bincount(y[val]).tolist() == [10, 6, 4]
    assert np.bincount(y[train]).tolist() == [40, 24, 16]
    # exact shares 3.5, 2.1, 1.4: floors 3, 2, 1 and the one unit left goes to the largest
    # remainder (class 0)
    y = np.repeat([0, 1, 2], [5, 3, 2])
    _, val = stratified_split(y, 4 + 3, rng=0)
    assert np.bincount(y[val]).tolist() == [4, 2, 1]
    # a float size is rounded up like scikit-learn: ceil(0.25 * 10) = 3, but float noise is not
    # (0.07 * 100 is 7.000000000000001, and 7 examples, not 8)
    assert len(stratified_split(y, 0.25, rng=0)[1]) == 3
    assert len(stratified_split(np.arange(100) % 2, 0.07, rng=0)[1]) == 7


@FAST
@given(y=st.lists(st.integers(0, 3), min_size=2, max_size=80), data=st.data())
def test_stratified_split_is_a_partition_with_each_class_share(y, data):
    y = np.array(y)
    n = len(y)
    n_val = data.draw(st.integers(1, n - 1))
    seed = data.draw(st.integers(0, 2**32))
    train, val = stratified_split(y, n_val, rng=seed)
    check_partition([(train, val), (val, train)], n)  # the two halves tile 0..n-1 as well
    assert len(val) == n_val
    for c in np.unique(y):
        share = n_val * (y == c).sum() / n
        assert math.floor(share) <= (y[val] == c).sum() <= math.ceil(share)
    again = stratified_split(y, n_val, rng=seed)
    assert np.array_equal(again[1], val)


def test_stratified_split_rng_matters_and_sizes_are_checked():
    y = np.repeat([0, 1], 50)
    assert not np.array_equal(stratified_split(y, 0.3, rng=0)[1], stratified_split(y, 0.3, rng=1)[1])
    for bad in (0, 100, 0.0, 1.0, -0.5, True):
        with pytest.raises(ValueError, match="val_size"):
            stratified_split(y, bad, rng=0)


@pytest.mark.parametrize("stratify", [True, False])
def test_train_val_split_keeps_rows_with_their_labels(stratify):
    X = np.arange(40).reshape(20, 2)
    y = (np.arange(20) % 4).astype(np.int64)
    X_train, X_val, y_train, y_val = train_val_split(X, y, 0.25, rng=0, stratify=stratify)
    assert X_train.shape == (15, 2) and X_val.shape == (5, 2)
    assert np.array_equal(X_train[:, 0] // 2 % 4, y_train)
    assert np.array_equal(X_val[:, 0] // 2 % 4, y_val)
    assert np.array_equal(np.sort(np.concatenate([X_train[:, 0], X_val[:, 0]])), X[:, 0])
    if stratify:
        assert sorted(np.bincount(y_val, minlength=4).tolist()) == [1, 1, 1, 2]


def test_stratified_subsample_with_a_minimum_per_class():
    y = np.repeat(np.arange(10), [1000] * 9 + [20])
    idx = stratified_subsample(y, 500, rng=0, min_per_class=10)
    counts = np.bincount(y[idx])
    assert len(np.unique(idx)) == 500 and np.all(np.diff(idx) > 0)
    # class 9's share (about 1.1) is raised to 10; the other 490 split evenly: 54 or 55 each
    assert counts[9] == 10
    assert set(counts[:9].tolist()) <= {54, 55} and counts.sum() == 500
    # without the minimum, plain proportions
    counts = np.bincount(y[stratified_subsample(y, 500, rng=0)], minlength=10)
    assert counts[9] == 1 and counts.sum() == 500
    same = stratified_subsample(y, 500, rng=0, min_per_class=10)
    assert np.array_equal(same, idx)


@FAST
@given(counts=st.lists(st.integers(1, 40), min_size=1, max_size=6), data=st.data())
def test_stratified_subsample_sizes_minimum_and_shares(counts, data):
    y = np.repeat(np.arange(len(counts)), counts)
    m = data.draw(st.integers(0, min(counts)))
    n = data.draw(st.integers(max(1, m * len(counts)), len(y)))
    idx = stratified_subsample(y, n, rng=data.draw(st.integers(0, 2**32)), min_per_class=m)
    got = np.bincount(y[idx], minlength=len(counts))
    assert len(np.unique(idx)) == n and got.sum() == n
    assert np.all(got >= m) and np.all(got <= counts)
    if m == 0:  # plain proportions: floor or ceiling of each share
        shares = n * np.array(counts) / len(y)
        assert np.all(np.floor(shares) <= got) and np.all(got <= np.ceil(shares))


def test_stratified_subsample_errors():
    y = np.repeat([0, 1, 2], [30, 30, 5])
    with pytest.raises(ValueError, match=r"classes \[2\] have fewer than min_per_class=10"):
        stratified_subsample(y, 40, rng=0, min_per_class=10)
    with pytest.raises(ValueError, match="cannot hold"):
        stratified_subsample(y, 10, rng=0, min_per_class=4)
    with pytest.raises(ValueError, match="n must be"):
        stratified_subsample(y, 66, rng=0)


# --- grid search -------------------------------------------------------------------------------


def test_parameter_grid_order_like_sklearn():
    grid = ParameterGrid({"lr": [0.1, 0.01], "batch_size": [32, 64]})
    expected = [
        {"batch_size": 32, "lr": 0.1},
        {"batch_size": 32, "lr": 0.01},
        {"batch_size": 64, "lr": 0.1},
        {"batch_size": 64, "lr": 0.01},
    ]
    assert list(grid) == expected and len(grid) == 4 and grid[2] == expected[2]
    two = ParameterGrid([{"a": [1]}, {"b": [2, 3]}])
    assert list(two) == [{"a": 1}, {"b": 2}, {"b": 3}] and len(two) == 3
    assert list(ParameterGrid({})) == [{}]
    with pytest.raises(TypeError, match=r"write \['relu'\]"):
        ParameterGrid({"activation": "relu"})
    with pytest.raises(ValueError, match="no candidate"):
        ParameterGrid({"lr": []})


N = 20
X_TOY = np.arange(N, dtype=np.float64).reshape(N, 1)  # a row's value is its index
Y_TOY = np.arange(N) % 2


def toy_score(params, X_train, y_train, X_val, y_val):
    """-(p - 3)^2, plus 0.001 * the first validation index (a different offset on each fold).

    ``q`` does not change the score, so candidates that differ only in ``q`` tie.
    """
    assert len(X_train) + len(X_val) == N and len(X_val) == len(y_val)
    return -((params["p"] - 3) ** 2) + 0.001 * X_val[0, 0]


def test_grid_search_picks_best_ranks_ties_and_refits_once():
    refits = []

    def refit(params, X, y):
        refits.append((params, len(X), len(y)))
        return "final model"

    grid = {"p": [1, 2, 3, 4, 5], "q": ["a", "b"]}
    result = grid_search(toy_score, grid, X_TOY, Y_TOY, KFold(4), refit=refit)
    cv = result.cv_results_
    assert cv["params"] == list(ParameterGrid(grid))
    assert cv["param_p"] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    # -(p - 3)^2 ties p=2 with p=4 and p=1 with p=5, and q ties in pairs: ties share the lowest
    # rank, and the next rank skips past them (scikit-learn's method "min")
    assert cv["rank_test_score"].tolist() == [7, 7, 3, 3, 1, 1, 3, 3, 7, 7]
    assert result.best_index_ == 4 and result.best_params_ == {"p": 3, "q": "a"}
    # fold offsets 0.001 * (0, 5, 10, 15): mean 0.0075, population std 0.00559 (not 0.00645)
    assert result.best_score_ == pytest.approx(0.0075)
    assert cv["std_test_score"][4] == pytest.approx(math.sqrt(3.125e-5))
    assert cv["split2_test_score"][0] == pytest.approx(-4 + 0.010)
    assert cv["mean_fit_time"].shape == (10,) and np.all(cv["mean_fit_time"] >= 0)
    assert refits == [({"p": 3, "q": "a"}, N, N)]
    assert result.best_estimator_ == "final model" and result.n_splits_ == 4
    json.dumps(result.to_dict())


def test_grid_search_gives_every_candidate_the_same_folds():
    seen: dict[tuple, list] = {}

    def record(params, X_train, y_train, X_val, y_val):
        seen.setdefault(tuple(params.items()), []).append(X_val[:, 0].astype(int).tolist())
        return 0.0

    # a Generator advances on each split() call: drawing folds per candidate would differ
    cv = KFold(4, shuffle=True, rng=np.random.default_rng(0))
    result = grid_search(record, {"p": [1, 2, 3]}, X_TOY, Y_TOY, cv)
    assert len(seen) == 3
    first = seen[(("p", 1),)]
    assert all(folds == first for folds in seen.values())
    assert first == [val.tolist() for _, val in result.folds]
    assert first != [list(range(k, k + 5)) for k in range(0, 20, 5)]  # really shuffled
    assert np.all(result.cv_results_["rank_test_score"] == 1) and result.best_index_ == 0


def test_grid_search_int_cv_is_stratified_kfold():
    result = grid_search(toy_score, {"p": [3]}, X_TOY, Y_TOY, cv=5)
    expected = [val.tolist() for _, val in StratifiedKFold(5).split(X_TOY, Y_TOY)]
    assert [val.tolist() for _, val in result.folds] == expected


def test_grid_search_runs_anywhere_with_the_same_results_and_resumes(tmp_path):
    grid = {"p": [1, 2, 3, 4, 5], "q": ["a", "b"]}
    serial = grid_search(toy_score, grid, X_TOY, Y_TOY, KFold(4))
    with ThreadPoolExecutor(2) as pool:
        parallel = grid_search(toy_score, grid, X_TOY, Y_TOY, KFold(4), executor=pool, out_dir=tmp_path)
    for name, column in serial.cv_results_.items():
        if "time" not in name:
            assert np.array_equal(np.asarray(column), np.asarray(parallel.cv_results_[name])), name
    assert parallel.best_params_ == serial.best_params_
    assert len(list(tmp_path.glob("*_fold*.json"))) == 10 * 4  # one saved result per run

    def must_not_run(params, *_):
        raise AssertionError("a saved run was run again")

    resumed = grid_search(must_not_run, grid, X_TOY, Y_TOY, KFold(4), out_dir=tmp_path)
    assert (
        resumed.cv_results_["split3_test_score"].tolist() == serial.cv_results_["split3_test_score"].tolist()
    )
    # other data in the same folder is refused, not mixed in
    with pytest.raises(SweepConflict):
        grid_search(toy_score, grid, X_TOY + 1, Y_TOY, KFold(4), out_dir=tmp_path)


def test_grid_search_keeps_what_fit_and_score_returns():
    def curves(params, X_train, y_train, X_val, y_val):
        return {"score": float(params["p"]), "n_val": len(X_val), "curve": [1.0, 0.5]}

    result = grid_search(curves, {"p": [2, 1]}, X_TOY, Y_TOY, KFold(2))
    assert result.best_params_ == {"p": 2} and result.cv_results_["mean_test_score"].tolist() == [2.0, 1.0]
    assert result.fold_results[1][0] == {"score": 1.0, "n_val": 10, "curve": [1.0, 0.5]}
    with pytest.raises(TypeError, match="without a 'score' entry"):
        grid_search(lambda params, *_: {"accuracy": 1.0}, {"p": [1]}, X_TOY, Y_TOY, KFold(2))


def test_grid_search_nan_score_ranks_last():
    def score(params, *_):
        return float("nan") if params["p"] == 0 else -params["p"]

    result = grid_search(score, {"p": [0, 1, 2]}, X_TOY, Y_TOY, KFold(2))
    assert result.cv_results_["rank_test_score"].tolist() == [3, 1, 2]
    assert result.best_params_ == {"p": 1}


def test_grid_search_errors_name_the_candidate():
    def broken(params, *_):
        if params["p"] == 2:
            raise ArithmeticError("diverged")
        return 1.0

    with pytest.raises(RuntimeError, match=r"params=\{'p': 2\} on fold 0") as info:
        grid_search(broken, {"p": [1, 2]}, X_TOY, Y_TOY, KFold(2))
    assert "ArithmeticError: diverged" in str(info.value)
    with pytest.raises(TypeError, match="refit must be None or a function"):
        grid_search(toy_score, {"p": [3]}, X_TOY, Y_TOY, KFold(2), refit=True)
