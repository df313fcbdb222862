"""Splitting data for validation, cross-validation folds and grid search.

The names and conventions follow scikit-learn, so what you learn here carries over:

- ``stratified_split`` / ``train_val_split``: hold out a validation set whose class
  proportions match the whole set (the official test set stays untouched until the end).
- ``stratified_subsample``: draw a small training subset, e.g. 500 examples with every class
  present at least 10 times.
- ``KFold`` / ``StratifiedKFold``: k folds; each example is validated on exactly once.
- ``ParameterGrid`` / ``grid_search``: score every combination of hyper-parameters on the same
  folds and rank them (``cv_results_``, ``best_params_``, ...).

minidl does not know how you want to train, so ``grid_search`` takes your function
``fit_and_score(params, X_train, y_train, X_val, y_val) -> float`` (higher is better). Its
(candidate, fold) runs are a sweep (``minidl.sweep.run_sweep``): serial, on local processes or
on any ``concurrent.futures.Executor`` (a Dask cluster's included), each result saved as it
finishes in ``out_dir`` so an interrupted search resumes where it stopped.

Randomness comes only from an ``rng`` argument: a ``np.random.Generator`` or an int seed
(``None`` draws fresh entropy). Every index array returned here is sorted in ascending order,
so ``X[idx]`` keeps the original order of the examples; ``fit`` reshuffles every epoch anyway.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from minidl._rng import RngLike, as_generator
from minidl.sweep import SweepError, run_sweep, task_key

__all__ = [
    "GridSearchResult",
    "KFold",
    "ParameterGrid",
    "StratifiedKFold",
    "grid_search",
    "stratified_split",
    "stratified_subsample",
    "train_val_split",
]

Split = tuple[np.ndarray, np.ndarray]


# ---------------------------------------------------------------------------------------------
# helpers


def _class_members(y: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Class values (sorted) and, for each, the indices of its members (ascending)."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be a 1-d array of labels, got shape {y.shape}")
    classes, y_encoded = np.unique(y, return_inverse=True)
    order = np.argsort(y_encoded, kind="stable")
    counts = np.bincount(y_encoded, minlength=len(classes))
    return classes, np.split(order, np.cumsum(counts)[:-1])


def _apportion(weights: np.ndarray, total: int) -> np.ndarray:
    """Split the integer ``total`` into integer parts proportional to ``weights``.

    Each part is the floor or the ceiling of its exact share ``total * w / sum(w)``; the units
    left over after taking floors go to the largest fractional parts (the "largest remainder"
    method; ties go to the earlier entry). Integer arithmetic only, so there is no rounding
    error. Parts sum to ``total`` exactly.

    >>> _apportion(np.array([5, 3, 2]), 5).tolist()
    [3, 1, 1]
    """
    weights = np.asarray(weights, dtype=np.int64)
    W = int(weights.sum())
    if W == 0:
        return np.zeros_like(weights)
    parts = total * weights // W
    remainders = total * weights % W
    leftover = total - int(parts.sum())
    parts[np.argsort(-remainders, kind="stable")[:leftover]] += 1
    return parts


def _resolve_size(size: float | int, n: int, name: str) -> int:
    """A fraction of ``n`` or an absolute count, in ``[1, n-1]``.

    A fraction is rounded up, as in scikit-learn, but after rounding away float noise: 0.07 of
    100 is 7 here (scikit-learn takes ceil(7.000000000000001) = 8).
    """
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        k = int(size)
    elif isinstance(size, (float, np.floating)) and 0.0 < size < 1.0:
        k = math.ceil(round(float(size) * n, 9))
    else:
        raise ValueError(f"{name} must be a float in (0, 1) or an int count, got {size!r}")
    if not 1 <= k <= n - 1:
        raise ValueError(f"{name}={size!r} leaves {k} of {n} examples; need 1 to {n - 1}")
    return k


def _n_samples(X: Any, y: Any) -> int:
    if X is None and y is None:
        raise ValueError("need X or y to know the number of examples")
    n = len(X) if X is not None else len(y)
    if X is not None and y is not None and len(y) != n:
        raise ValueError(f"X has {n} examples but y has {len(y)}")
    return n


# ---------------------------------------------------------------------------------------------
# one split


def stratified_split(
    y: np.ndarray, val_size: float | int = 0.2, rng: RngLike = None
) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train_idx, val_idx)`` of a random split that keeps each class's share.

    ``val_size`` is a fraction (the validation set gets ``ceil(val_size * n)`` examples, as in
    scikit-learn, 0.07 of 100 being 7) or an exact count. Each class sends the floor or the
    ceiling of its exact share to validation, the leftover units going to the largest
    fractional parts, so the total is exact. Which members go is drawn with ``rng``. Both arrays are sorted.

    >>> y = np.array([0] * 6 + [1] * 4)
    >>> train_idx, val_idx = stratified_split(y, val_size=5, rng=0)
    >>> np.bincount(y[val_idx]).tolist(), len(train_idx)
    ([3, 2], 5)
    """
    rng = as_generator(rng)
    _, members = _class_members(y)
    n = sum(len(m) for m in members)
    n_val = _resolve_size(val_size, n, "val_size")
    per_class = _apportion(np.array([len(m) for m in members]), n_val)
    val = [rng.permutation(m)[:k] for m, k in zip(members, per_class, strict=True)]
    val_idx = np.sort(np.concatenate(val))
    mask = np.ones(n, dtype=bool)
    mask[val_idx] = False
    return np.flatnonzero(mask), val_idx


def train_val_split(
    X: np.ndarray,
    y: np.ndarray,
    val_size: float | int = 0.2,
    rng: RngLike = None,
    stratify: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``X_train, X_val, y_train, y_val`` (scikit-learn's ``train_test_split`` order).

    With ``stratify=True`` (the default) the split comes from ``stratified_split``; otherwise
    ``val_size`` examples are drawn uniformly at random. The examples keep their original order
    inside each part.
    """
    y = np.asarray(y)
    n = _n_samples(X, y)
    if stratify:
        train_idx, val_idx = stratified_split(y, val_size, rng)
    else:
        n_val = _resolve_size(val_size, n, "val_size")
        perm = as_generator(rng).permutation(n)
        val_idx, train_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    return X[train_idx], X[val_idx], y[train_idx], y[val_idx]


def stratified_subsample(y: np.ndarray, n: int, rng: RngLike = None, *, min_per_class: int = 0) -> np.ndarray:
    """Sorted indices of ``n`` examples drawn without replacement, classes in proportion.

    Each class gets about its share ``n * count / len(y)``, but never fewer than
    ``min_per_class``: classes that would fall below are set to the minimum and the rest is
    shared out again among the others ("water filling"). Raises ``ValueError`` if a class has
    fewer than ``min_per_class`` members or if ``n`` cannot hold the minimum of every class.

    >>> y = np.array([0] * 90 + [1] * 10)
    >>> np.bincount(y[stratified_subsample(y, 20, rng=0)]).tolist()
    [18, 2]
    >>> np.bincount(y[stratified_subsample(y, 20, rng=0, min_per_class=5)]).tolist()
    [15, 5]
    """
    rng = as_generator(rng)
    classes, members = _class_members(y)
    counts = np.array([len(m) for m in members], dtype=np.int64)
    n, m = int(n), int(min_per_class)
    if not 0 < n <= counts.sum():
        raise ValueError(f"n must be in [1, {counts.sum()}], got {n}")
    if m < 0:
        raise ValueError(f"min_per_class must be >= 0, got {m}")
    too_small = classes[counts < m]
    if too_small.size:
        raise ValueError(f"classes {too_small.tolist()} have fewer than min_per_class={m} members")
    if m * len(classes) > n:
        raise ValueError(f"n={n} cannot hold min_per_class={m} for each of {len(classes)} classes")

    fixed = np.zeros(len(classes), dtype=bool)  # classes pinned to the minimum
    while True:
        free = ~fixed
        n_free = n - m * int(fixed.sum())
        # quota < m  <=>  n_free * count / sum(free counts) < m, in integers
        below = free & (n_free * counts < m * counts[free].sum())
        if not below.any():
            break
        fixed |= below
    per_class = np.full(len(classes), m, dtype=np.int64)
    per_class[~fixed] = _apportion(counts[~fixed], n - m * int(fixed.sum()))
    chosen = [rng.choice(idx, size=k, replace=False) for idx, k in zip(members, per_class, strict=True)]
    return np.sort(np.concatenate(chosen))


# ---------------------------------------------------------------------------------------------
# k folds


class KFold:
    """Split ``n`` examples into ``n_splits`` consecutive folds (shuffled first if asked).

    Fold sizes follow scikit-learn: every fold has ``n // n_splits`` examples and the first
    ``n % n_splits`` folds get one more. ``split`` yields ``(train_idx, val_idx)``, both sorted.

    ``rng`` is used only with ``shuffle=True`` (giving it otherwise is a ``ValueError``, as in
    scikit-learn). An int seed gives the same folds on every ``split`` call; a ``Generator`` is
    advanced, so each call gives new folds; ``None`` draws fresh entropy each time.

    >>> [val.tolist() for _, val in KFold(3).split(np.zeros(7))]
    [[0, 1, 2], [3, 4], [5, 6]]
    """

    def __init__(self, n_splits: int = 5, shuffle: bool = False, rng: RngLike = None) -> None:
        if isinstance(n_splits, bool) or not isinstance(n_splits, (int, np.integer)):
            raise TypeError(f"n_splits must be an int, got {n_splits!r}")
        if n_splits < 2:
            raise ValueError(f"n_splits must be at least 2, got {n_splits}")
        if not shuffle and rng is not None:
            raise ValueError("rng has no effect when shuffle=False; pass shuffle=True or drop rng")
        self.n_splits = int(n_splits)
        self.shuffle = bool(shuffle)
        self.rng = rng

    def get_n_splits(self, X: Any = None, y: Any = None) -> int:
        return self.n_splits

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_splits={self.n_splits}, shuffle={self.shuffle})"

    def _generator(self) -> np.random.Generator:
        return np.random.default_rng(self.rng)

    def _test_folds(self, n: int, y: np.ndarray | None) -> np.ndarray:
        """Fold number of every example, shape ``(n,)``."""
        if self.n_splits > n:
            raise ValueError(f"cannot split {n} examples into n_splits={self.n_splits} folds")
        fold_sizes = np.full(self.n_splits, n // self.n_splits)
        fold_sizes[: n % self.n_splits] += 1
        fold_of_position = np.repeat(np.arange(self.n_splits), fold_sizes)
        if not self.shuffle:
            return fold_of_position
        test_folds = np.empty(n, dtype=np.int64)
        test_folds[self._generator().permutation(n)] = fold_of_position
        return test_folds

    def split(self, X: Any, y: Any = None) -> Iterator[Split]:
        """Yield ``(train_idx, val_idx)`` for each fold in turn."""
        n = _n_samples(X, y)
        test_folds = self._test_folds(n, None if y is None else np.asarray(y))
        for k in range(self.n_splits):
            is_val = test_folds == k
            yield np.flatnonzero(~is_val), np.flatnonzero(is_val)


class StratifiedKFold(KFold):
    """K folds whose class proportions match the whole set as closely as possible.

    Same algorithm, and same folds, as scikit-learn: sort the labels (classes numbered in order
    of first appearance), deal them out to the folds in turn (the i-th sorted label goes to fold
    ``i % n_splits``) to decide how many of each class every fold gets, then hand each
    class's members to the folds in that order (in a shuffled order with ``shuffle=True``).
    So every fold holds the floor or the ceiling of its share of each class, and fold sizes are
    exactly those of ``KFold``.

    Unlike scikit-learn, which only warns, a class with fewer members than ``n_splits`` is a
    ``ValueError``: some fold would have no example of it to validate on.

    >>> y = np.array([0] * 6 + [1] * 4)
    >>> [val.tolist() for _, val in StratifiedKFold(3).split(np.zeros(10), y)]
    [[0, 1, 6, 7], [2, 3, 8], [4, 5, 9]]
    """

    def split(self, X: Any, y: Any) -> Iterator[Split]:
        """Yield ``(train_idx, val_idx)`` for each fold; ``y`` holds the class labels."""
        if y is None:
            raise ValueError("StratifiedKFold.split needs the labels y")
        return super().split(X, y)

    def _test_folds(self, n: int, y: np.ndarray | None) -> np.ndarray:
        classes, members = _class_members(y)
        # scikit-learn numbers the classes in order of first appearance in y; so do we
        first_seen = np.argsort([m[0] for m in members], kind="stable")
        classes, members = classes[first_seen], [members[c] for c in first_seen]
        counts = np.array([len(m) for m in members])
        if counts.min() < self.n_splits:
            small = {
                c: k for c, k in zip(classes.tolist(), counts.tolist(), strict=True) if k < self.n_splits
            }
            raise ValueError(
                f"classes with fewer members than n_splits={self.n_splits}: {small} "
                "(class: count); every fold needs at least one example of each class"
            )
        y_order = np.repeat(np.arange(len(classes)), counts)  # the sorted, encoded labels
        # allocation[k, c]: how many members of class c go to fold k
        allocation = np.stack(
            [np.bincount(y_order[k :: self.n_splits], minlength=len(classes)) for k in range(self.n_splits)]
        )
        rng = self._generator() if self.shuffle else None
        test_folds = np.empty(n, dtype=np.int64)
        for c, idx in enumerate(members):
            folds_for_class = np.repeat(np.arange(self.n_splits), allocation[:, c])
            if rng is not None:
                rng.shuffle(folds_for_class)
            test_folds[idx] = folds_for_class
        return test_folds


# ---------------------------------------------------------------------------------------------
# grid search


class ParameterGrid:
    """Every combination of the listed values, as dicts, in scikit-learn's order.

    Keys are sorted and the last key varies fastest. A list of dicts is several grids one
    after the other.

    >>> list(ParameterGrid({"lr": [0.1, 0.01], "batch_size": [32, 64]}))  # doctest: +NORMALIZE_WHITESPACE
    [{'batch_size': 32, 'lr': 0.1}, {'batch_size': 32, 'lr': 0.01},
     {'batch_size': 64, 'lr': 0.1}, {'batch_size': 64, 'lr': 0.01}]
    """

    def __init__(self, param_grid: Mapping[str, Sequence] | Sequence[Mapping[str, Sequence]]):
        grids = [param_grid] if isinstance(param_grid, Mapping) else list(param_grid)
        self._grids: list[dict[str, list]] = []
        for grid in grids:
            if not isinstance(grid, Mapping):
                raise TypeError(f"a parameter grid is a dict of lists, got {grid!r}")
            checked = {}
            for key, values in sorted(grid.items()):
                if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
                    raise TypeError(
                        f"grid values must be a list of candidates: {key!r}: {values!r} "
                        f"(write [{values!r}] for a single value)"
                    )
                checked[key] = list(values)
                if not checked[key]:
                    raise ValueError(f"parameter {key!r} has no candidate values")
            self._grids.append(checked)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for grid in self._grids:
            keys = list(grid)
            for values in itertools.product(*grid.values()):
                yield dict(zip(keys, values, strict=True))

    def __len__(self) -> int:
        return sum(int(np.prod([len(v) for v in g.values()])) for g in self._grids)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError("ParameterGrid index out of range")
        return list(self)[index]


@dataclass
class GridSearchResult:
    """What ``grid_search`` found, with scikit-learn's attribute names.

    ``cv_results_`` maps column names to one entry per candidate: ``params`` (list of dicts),
    ``param_<name>`` (lists, ``None`` where a candidate lacks the parameter),
    ``split<i>_test_score``, ``mean_test_score``, ``std_test_score`` (population standard
    deviation over folds), ``rank_test_score`` (1 is best; ties share the lowest rank), and
    ``mean_fit_time`` / ``std_fit_time`` (seconds spent in ``fit_and_score``, which fits and
    scores). ``best_index_`` is the first candidate of rank 1. ``fold_results[c][k]`` is what
    ``fit_and_score`` returned for candidate ``c`` on fold ``k`` (after a JSON round trip).
    """

    cv_results_: dict[str, Any]
    best_index_: int
    best_params_: dict[str, Any]
    best_score_: float
    n_splits_: int
    best_estimator_: Any = None
    refit_time_: float | None = None
    folds: list[Split] = field(default_factory=list, repr=False)
    fold_results: list[list[Any]] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The results as plain JSON-able Python values (without ``best_estimator_``)."""
        cv = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in self.cv_results_.items()}
        return {
            "cv_results_": cv,
            "best_index_": self.best_index_,
            "best_params_": self.best_params_,
            "best_score_": self.best_score_,
            "n_splits_": self.n_splits_,
            "refit_time_": self.refit_time_,
        }


def _rank_min(scores: np.ndarray) -> np.ndarray:
    """Rank 1 for the highest score, ties share the lowest rank; NaN ranks last (scikit-learn).

    >>> _rank_min(np.array([0.5, 0.9, 0.5, np.nan, 0.9])).tolist()
    [3, 1, 3, 5, 1]
    """
    if np.isnan(scores).all():
        return np.ones(len(scores), dtype=np.int32)
    scores = np.where(np.isnan(scores), np.nanmin(scores) - 1, scores)
    return (1 + (scores[None, :] > scores[:, None]).sum(axis=1)).astype(np.int32)


def _score_fold(
    fit_and_score: Callable[..., Any],
    X: Any,
    y: Any,
    folds: list[Split],
    *,
    params: dict[str, Any],
    fold: int,
    data: str,
) -> Any:
    """One (candidate, fold) run of a grid search: the sweep task ``{params, fold, data}``.

    ``data`` (a digest of X, y and the folds) only marks the task: saved results of other
    data or other folds are then another task, never mistaken for this one.
    """
    train_idx, val_idx = folds[fold]
    return fit_and_score(dict(params), X[train_idx], y[train_idx], X[val_idx], y[val_idx])


def _fingerprint(X: Any, y: Any, folds: list[Split]) -> str:
    """SHA-1 (12 hex digits) of the data and the folds: what a saved result was computed on."""
    digest = hashlib.sha1()
    for array in (X, y, *(a for fold in folds for a in fold)):
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.data)  # the raw bytes, without a copy
    return digest.hexdigest()[:12]


def _materialise_folds(cv: Any, X: Any, y: Any) -> list[Split]:
    if isinstance(cv, (int, np.integer)) and not isinstance(cv, bool):
        cv = StratifiedKFold(int(cv))
    splits = cv.split(X, y) if hasattr(cv, "split") else cv
    folds = [(np.asarray(tr, dtype=np.int64), np.asarray(va, dtype=np.int64)) for tr, va in splits]
    if not folds:
        raise ValueError("cv produced no folds")
    return folds


def _score_of(value: Any, where: str) -> float:
    """The score in what ``fit_and_score`` returned: the value itself, or its ``"score"`` entry."""
    if isinstance(value, Mapping):
        if "score" not in value:
            raise TypeError(f"fit_and_score returned a dict without a 'score' entry {where}: {sorted(value)}")
        value = value["score"]
    return math.nan if value is None else float(value)  # None: a NaN score after JSON


def grid_search(
    fit_and_score: Callable[[dict[str, Any], Any, Any, Any, Any], Any],
    param_grid: Mapping[str, Sequence] | Sequence[Mapping[str, Sequence]] | ParameterGrid,
    X: Any,
    y: Any,
    cv: int | KFold | Iterable[Split] = 5,
    *,
    out_dir: str | os.PathLike | None = None,
    executor: Executor | Literal["serial"] | None = "serial",
    max_workers: int | None = None,
    refit: Callable[[dict[str, Any], Any, Any], Any] | None = None,
    progress: bool = False,
) -> GridSearchResult:
    """Score every candidate of ``param_grid`` on the same cross-validation folds.

    ``fit_and_score(params, X_train, y_train, X_val, y_val)`` builds a model from ``params``,
    trains it and returns a validation score, higher is better (e.g. accuracy; return minus a
    loss). It may instead return a JSON-able dict holding the score under ``"score"`` and
    whatever else is worth keeping (learning curves, timings): ``fold_results`` gives it back.
    ``cv`` is a number of folds (``StratifiedKFold(cv)``, so ``y`` must be class labels; pass
    ``KFold`` otherwise), any object with ``split(X, y)``, or a list of ``(train_idx, val_idx)``.
    The folds are drawn once, so every candidate sees the same ones.

    The (candidate, fold) pairs are one ``run_sweep``: ``executor="serial"`` (the default) runs
    them here, one after another; ``None`` on a local process pool of ``max_workers`` (one BLAS
    thread each); any ``concurrent.futures.Executor`` (threads, a Dask cluster's
    ``client.get_executor()``) is used as is. Results are the same whichever runs them. Away
    from this process, ``fit_and_score`` must be a top-level function of a module, and ``X``,
    ``y`` travel with every run (for large data, let the function load it itself, and pass
    only what identifies it).

    ``out_dir``: where each run's result is saved the moment it finishes (``run_sweep``'s
    files), so calling again with the same arguments after a stop reruns only what is missing;
    ``None`` keeps them in a temporary folder, deleted at the end. Use one folder per search:
    saved results are matched by candidate, fold and data (a digest of ``X``, ``y`` and the
    folds), not by the function; other data or folds under the same candidates raise
    ``minidl.sweep.SweepConflict``.

    ``refit``: scikit-learn refits an estimator it can clone; minidl cannot know how to train,
    so pass a function ``refit(best_params, X, y)``. It is called once, here, on all of ``X, y``,
    and its return value is stored as ``best_estimator_``.
    A run that raises fails the search with a ``RuntimeError`` naming its candidate and fold
    (after the other runs have finished and been saved).

    In an experiment, with results kept in ``runs/arch`` and the runs on 4 processes:

        def train_and_score(params, X_train, y_train, X_val, y_val):   # top level of the module
            model = Sequential([Dense(784, params["hidden"], rng=0), ReLU(), ...])
            fit(model, X_train, y_train, ...)
            return evaluate(model, X_val, y_val, SoftmaxCrossEntropy())["accuracy"]

        search = grid_search(train_and_score, {"hidden": [25, 50, 100]}, X, y,
                             cv=StratifiedKFold(5, shuffle=True, rng=0),
                             out_dir="runs/arch", executor=None, max_workers=4)
        search.best_params_, search.cv_results_["mean_test_score"]

    >>> X, y = np.arange(16.0).reshape(8, 2), np.arange(8) % 2
    >>> def closeness(params, X_train, y_train, X_val, y_val):
    ...     return -abs(params["c"] - 1)
    >>> search = grid_search(closeness, {"c": [0, 1, 2]}, X, y, cv=KFold(2))
    >>> search.best_params_, search.cv_results_["rank_test_score"].tolist()
    ({'c': 1}, [2, 1, 2])
    """
    if refit is not None and not callable(refit):
        raise TypeError(
            "refit must be None or a function refit(best_params, X, y) that trains and returns "
            f"the final model (minidl cannot know how to train it), got {refit!r}"
        )
    candidates = list(param_grid if isinstance(param_grid, ParameterGrid) else ParameterGrid(param_grid))
    folds = _materialise_folds(cv, X, y)
    data = _fingerprint(X, y, folds)
    tasks = {
        f"{task_key(params)}_fold{k}": {"params": params, "fold": k, "data": data}
        for params in candidates
        for k in range(len(folds))
    }
    run = functools.partial(_score_fold, fit_and_score, X, y, folds)
    with tempfile.TemporaryDirectory(prefix="grid_search-") as scratch:
        sweep = run_sweep(
            run,
            tasks,
            scratch if out_dir is None else out_dir,
            executor=executor,
            max_workers=max_workers,
            progress=progress,
        )
    if sweep.failures:
        key, text = next(iter(sweep.failures.items()))
        task = tasks[key]
        raise RuntimeError(
            f"fit_and_score failed for params={task['params']!r} on fold {task['fold']} "
            f"({len(sweep.failures)} of {len(tasks)} runs failed):\n{text.rstrip()}"
        ) from SweepError(f"failed runs: {', '.join(sweep.failures)}")

    keys = [[f"{task_key(params)}_fold{k}" for k in range(len(folds))] for params in candidates]
    fold_results = [[sweep.results[key] for key in row] for row in keys]
    scores = np.array(
        [[_score_of(r, f"for {p!r}") for r in row] for p, row in zip(candidates, fold_results, strict=True)]
    ).reshape(len(candidates), len(folds))
    times = np.array([[sweep.seconds[key] for key in row] for row in keys]).reshape(scores.shape)

    cv_results: dict[str, Any] = {"params": candidates}
    for name in sorted({key for p in candidates for key in p}):
        cv_results[f"param_{name}"] = [p.get(name) for p in candidates]
    for k in range(len(folds)):
        cv_results[f"split{k}_test_score"] = scores[:, k].copy()
    cv_results["mean_test_score"] = scores.mean(axis=1)
    cv_results["std_test_score"] = scores.std(axis=1)  # population std (ddof=0)
    cv_results["rank_test_score"] = _rank_min(cv_results["mean_test_score"])
    cv_results["mean_fit_time"] = times.mean(axis=1)
    cv_results["std_fit_time"] = times.std(axis=1)

    best = int(np.argmin(cv_results["rank_test_score"]))
    result = GridSearchResult(
        cv_results_=cv_results,
        best_index_=best,
        best_params_=dict(candidates[best]),
        best_score_=float(cv_results["mean_test_score"][best]),
        n_splits_=len(folds),
        folds=folds,
        fold_results=fold_results,
    )
    if refit is not None:
        start = time.perf_counter()
        result.best_estimator_ = refit(dict(candidates[best]), X, y)
        result.refit_time_ = time.perf_counter() - start
    return result
