"""Layers: the building blocks of a network, each with a hand-written forward and backward pass.

Every layer follows one protocol (``Layer``):

* ``forward(X) -> Y`` maps a batch (batch first: ``(N, D)``, images ``(N, C, H, W)``) to a batch. It
  never modifies ``X`` and caches only what ``backward`` needs.
* ``backward(G) -> dX`` takes ``G = dL/dY`` (same shape as ``Y``) and returns ``dL/dX`` (same shape
  as ``X``). It **overwrites** each parameter's ``.grad`` and never changes ``.value``: updating is
  the optimiser's job. Calling it before ``forward`` is an error. ``backward(G, input_grad=False)``
  says nobody needs ``dL/dX`` (the first layer's input is the data): it fills ``.grad`` as usual,
  skips computing ``dX`` and returns None.
* ``parameters()`` lists the layer's ``Parameter`` objects in a fixed order (``[W, b]``).

The backward docstrings derive each gradient from the chain rule. Equations are numbered and the
code line that implements an equation carries its number, e.g. ``# (3)``.
"""

from __future__ import annotations

import numpy as np

from minidl import init as initializers
from minidl._checks import check_count
from minidl._rng import RngLike, as_generator
from minidl.parameter import Parameter


class Layer:
    """Base class: a parameter-free identity layer with the train/eval switch and cache checks."""

    training: bool = True

    def forward(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, G: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        raise NotImplementedError

    def parameters(self) -> list[Parameter]:
        return []

    def train(self, mode: bool = True) -> Layer:
        """Switch training-only behaviour (Dropout) on; ``train(False)`` is ``eval()``."""
        self.training = mode
        return self

    def eval(self) -> Layer:
        return self.train(False)

    def __call__(self, X: np.ndarray) -> np.ndarray:
        return self.forward(X)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def _cached(self, value):
        """Return a value cached by forward, or explain that backward came first."""
        if value is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward() called before forward(): "
                "run a forward pass on the batch first"
            )
        return value


def _check_features(layer: Layer, X: np.ndarray, n_in: int) -> None:
    if X.ndim != 2 or X.shape[1] != n_in:
        raise ValueError(
            f"{layer!r} expects input of shape (N, {n_in}), got {X.shape}"
            + (" (flatten images first, e.g. with Flatten())" if X.ndim > 2 else "")
        )


class Dense(Layer):
    """Fully connected layer ``Y = X @ W + b``.

    Shapes: ``X (N, n_in)``, ``W (n_in, n_out)``, ``b (n_out,)``, ``Y (N, n_out)``.
    Column ``k`` of ``W`` holds the weights feeding output ``k``; for a softmax-only model on 28x28
    images it reshapes to the "template" image of class ``k``.

    >>> layer = Dense(3, 2, rng=0)
    >>> layer.forward(np.ones((4, 3), dtype=np.float32)).shape
    (4, 2)
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        *,
        init: str | initializers.Initializer = "lecun_normal",
        rng: RngLike = None,
        dtype=np.float32,
    ) -> None:
        check_count(n_in, "Dense: n_in", "a positive integer (the number of input features)")
        check_count(n_out, "Dense: n_out", "a positive integer (the number of outputs)")
        rng = as_generator(rng)
        self.n_in, self.n_out = n_in, n_out
        self.W = Parameter(initializers.get(init)((n_in, n_out), rng, dtype), "W")
        self.b = Parameter(np.zeros(n_out, dtype=dtype), "b")
        self._X = None

    def forward(self, X: np.ndarray) -> np.ndarray:
        _check_features(self, X, self.n_in)
        X = X.astype(self.W.value.dtype, copy=False)  # compute in the layer's dtype (no copy if it matches)
        self._X = X  # cached for dW; X is not modified, so a reference is enough
        Y = X @ self.W.value  # (1)
        Y += self.b.value  # (1) in place: Y is a fresh array
        return Y

    def backward(self, G: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        """Gradients of ``Y = X @ W + b``.

        Forward (1): ``Y[n, j] = sum_i X[n, i] W[i, j] + b[j]``.
        Shapes: ``G = dL/dY (N, n_out)``; cache ``X (N, n_in)`` (needed for dW). Results:
        ``dW (n_in, n_out)`` and ``db (n_out,)``, shaped like ``W`` and ``b``, and ``dX (N, n_in)``,
        shaped like ``X``.

        Index form, by the chain rule ``dL/dθ = sum_{n,j} G[n, j] dY[n, j]/dθ``:
          dW[i, j] = sum_n X[n, i] G[n, j]            (2)
          db[j]    = sum_n G[n, j]                    (3)
          dX[n, i] = sum_j G[n, j] W[i, j]            (4)
        Matrix form: ``dW = X.T @ G``, ``db = G.sum(axis=0)``, ``dX = G @ W.T``.

        Intuition: every example in the batch uses the same ``W`` and ``b``, so their gradients
        add up over the batch (the 1/N of a mean loss is already inside ``G``).
        With ``input_grad=False`` (a first layer, whose input is the data) (4) is skipped and the
        result is None: one matrix product of three, about a third of an epoch at batch 32.
        """
        X = self._cached(self._X)
        np.matmul(X.T, G, out=self.W.grad)  # (2)
        G.sum(axis=0, out=self.b.grad)  # (3)
        return G @ self.W.value.T if input_grad else None  # (4)

    def parameters(self) -> list[Parameter]:
        return [self.W, self.b]

    def __repr__(self) -> str:
        return f"Dense({self.n_in}, {self.n_out})"


class ReLU(Layer):
    """``Y = max(X, 0)`` elementwise."""

    def __init__(self) -> None:
        self._mask = None

    def forward(self, X: np.ndarray) -> np.ndarray:
        self._mask = X > 0  # cached: where the input was positive
        return np.maximum(X, 0)  # (1)

    def backward(self, G: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        """Forward (1): ``Y[n, i] = max(X[n, i], 0)``, elementwise.
        Shapes: ``X``, ``Y``, ``G = dL/dY`` and ``dX`` all alike. Cache: the boolean mask
        ``X > 0`` (one byte per entry), all the derivative needs.

        Index form: each output depends only on the input at the same place, so
          dX[n, i] = G[n, i] * dY[n, i]/dX[n, i] = G[n, i] * [X[n, i] > 0]      (2)
        (the kink at 0 gets slope 0, as in PyTorch). Matrix form: ``dX = G * mask``.
        Intuition: a ReLU is a gate; the gradient passes only where the signal did.
        """
        mask = self._cached(self._mask)
        return G * mask if input_grad else None  # (2)


class Sigmoid(Layer):
    """``Y = 1 / (1 + exp(-X))`` elementwise, computed without overflow."""

    def __init__(self) -> None:
        self._Y = None

    def forward(self, X: np.ndarray) -> np.ndarray:
        self._Y = sigmoid(X)  # (1)
        return self._Y

    def backward(self, G: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        """Forward (1): ``Y[n, i] = s(X[n, i])`` with ``s(x) = 1 / (1 + exp(-x))``, elementwise.
        Shapes: ``X``, ``Y``, ``G``, ``dX`` all alike. Cache: ``Y``, since the derivative of the
        sigmoid is a function of its output: ``s'(x) = exp(-x) / (1 + exp(-x))^2 = s(x) (1 - s(x))``.

        Index form: dX[n, i] = G[n, i] * Y[n, i] * (1 - Y[n, i])                 (2)
        Matrix form: ``dX = G * Y * (1 - Y)``.
        Intuition: the slope is at most 1/4 (at 0) and vanishes where the sigmoid saturates, which
        is why deep sigmoid networks learn slowly.
        """
        Y = self._cached(self._Y)
        return G * Y * (1 - Y) if input_grad else None  # (2)


def sigmoid(X: np.ndarray) -> np.ndarray:
    """Logistic function, stable for large ``|X|``: ``exp`` only ever sees ``-|X|``."""
    E = np.exp(-np.abs(X))
    return np.where(X >= 0, 1 / (1 + E), E / (1 + E))


class Tanh(Layer):
    """``Y = tanh(X)`` elementwise."""

    def __init__(self) -> None:
        self._Y = None

    def forward(self, X: np.ndarray) -> np.ndarray:
        self._Y = np.tanh(X)  # (1)
        return self._Y

    def backward(self, G: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        """Forward (1): ``Y[n, i] = tanh(X[n, i])``, elementwise.
        Shapes: ``X``, ``Y``, ``G``, ``dX`` all alike. Cache: ``Y``, because
        ``tanh'(x) = 1 - tanh(x)^2`` needs only the output.

        Index form: dX[n, i] = G[n, i] * (1 - Y[n, i]^2)                        (2)
        Matrix form: ``dX = G * (1 - Y * Y)``.
        Intuition: a zero-centred sigmoid with slope up to 1 (at 0), saturating at +-1.
        """
        Y = self._cached(self._Y)
        return G * (1 - Y * Y) if input_grad else None  # (2)


def softmax(Z: np.ndarray) -> np.ndarray:
    """Row-wise softmax ``P[n, k] = exp(Z[n, k]) / sum_j exp(Z[n, j])``.

    Subtracting the row maximum first changes nothing mathematically (the factor ``exp(-max)``
    cancels) but keeps every ``exp`` at most 1, so no overflow for any finite logits.
    """
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    E /= E.sum(axis=1, keepdims=True)
    return E


class Softmax(Layer):
    """Row-wise softmax turning logits ``(N, K)`` into probabilities.

    For training a classifier prefer ``SoftmaxCrossEntropy`` on logits: it fuses this layer with
    the loss, which is faster and numerically safer. This layer exists for models that need
    probabilities as an output, and to show the full Jacobian-vector product.
    """

    def __init__(self) -> None:
        self._P = None

    def forward(self, X: np.ndarray) -> np.ndarray:
        if X.ndim != 2:
            raise ValueError(f"Softmax expects input of shape (N, K), got {X.shape}")
        self._P = softmax(X)  # (1)
        return self._P

    def backward(self, G: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        """Forward (1): ``P[n, k] = exp(X[n, k]) / sum_j exp(X[n, j])``. Cache ``P (N, K)``.

        The Jacobian of one row is a full K x K matrix, not a diagonal:
          dP[k]/dX[i] = P[k] (delta_ki - P[i])        (2)
        Its product with the upstream gradient ``G[n]``:
          dX[i] = sum_k G[k] P[k] (delta_ki - P[i]) = P[i] (G[i] - sum_k G[k] P[k])   (3)
        Matrix form: ``dX = P * (G - (G * P).sum(axis=1, keepdims=True))``: O(N K), no K x K
        matrix is ever built. Intuition: raising one logit takes probability from all the others.
        """
        P = self._cached(self._P)
        return P * (G - np.sum(G * P, axis=1, keepdims=True)) if input_grad else None  # (3)


class Flatten(Layer):
    """``(N, d1, d2, ...) -> (N, d1 * d2 * ...)``; backward restores the shape. A view, no copy."""

    def __init__(self) -> None:
        self._shape = None

    def forward(self, X: np.ndarray) -> np.ndarray:
        self._shape = X.shape
        return X.reshape(X.shape[0], -1)

    def backward(self, G: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        """Forward: ``Y[n, j] = X[n, c, h, w]`` with ``j = (c * H + h) * W + w`` (row-major order).
        Shapes: ``X (N, C, H, W)``, ``Y`` and ``G (N, C*H*W)``. Cache: only ``X.shape``.

        Each output is one input, moved: dX[n, c, h, w] = G[n, j] for that ``j``, i.e.
        ``dX = G.reshape(X.shape)``. Intuition: relabelling entries changes no values, so the
        gradient is relabelled back.
        """
        shape = self._cached(self._shape)
        return G.reshape(shape) if input_grad else None


class Dropout(Layer):
    """Inverted dropout: in training, zero each entry with probability ``p`` and scale the
    survivors by ``1/(1-p)``, so the expected activation is unchanged and evaluation (``eval()``)
    is the plain identity.
    """

    def __init__(self, p: float = 0.5, *, rng: RngLike = None) -> None:
        if not 0 <= p < 1:
            raise ValueError(f"Dropout probability must be in [0, 1), got {p}")
        self.p = p
        self.rng = as_generator(rng)
        self._fixed_mask = None
        self._M = None

    def fix_mask(self, M: np.ndarray | None) -> None:
        """Use the scaled mask ``M`` on every forward (for gradient checks); None draws again."""
        self._fixed_mask = M

    def forward(self, X: np.ndarray) -> np.ndarray:
        if not self.training or self.p == 0:
            self._M = 1.0
            return X
        if self._fixed_mask is not None:
            self._M = self._fixed_mask
        else:
            keep = self.rng.random(X.shape, dtype=np.float32) >= self.p
            self._M = keep.astype(X.dtype) / X.dtype.type(1 - self.p)
        return X * self._M  # (1)

    def backward(self, G: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        """Forward (1): ``Y[n, i] = X[n, i] * M[n, i]`` with ``M`` 0 (dropped) or 1/(1-p) (kept).
        Shapes: ``X``, ``M``, ``G``, ``dX`` alike. Cache: the mask ``M`` drawn by forward (in eval
        mode ``M = 1``).

        Index form: dX[n, i] = G[n, i] * M[n, i]                                (2)
        Matrix form: ``dX = G * M``.
        Intuition: a dropped unit took no part in this forward pass, so it gets no gradient; a
        kept one passes its gradient scaled like its signal.
        """
        M = self._cached(self._M)
        return G * M if input_grad else None  # (2)

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"
