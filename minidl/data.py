"""Data helpers: batching, one-hot labels, pixel scaling and input checks.

Batch, mini-batch and stochastic gradient descent differ only in how many examples each update
averages over: ``batch_size=None`` is the whole set (batch GD, one update per epoch),
``batch_size=1`` is one example (stochastic GD), anything between is mini-batch GD. With
mini-batches every epoch draws a fresh random order of the examples; a full batch is the data
itself, in its own order (the mean gradient over all examples does not depend on their order),
and draws nothing from ``rng``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from minidl._rng import RngLike, as_generator


def batches(
    X: np.ndarray,
    y: np.ndarray,
    batch_size: int | None = None,
    rng: RngLike = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(X_batch, y_batch)`` pairs covering every example once.

    With ``batch_size=None`` (or ``>= len(X)``) the single batch is the data itself, not a copy,
    and ``rng`` is not used. Otherwise ``rng`` draws a random order of the examples and each
    batch is a copy of the next ``batch_size`` rows in that order; the last batch may be smaller.

    >>> X, y = np.arange(10).reshape(5, 2), np.arange(5)
    >>> [len(yb) for _, yb in batches(X, y, 2, rng=0)]
    [2, 2, 1]
    """
    n = len(X)
    if len(y) != n:
        raise ValueError(f"X has {n} examples but y has {len(y)}")
    if batch_size is None or batch_size >= n:
        yield X, y
        return
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size}")
    order = as_generator(rng).permutation(n)
    for start in range(0, n, batch_size):
        rows = order[start : start + batch_size]
        yield X[rows], y[rows]


def n_batches(n: int, batch_size: int | None) -> int:
    """How many updates one epoch makes."""
    return 1 if batch_size is None or batch_size >= n else -(-n // batch_size)


def one_hot(y: np.ndarray, n_classes: int, dtype=np.float32) -> np.ndarray:
    """``(N,)`` integer labels to an ``(N, n_classes)`` matrix with a single 1 per row.

    >>> one_hot(np.array([2, 0]), 3)
    array([[0., 0., 1.],
           [1., 0., 0.]], dtype=float32)
    """
    Y = np.zeros((len(y), n_classes), dtype=dtype)
    Y[np.arange(len(y)), y] = 1
    return Y


def scale_pixels(images: np.ndarray, dtype=np.float32) -> np.ndarray:
    """uint8 images ``(N, H, W)`` to float rows ``(N, H*W)`` in [0, 1]."""
    rows = images.reshape(len(images), int(np.prod(images.shape[1:])))  # (N, H*W), also for N = 0
    return (rows / np.asarray(255, dtype=dtype)).astype(dtype, copy=False)


class Standardizer:
    """Per-feature centring and scaling, fitted on the training set only (like scikit-learn's
    ``StandardScaler``): ``(X - mean) / std``. Features with zero spread (always-black border
    pixels) are only centred, not divided by zero.
    """

    def __init__(self, with_std: bool = True) -> None:
        self.with_std = with_std
        self.mean = self.std = None

    def fit(self, X: np.ndarray) -> Standardizer:
        """Per-feature mean and std of ``X``, accumulated in float64 over row blocks (two passes:
        the mean, then squared deviations from it) so no full-size float64 copy is made."""
        blocks = range(0, len(X), 8192)
        mean = sum(X[i : i + 8192].sum(axis=0, dtype=np.float64) for i in blocks) / len(X)
        if self.with_std:
            sq = sum(np.square(X[i : i + 8192] - mean).sum(axis=0) for i in blocks)
            std = np.sqrt(sq / len(X))
        else:
            std = np.ones(X.shape[1])
        self.mean = mean.astype(X.dtype)
        self.std = np.where(std > 1e-8, std, 1.0).astype(X.dtype)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        if self.mean is None:
            raise RuntimeError("Standardizer.transform() called before fit()")
        return (X - self.mean) / self.std

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        return self.fit(X).transform(X)


def check_inputs(
    X: np.ndarray, y: np.ndarray | None = None, *, name: str = "X"
) -> tuple[np.ndarray, np.ndarray | None]:
    """Reject what would silently poison training: empty data, NaN/inf, mismatched lengths, text,
    complex numbers, raw 0..255 pixels. Returns ``(X, y)`` as arrays (a list is converted, as
    scikit-learn does)."""
    X = _as_array(X, name)
    _check_numbers(X, name)
    if X.ndim < 1 or len(X) == 0:
        raise ValueError(f"{name} is empty (shape {X.shape})")
    if np.issubdtype(X.dtype, np.floating) and not np.isfinite(X).all():
        bad = np.argwhere(~np.isfinite(X))[0]
        raise ValueError(f"{name} contains NaN or inf (first at index {tuple(bad.tolist())})")
    if np.issubdtype(X.dtype, np.integer) and X.min() >= 0 and 1 < X.max() <= 255:
        raise ValueError(
            f"{name} holds the integers {X.min()}..{X.max()} ({X.dtype}), which look like raw pixels; the "
            "model computes in floats and expects inputs of order 1. Scale your pixels to [0, 1] with "
            f"minidl.scale_pixels({name}) (flat rows) or {name}.astype(np.float32) / 255 (same shape); "
            f"if these are not pixels, convert with {name}.astype(np.float32)"
        )
    if y is None:
        return X, None
    y = _as_array(y, name.replace("X", "y"))
    if len(y) != len(X):
        raise ValueError(f"{name} has {len(X)} examples but its labels have {len(y)}")
    return X, y


def _as_array(X, name: str) -> np.ndarray:
    try:
        return np.asarray(X)
    except ValueError as err:  # ragged nested lists
        raise ValueError(f"{name} cannot be made into a NumPy array ({err})") from err


def _check_numbers(X: np.ndarray, name: str) -> None:
    """Real numbers (or bools) only: text and objects would be parsed or compared silently, and
    casting complex numbers to float drops their imaginary part."""
    if np.issubdtype(X.dtype, np.complexfloating):
        raise TypeError(
            f"{name} has dtype {X.dtype}: complex numbers are not supported; pass the real part "
            f"({name}.real) or the magnitude (np.abs({name})) if that is what you mean"
        )
    if not (np.issubdtype(X.dtype, np.number) or X.dtype == np.bool_):
        kind = {"U": "text", "S": "bytes", "O": "Python objects"}.get(X.dtype.kind, "not numbers")
        raise TypeError(
            f"{name} must hold real numbers, got dtype {X.dtype} ({kind}); convert it with "
            f"{name}.astype(np.float32), which also reports any entry that is not a number"
        )
