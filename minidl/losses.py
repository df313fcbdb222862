"""Losses: a scalar that says how wrong a batch of predictions is, and its gradient.

Protocol: ``forward(pred, target) -> float`` returns the **mean over the batch**; ``backward()``
returns ``dL/dpred`` with the same shape as ``pred`` (the 1/N of the mean is included, so layer
gradients come out as batch means too). Classification targets are integer labels ``(N,)``.
``labels(pred)`` says how this loss's predictions become class labels (None for a regression).

Why the mean and not the sum: the gradient of a mean is an average of per-example gradients,
whose size does not grow with the batch. A step ``lr * gradient`` then moves the weights about
as far with 32 examples as with 60000, so one learning rate means the same thing for batch,
mini-batch and stochastic gradient descent. With a sum, doubling the batch would double the step.
"""

from __future__ import annotations

import numpy as np

from minidl.layers import sigmoid


def check_labels(y: np.ndarray, n: int, n_classes: int | None = None) -> np.ndarray:
    """Validate integer class labels for ``n`` predictions (and ``n_classes`` classes)."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"labels must be a 1-D array of class indices, got shape {y.shape}")
    if y.shape[0] != n:
        raise ValueError(f"got {n} predictions but {y.shape[0]} labels")
    if not np.issubdtype(y.dtype, np.integer):
        if np.issubdtype(y.dtype, np.floating) and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
            hint = " (they look like whole numbers: convert with y.astype(int))"
        else:
            hint = ""
        raise TypeError(f"labels must be integers, got dtype {y.dtype}{hint}")
    if n_classes is not None and y.size and (y.min() < 0 or y.max() >= n_classes):
        bad = y[(y < 0) | (y >= n_classes)]
        raise ValueError(
            f"labels must lie in [0, {n_classes - 1}] for {n_classes} classes; found {bad[:5].tolist()}"
        )
    return y


class Loss:
    """Base class: remembers what forward cached and refuses backward before forward."""

    def __init__(self) -> None:
        self._cache = None

    def __call__(self, pred: np.ndarray, target: np.ndarray) -> float:
        return self.forward(pred, target)

    def _cached(self):
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward() called before forward()")
        return self._cache

    def labels(self, pred: np.ndarray) -> np.ndarray | None:
        """Class labels ``(N,)`` predicted by ``pred``, or None if this loss is not a classifier's."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SoftmaxCrossEntropy(Loss):
    """Softmax followed by cross-entropy, fused, on **logits** ``Z (N, K)`` and labels ``y (N,)``.

    ``L = -(1/N) sum_n log P[n, y_n]`` with ``P = softmax(Z)``. Computed as
    ``log P[n, k] = Z[n, k] - m_n - log sum_j exp(Z[n, j] - m_n)`` with ``m_n`` the row maximum
    (log-sum-exp), which is exact and finite for any finite logits.

    Why a fresh model's loss starts at about ln K (ln 10 = 2.3026 for 10 classes). Per example,
    ``L = log sum_j exp(z_j) - z_y``. If every logit is 0, every class gets ``P = 1/K`` and
    ``L = ln K`` exactly: the loss of a model that knows nothing. A fresh model's logits are not
    0 but small and random: with weights from ``init.lecun_normal`` and biases 0, the logits
    ``z_k`` of an example are independent, with mean 0 and mean square ``s^2 = q``, the mean
    square (not the variance) of the inputs (``init``, equation (1)). Expand to second order
    around 0, writing ``zbar = (1/K) sum_j z_j``:

        (1/K) sum_j exp(z_j)  ~  1 + zbar + (1/K) sum_j z_j^2 / 2                      (a)
        log sum_j exp(z_j)    ~  ln K + zbar + ((1/K) sum_j z_j^2 - zbar^2) / 2         (b)

    using ``log(1 + u) ~ u - u^2/2`` with ``u^2 ~ zbar^2`` to second order. Take expectations:
    ``E[z_y] = E[zbar] = 0``, ``E[z_j^2] = s^2`` and, the z_j being independent,
    ``E[zbar^2] = s^2 / K``. So

        E[L]  ~  ln K + (1 - 1/K) s^2 / 2                                              (c)

    ln 10 + 0.45 s^2 for 10 classes: inputs scaled to mean square 0.01 start at 2.307, a mean
    square of 1 (standardised inputs) at about 2.75. The lower the start is above ln K, the less
    confidently wrong the model begins; much larger weights start far above it.

    >>> loss = SoftmaxCrossEntropy()
    >>> round(loss.forward(np.zeros((4, 10)), np.array([0, 1, 2, 3])), 4)  # ln 10
    2.3026
    """

    def forward(self, Z: np.ndarray, y: np.ndarray) -> float:
        if Z.ndim != 2:
            raise ValueError(f"SoftmaxCrossEntropy expects logits of shape (N, K), got {Z.shape}")
        y = check_labels(y, Z.shape[0], Z.shape[1])
        if Z.shape[0] == 0:
            raise ValueError("cannot compute a loss on an empty batch")
        shifted = Z - Z.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(shifted).sum(axis=1))
        rows = np.arange(Z.shape[0])
        loss = (log_norm - shifted[rows, y]).sum() / Z.shape[0]  # (1)
        self._cache = (shifted, log_norm, y)
        return float(loss)

    def backward(self) -> np.ndarray:
        """Gradient with respect to the logits.

        Forward (1): ``L = (1/N) sum_n [log sum_j exp(Z[n, j]) - Z[n, y_n]]``.
        Shapes: returns ``dZ (N, K)``; cache the shifted logits and labels.
        With ``P = softmax(Z)`` and ``Y`` the one-hot labels:
          dL/dZ[n, k] = (1/N) (exp(Z[n, k]) / sum_j exp(Z[n, j]) - [k == y_n])
                      = (P[n, k] - Y[n, k]) / N          (2)
        Intuition: the softmax Jacobian and the 1/P of the logarithm cancel, leaving "what the
        model predicted minus what it should have predicted". This is why fusing the two pays.
        """
        shifted, log_norm, y = self._cached()
        N = shifted.shape[0]
        dZ = np.exp(shifted - log_norm[:, None])  # P
        dZ[np.arange(N), y] -= 1  # P - Y  (2)
        dZ /= N  # (2)
        return dZ

    def labels(self, Z: np.ndarray) -> np.ndarray:
        """The class with the largest logit (the largest probability) in each row."""
        return Z.argmax(axis=1)


def check_probabilities(P: np.ndarray) -> None:
    """Refuse rows of ``P (N, K)`` that are not probability distributions: an entry below 0 or a row
    sum away from 1. Logits there would give a meaningless loss that can even go negative.

    The tolerance on each sum follows the dtype: ``sqrt(eps)``, about 3e-4 in float32, but at least
    1e-5, so the 1e-6 nudges of a numerical gradient check pass in float64.
    """
    dtype = P.dtype if np.issubdtype(P.dtype, np.floating) else np.float64
    tol = max(float(np.sqrt(np.finfo(dtype).eps)), 1e-5)
    sums = P.sum(axis=1)
    bad_sum, negative = np.abs(sums - 1) > tol, (P < -tol).any(axis=1)
    if bad_sum.any() or negative.any():
        row = int(np.argmax(bad_sum | negative))
        what = f"has the entry {P[row].min():.4g}" if negative[row] else f"sums to {sums[row]:.4g}"
        raise ValueError(
            "CrossEntropy expects probabilities (each row >= 0 and summing to 1, like a Softmax "
            f"layer's output), but row {row} {what}. For logits (raw scores such as a Dense layer's "
            "output) use SoftmaxCrossEntropy, which applies the softmax itself."
        )


class CrossEntropy(Loss):
    """Cross-entropy on **probabilities** ``P (N, K)`` (e.g. the output of a ``Softmax`` layer).

    ``L = -(1/N) sum_n log P[n, y_n]``. Probabilities are clipped to ``[eps, 1]`` before the log so
    a zero probability gives a large finite loss instead of infinity.
    """

    def __init__(self, eps: float = 1e-12) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, P: np.ndarray, y: np.ndarray) -> float:
        if P.ndim != 2:
            raise ValueError(f"CrossEntropy expects probabilities of shape (N, K), got {P.shape}")
        y = check_labels(y, P.shape[0], P.shape[1])
        check_probabilities(P)
        picked = np.maximum(P[np.arange(P.shape[0]), y], self.eps)
        self._cache = (P.shape, P.dtype, y, picked)
        return float(-np.mean(np.log(picked)))  # (1)

    def backward(self) -> np.ndarray:
        """Forward (1): ``L = -(1/N) sum_n log P[n, y_n]``.
        Shapes: returns ``dP (N, K)``; cache the true-class probabilities ``P[n, y_n]`` (clipped
        to eps, as in forward) and the labels.

        Index form: only the true-class entry of each row appears in L, so
          dL/dP[n, k] = -[k == y_n] / (N P[n, y_n])       (2)
        and every other entry is 0. Matrix form: a zero matrix with ``-1/(N P[n, y_n])`` written
        at ``(n, y_n)``.
        Intuition: the less probability the true class got, the harder the push to raise it; the
        push is unbounded as it nears 0, one reason to prefer the fused SoftmaxCrossEntropy.
        """
        shape, dtype, y, picked = self._cached()
        dP = np.zeros(shape, dtype=dtype)
        dP[np.arange(shape[0]), y] = -1.0 / (shape[0] * picked)  # (2)
        return dP

    def labels(self, P: np.ndarray) -> np.ndarray:
        """The most probable class of each row."""
        return P.argmax(axis=1)


class MSE(Loss):
    """Mean squared error ``L = (1/M) sum (pred - target)^2`` over all ``M`` entries (PyTorch's and
    Keras's ``mean`` reduction)."""

    def forward(self, pred: np.ndarray, target: np.ndarray) -> float:
        target = np.asarray(target, dtype=pred.dtype)
        if pred.shape != target.shape:
            raise ValueError(f"MSE: prediction shape {pred.shape} != target shape {target.shape}")
        D = pred - target
        self._cache = D
        return float(np.mean(D * D))  # (1)

    def backward(self) -> np.ndarray:
        """Forward (1): ``L = (1/M) sum_i D_i^2`` with ``D = pred - target`` and M entries.
        Shapes: returns ``dpred`` shaped like ``pred``; cache ``D``.

        Index form: dL/dpred_i = 2 D_i / M             (2)
        Matrix form: ``dpred = (2 / M) * D``.
        Intuition: the gradient is the error itself, so large errors dominate the update.
        """
        D = self._cached()
        return (2.0 / D.size) * D  # (2)


class SigmoidBinaryCrossEntropy(Loss):
    """Sigmoid followed by binary cross-entropy, fused, on **logits** ``z`` of shape ``(N,)`` or
    ``(N, 1)`` and 0/1 labels ``y (N,)``.

    ``L = -(1/N) sum_n [y_n log s(z_n) + (1 - y_n) log(1 - s(z_n))]``, rewritten as
    ``(1/N) sum_n [max(z_n, 0) - z_n y_n + log(1 + exp(-|z_n|))]``, which never overflows.
    """

    def forward(self, z: np.ndarray, y: np.ndarray) -> float:
        if not (z.ndim == 1 or (z.ndim == 2 and z.shape[1] == 1)):
            raise ValueError(f"SigmoidBinaryCrossEntropy expects logits (N,) or (N, 1), got {z.shape}")
        y = check_labels(y, z.shape[0], 2)
        zf = z.reshape(-1)
        yf = y.astype(zf.dtype)
        loss = np.mean(np.maximum(zf, 0) - zf * yf + np.log1p(np.exp(-np.abs(zf))))  # (1)
        self._cache = (zf, yf, z.shape)
        return float(loss)

    def backward(self) -> np.ndarray:
        """Forward (1): ``L = -(1/N) sum_n [y_n log s(z_n) + (1 - y_n) log(1 - s(z_n))]``.
        Shapes: returns ``dz`` shaped like the logits, ``(N,)`` or ``(N, 1)``; cache the flattened
        logits and labels.

        Index form, with ``s'(z) = s(z)(1 - s(z))``, ``d log s(z)/dz = 1 - s(z)`` and
        ``d log(1 - s(z))/dz = -s(z)``:
          dL/dz_n = (1/N) (-y_n (1 - s(z_n)) + (1 - y_n) s(z_n)) = (s(z_n) - y_n) / N     (2)
        Matrix form: ``dz = (sigmoid(z) - y) / N``.
        Intuition: the binary twin of softmax cross-entropy's ``(P - Y) / N``.
        """
        zf, yf, shape = self._cached()
        return ((sigmoid(zf) - yf) / zf.shape[0]).reshape(shape)  # (2)

    def labels(self, z: np.ndarray) -> np.ndarray:
        """1 where the logit is positive (probability above 1/2), else 0."""
        return (z.reshape(-1) > 0).astype(np.int64)
