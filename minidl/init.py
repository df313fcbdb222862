"""Initialisers: functions ``(shape, rng, dtype) -> array`` that give a layer its starting weights.

Why the scale matters: for ``y = x @ W`` with ``n_in`` independent inputs of variance ``v`` and
weights of variance ``s^2``, each output has variance ``n_in * s^2 * v``. Choosing
``s = 1/sqrt(n_in)`` keeps the output variance equal to the input's, so signals neither explode nor
vanish as they pass through the layer. That is the default here (LeCun's normal initialisation).
He (``s = sqrt(2/n_in)``) compensates for ReLU zeroing half of its inputs; Glorot
(``s = sqrt(2/(n_in + n_out))``) balances the forward and backward pass. Biases start at zero.

For a weight of shape ``(n_in, n_out)`` (Dense) the fan-in is ``shape[0]``; for a convolution
kernel ``(c_out, c_in, kh, kw)`` it is ``c_in * kh * kw``.
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
    """N(0, std 1/sqrt(fan_in)): the default."""
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
