"""The gradient property test: every layer's and loss's backward pass against finite differences.

Adding a layer means adding one entry to LAYERS (or LOSSES). Each entry builds a float64 instance
from an ``rng`` and draws a matching input; hypothesis chooses the sizes and the seed.

For layers the scalar is ``L = sum(forward(X) * G)`` with a random ``G``, so ``dL/dY = G``; the
analytic ``dX`` and every ``p.grad`` must match central differences (h = 1e-6) to a relative
error below 1e-6, have the right shapes and dtypes, leave ``X`` and ``G`` unmodified, and come
out identical when backward is called twice (gradients are overwritten, not accumulated).
``backward(G, input_grad=False)`` returns None and leaves the same parameter gradients.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from minidl import conv, layers, losses
from minidl.gradcheck import numerical_gradient, rel_error

TOL = 1e-6
H = 1e-6


def away_from_zero(X: np.ndarray, margin: float = 1e-3) -> np.ndarray:
    """Move entries within ``margin`` of 0 to +-margin*2: finite differences straddling ReLU's kink
    would measure a slope that exists on neither side."""
    near = np.abs(X) < margin
    return np.where(near, np.where(X >= 0, 2 * margin, -2 * margin), X)


def dense(rng, n, d):
    return layers.Dense(d, int(rng.integers(1, 6)), rng=rng, dtype=np.float64), rng.standard_normal((n, d))


def dense_glorot(rng, n, d):
    layer = layers.Dense(d, 3, init="glorot_uniform", rng=rng, dtype=np.float64)
    return layer, rng.standard_normal((n, d))


def relu(rng, n, d):
    return layers.ReLU(), away_from_zero(rng.standard_normal((n, d)))


def sigmoid(rng, n, d):
    return layers.Sigmoid(), 3 * rng.standard_normal((n, d))


def tanh(rng, n, d):
    return layers.Tanh(), rng.standard_normal((n, d))


def softmax(rng, n, d):
    return layers.Softmax(), 2 * rng.standard_normal((n, d))


def flatten(rng, n, d):
    return layers.Flatten(), rng.standard_normal((n, 2, d, 3))


def dropout(rng, n, d):
    layer = layers.Dropout(0.4, rng=rng)
    X = rng.standard_normal((n, d))
    keep = rng.random(X.shape) >= 0.4
    layer.fix_mask(keep / 0.6)
    return layer, X


def conv2d(rng, n, d):
    layer = conv.Conv2D(2, 3, 3, rng=rng, dtype=np.float64)
    return layer, rng.standard_normal((n, 2, d + 3, d + 2))


def conv2d_strided_padded(rng, n, d):
    layer = conv.Conv2D(2, 2, 3, stride=2, padding=1, rng=rng, dtype=np.float64)
    return layer, rng.standard_normal((n, 2, d + 1, d + 2))


def conv2d_non_square(rng, n, d):
    layer = conv.Conv2D(1, 2, (2, 3), padding=(1, 0), rng=rng, dtype=np.float64)
    return layer, rng.standard_normal((n, 1, d + 1, d + 2))


def conv2d_by_correlation(rng, n, d):  # stride 1, C_out <= C_in: dX computed as a full correlation
    layer = conv.Conv2D(3, 2, 3, padding=1, rng=rng, dtype=np.float64)
    return layer, rng.standard_normal((n, 3, d + 2, d + 1))


def maxpool2d(rng, n, d):
    X = rng.standard_normal((n, 2, d + 1, d + 2))
    # Adding 1e-3 * rank keeps the order and leaves every two entries >= 1e-3 (>> H) apart: no ties.
    return conv.MaxPool2D(2), X + 1e-3 * np.argsort(np.argsort(X, axis=None)).reshape(X.shape)


def maxpool2d_overlapping(rng, n, d):
    X = rng.standard_normal((n, 2, d + 2, d + 3))
    # Adding 1e-3 * rank keeps the order and leaves every two entries >= 1e-3 (>> H) apart: no ties.
    return conv.MaxPool2D(3, stride=2), X + 1e-3 * np.argsort(np.argsort(X, axis=None)).reshape(X.shape)


LAYERS = {
    "Dense": dense,
    "Dense(glorot)": dense_glorot,
    "ReLU": relu,
    "Sigmoid": sigmoid,
    "Tanh": tanh,
    "Softmax": softmax,
    "Flatten": flatten,
    "Dropout(fixed mask)": dropout,
    "Conv2D(stride 1, pad 0)": conv2d,
    "Conv2D(stride 2, pad 1)": conv2d_strided_padded,
    "Conv2D(kernel 2x3, pad (1, 0))": conv2d_non_square,
    "Conv2D(3 -> 2, pad 1: dX by correlation)": conv2d_by_correlation,
    "MaxPool2D(2)": maxpool2d,
    "MaxPool2D(3, stride 2)": maxpool2d_overlapping,
}


def softmax_ce(rng, n, d):
    k = max(d, 2)
    # Moderate logits: when a probability is within 1e-6 of 1 the loss itself is ~1e-6 and float64
    # rounding of it swamps a central difference (the backward pass is still right there).
    return losses.SoftmaxCrossEntropy(), rng.standard_normal((n, k)), rng.integers(0, k, n)


def cross_entropy(rng, n, d):
    k = max(d, 2)
    P = rng.uniform(0.05, 1.0, (n, k))
    return losses.CrossEntropy(), P / P.sum(axis=1, keepdims=True), rng.integers(0, k, n)


def mse(rng, n, d):
    return losses.MSE(), rng.standard_normal((n, d)), rng.standard_normal((n, d))


def sigmoid_bce(rng, n, d):
    shape = (n,) if d % 2 else (n, 1)
    return losses.SigmoidBinaryCrossEntropy(), 3 * rng.standard_normal(shape), rng.integers(0, 2, n)


LOSSES = {
    "SoftmaxCrossEntropy": softmax_ce,
    "CrossEntropy": cross_entropy,
    "MSE": mse,
    "SigmoidBinaryCrossEntropy": sigmoid_bce,
}

sizes = st.tuples(st.integers(1, 5), st.integers(1, 6), st.integers(0, 2**32 - 1))


@settings(deadline=None)
@given(name=st.sampled_from(sorted(LAYERS)), size=sizes)
def test_layer_gradients(name, size):
    n, d, seed = size
    rng = np.random.default_rng(seed)
    layer, X = LAYERS[name](rng, n, d)
    X_before = X.copy()
    Y = layer.forward(X)
    G = rng.standard_normal(Y.shape)
    G_before = G.copy()

    dX = layer.backward(G)
    grads = [p.grad.copy() for p in layer.parameters()]
    assert dX.shape == X.shape and dX.dtype == np.float64
    for p, g in zip(layer.parameters(), grads, strict=True):
        assert g.shape == p.value.shape and g.dtype == p.value.dtype

    # Backward twice on the same forward: same result, no accumulation.
    dX_again = layer.backward(G)
    np.testing.assert_array_equal(dX_again, dX)
    for p, g in zip(layer.parameters(), grads, strict=True):
        np.testing.assert_array_equal(p.grad, g)
    # Without the input gradient (a first layer): nothing returned, the same parameter gradients.
    for p in layer.parameters():
        p.grad[...] = np.nan
    assert layer.backward(G, input_grad=False) is None
    for p, g in zip(layer.parameters(), grads, strict=True):
        np.testing.assert_array_equal(p.grad, g)

    def L() -> float:
        return float(np.sum(layer.forward(X) * G))

    assert rel_error(dX, numerical_gradient(L, X, H)) < TOL, f"{name}: input gradient"
    for p, g in zip(layer.parameters(), grads, strict=True):
        assert rel_error(g, numerical_gradient(L, p.value, H)) < TOL, f"{name}: gradient of {p.name}"
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(G, G_before)


@settings(deadline=None)
@given(name=st.sampled_from(sorted(LOSSES)), size=sizes)
def test_loss_gradients(name, size):
    n, d, seed = size
    rng = np.random.default_rng(seed)
    loss, pred, target = LOSSES[name](rng, n, d)
    pred_before, target_before = pred.copy(), target.copy()
    value = loss.forward(pred, target)
    assert isinstance(value, float) and np.isfinite(value)
    grad = loss.backward()
    assert grad.shape == pred.shape and grad.dtype == pred.dtype
    np.testing.assert_array_equal(loss.backward(), grad)
    numeric = numerical_gradient(lambda: loss.forward(pred, target), pred, H)
    assert rel_error(grad, numeric) < TOL, name
    np.testing.assert_array_equal(pred, pred_before)
    np.testing.assert_array_equal(target, target_before)


def test_registry_covers_every_layer_and_loss():
    """A new Layer or Loss subclass without a registry entry fails here."""

    def all_subclasses(cls):  # minidl's own: test modules may define throw-away subclasses
        found = {c for sub in cls.__subclasses__() for c in {sub} | all_subclasses(sub)}
        return {c for c in found if c.__module__.startswith("minidl.")}

    layer_classes = {c.__name__ for c in all_subclasses(layers.Layer)}
    covered = {name.split("(")[0] for name in LAYERS}
    assert layer_classes <= covered, f"layers missing from the gradient registry: {layer_classes - covered}"
    loss_classes = {c.__name__ for c in all_subclasses(losses.Loss)}
    assert loss_classes <= set(LOSSES), f"losses missing from the registry: {loss_classes - set(LOSSES)}"
