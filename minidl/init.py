"""Initialisers: functions ``(shape, rng, dtype) -> array`` that give a layer its starting weights.

Why the default std is 1/sqrt(n_in). Take a Dense layer ``y = x @ W`` (bias 0, as at the start)
whose weights are drawn independently, ``W[i, j] ~ N(0, s^2)``, and an input row ``x`` of ``n_in``
entries that does not depend on ``W``. Output ``j`` is the sum of ``n_in`` terms ``x[i] W[i, j]``,
each of mean 0 and, for a given ``x``, variance ``x[i]^2 s^2``; so, averaging over the draw of
``W`` and over the inputs,

    E[y_j] = 0,    E[y_j^2] = s^2 * sum_i E[x_i^2] = n_in * s^2 * q                  (1)

with ``q = (1/n_in) sum_i E[x_i^2]``, the **mean square** of the inputs. The mean square, not
the variance: nothing makes the inputs centred (pixels in [0, 1] are all non-negative), and
``q = variance + mean^2`` counts the mean as much as the spread. With ``s = 1/sqrt(n_in)``, (1)
becomes ``E[y_j^2] = q``: each output has the mean square of the inputs, whatever the layer's
width, so a signal neither explodes nor vanishes as it passes through layer after layer.
That is the default here (LeCun's normal initialisation). For a softmax-only model it also
says where the loss starts: the logits have mean square ``q``, and
``losses.SoftmaxCrossEntropy`` derives the starting loss ``ln K + (1 - 1/K) q / 2`` from it.

The other rules change only ``s``. He (``s = sqrt(2/n_in)``): a ReLU after the layer zeroes the
negative half of a symmetric, zero-mean ``y``, which halves its mean square; doubling ``s^2``
gives it back. Glorot (``s = sqrt(2/(n_in + n_out))``): the backward pass ``dX = G @ W.T`` sums
``n_out`` terms, so the same argument asks ``s^2 = 1/n_out`` there; Glorot takes the harmonic
mean of the two variances. Biases start at zero.

For a weight of shape ``(n_in, n_out)`` (Dense) the fan-in is ``shape[0]``; for a convolution
kernel ``(c_out, c_in, kh, kw)`` it is ``c_in * kh * kw`` (each output sums that many inputs).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Initializer = Callable[[tuple[int, ...], np.random.Generator, np.dtype], np.ndarray]


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a Dense ``(n_in, n_out)`` or conv ``(c_out, c_in, kh, kw)`` weight."""
    if len(shape) == 2:
        return shape[0], shape[1]
    if len(shape) == 4:
        receptive = shape[2] * shape[3]
        return shape[1] * receptive, shape[0] * receptive
    raise ValueError(f"cannot infer fan-in of a weight with shape {shape}")


def _normal(std: float, shape, rng, dtype) -> np.ndarray:
    return rng.normal(0.0, std, size=shape).astype(dtype, copy=False)


def lecun_normal(shape: tuple[int, ...], rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
    """N(0, std 1/sqrt(fan_in)): the default, which keeps each output's mean square equal to the
    inputs' (equation (1) of the module docstring)."""
    return _normal(1.0 / np.sqrt(fans(shape)[0]), shape, rng, dtype)


def he_normal(shape: tuple[int, ...], rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
    """N(0, std sqrt(2/fan_in)), suited to ReLU layers."""
    return _normal(np.sqrt(2.0 / fans(shape)[0]), shape, rng, dtype)


def glorot_normal(shape: tuple[int, ...], rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
    """N(0, std sqrt(2/(fan_in + fan_out)))."""
    fan_in, fan_out = fans(shape)
    return _normal(np.sqrt(2.0 / (fan_in + fan_out)), shape, rng, dtype)


def glorot_uniform(shape: tuple[int, ...], rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
    """U(-a, a) with a = sqrt(6/(fan_in + fan_out)) (Keras's default for Dense)."""
    fan_in, fan_out = fans(shape)
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(dtype, copy=False)


def zeros(shape: tuple[int, ...], rng: np.random.Generator | None = None, dtype=np.float32):
    """All zeros (biases)."""
    return np.zeros(shape, dtype=dtype)


INITIALIZERS: dict[str, Initializer] = {
    "lecun_normal": lecun_normal,
    "he_normal": he_normal,
    "glorot_normal": glorot_normal,
    "glorot_uniform": glorot_uniform,
    "zeros": zeros,
}


def get(init: str | Initializer) -> Initializer:
    """Look an initialiser up by name, or return the callable unchanged."""
    if callable(init):
        return init
    try:
        return INITIALIZERS[init]
    except KeyError:
        raise ValueError(f"unknown initialiser {init!r}; choose from {sorted(INITIALIZERS)}") from None
