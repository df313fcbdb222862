"""A trainable array and the gradient that belongs to it.

A layer owns its parameters; ``backward`` writes ``grad`` and an optimiser
reads ``grad`` to update ``value`` in place. Nothing else touches them.
"""

from __future__ import annotations

import numpy as np


class Parameter:
    """``value`` (the array being learned), ``grad`` (same shape and dtype) and a short ``name``.

    >>> p = Parameter(np.ones((2, 3), dtype=np.float32), "W")
    >>> p.grad.shape, p.grad.dtype, p.name
    ((2, 3), dtype('float32'), 'W')
    """

    __slots__ = ("value", "grad", "name")

    def __init__(self, value: np.ndarray, name: str) -> None:
        # C-contiguous, so that views like value.reshape(-1) or W.grad.reshape(...) are views, not copies
        self.value = np.ascontiguousarray(value)
        self.grad = np.zeros_like(self.value)
        self.name = name

    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.shape

    @property
    def size(self) -> int:
        return self.value.size

    def __repr__(self) -> str:
        return f"Parameter({self.name!r}, shape={self.value.shape}, dtype={self.value.dtype})"
