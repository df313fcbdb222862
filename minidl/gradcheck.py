"""Gradient checking: compare a hand-written backward pass with finite differences.

The derivative of a scalar function ``f`` at ``x`` along one coordinate is approximated by the
central difference ``(f(x + h e_i) - f(x - h e_i)) / (2h)``, whose error shrinks like ``h^2``.
In float64 with ``h = 1e-6`` an honest backward pass agrees to a relative error around 1e-9;
a bug (a missing transpose, a forgotten 1/N, a diagonal-only Jacobian) gives errors near 1.

To check a layer, reduce its output to a scalar with a **random** upstream gradient ``G``:
``L = sum(layer.forward(X) * G)``, so ``dL/dY = G``. An all-ones ``G`` (a plain sum) would hide
bugs that only show when different outputs have different weights.

>>> from minidl.layers import Dense
>>> errors = check_gradients(Dense(3, 2, rng=0, dtype=np.float64), np.ones((4, 3)), rng=1)
>>> sorted(errors), all(e < 1e-6 for e in errors.values())
(['W', 'X', 'b'], True)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from minidl._rng import RngLike, as_generator


def numerical_gradient(f: Callable[[], float], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central-difference gradient of the scalar ``f()`` with respect to the array ``x``.

    ``x`` is perturbed **in place**, one entry at a time, and restored; ``f`` must read it.
    """
    if not x.flags.c_contiguous:
        raise ValueError("numerical_gradient needs a C-contiguous array (np.ascontiguousarray(x))")
    grad = np.zeros_like(x, dtype=np.float64)
    flat = x.reshape(-1)  # a view: writing to it perturbs x
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        f_plus = f()
        flat[i] = old - h
        f_minus = f()
        flat[i] = old
        grad.reshape(-1)[i] = (f_plus - f_minus) / (2 * h)
    return grad


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """``||a - b|| / (||a|| + ||b||)``: 0 for equal arrays, about 1 for unrelated ones."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    denom = np.linalg.norm(a) + np.linalg.norm(b)
    return 0.0 if denom == 0 else float(np.linalg.norm(a - b) / denom)


def check_gradients(
    layer_or_loss,
    X: np.ndarray,
    target: np.ndarray | None = None,
    *,
    G: np.ndarray | None = None,
    h: float = 1e-6,
    rng: RngLike = None,
) -> dict[str, float]:
    """Relative error between analytic and numerical gradients, per input and parameter.

    For a layer: ``{"X": ..., "W": ..., "b": ...}`` through ``L = sum(forward(X) * G)`` with ``G``
    random normal unless given. For a loss (pass ``target``): ``{"pred": ...}`` for
    ``L = loss.forward(X, target)``. Use float64 inputs and a float64 layer; errors below about
    1e-6 mean the backward pass is right.
    """
    X = np.array(X, dtype=np.float64)
    if target is not None:
        loss = layer_or_loss
        loss.forward(X, target)
        analytic = loss.backward()
        numeric = numerical_gradient(lambda: loss.forward(X, target), X, h)
        return {"pred": rel_error(analytic, numeric)}

    layer = layer_or_loss
    low = [p.name for p in layer.parameters() if p.value.dtype != np.float64]
    if low:
        raise TypeError(
            f"check_gradients needs a float64 layer (parameters {low} are not): build it with "
            "dtype=np.float64, since float32 rounding swamps finite differences"
        )
    Y = layer.forward(X)
    if G is None:
        G = as_generator(rng).standard_normal(Y.shape)
    dX = layer.backward(G)
    analytic = {"X": dX, **{p.name: p.grad.copy() for p in layer.parameters()}}

    def L() -> float:
        return float(np.sum(layer.forward(X) * G))

    errors = {"X": rel_error(analytic["X"], numerical_gradient(L, X, h))}
    for p in layer.parameters():
        errors[p.name] = rel_error(analytic[p.name], numerical_gradient(L, p.value, h))
    return errors
