"""Sequential: layers applied one after another, and everything needed to save and restore them.

Forward runs the layers in order; backward runs them in reverse, each turning the gradient of
its output into the gradient of its input (the chain rule, one layer at a time). For
``Sequential([Dense, ReLU, Dense])`` and a loss L:

    forward    X --[0: Dense W1, b1]--> A --[1: ReLU]--> H --[2: Dense W2, b2]--> Z --[loss]--> L
    backward  dX <--[0: Dense]-------- dA <--[1: ReLU]- dH <--[2: Dense]-------- dZ <--[loss]-- 1
                           |                                         |
                   W1.grad, b1.grad                          W2.grad, b2.grad

    dZ = loss.backward()                   dL/dZ, e.g. (P - Y) / N for softmax cross-entropy
    dH = layers[2].backward(dZ)            dZ @ W2.T;   fills W2.grad = H.T @ dZ, b2.grad
    dA = layers[1].backward(dH)            dH * (A > 0)
    dX = layers[0].backward(dA)            dA @ W1.T;   fills W1.grad = X.T @ dA, b1.grad

Each arrow back is one layer's ``backward`` (the chain starts from dL/dL = 1): it takes the
gradient of its output, leaves the gradients of its own parameters in ``.grad`` and hands the
gradient of its input to the layer before it. ``dX``, the gradient of the data, is not needed
for training: ``backward(dZ, input_grad=False)`` lets the first layer skip it.

Parameters are named ``"<layer index>.<name>"`` (``"0.W"``, ``"0.b"``, ``"2.W"`` ...), as in
PyTorch's ``state_dict``; saved files are plain ``.npz`` archives of those arrays, read without
pickle.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator

import numpy as np

from minidl._io import atomic_write
from minidl.layers import Layer
from minidl.parameter import Parameter


class Sequential:
    """A stack of layers.

    >>> from minidl.layers import Dense, ReLU
    >>> model = Sequential([Dense(784, 100, rng=0), ReLU(), Dense(100, 10, rng=1)])
    >>> [name for name, _ in model.named_parameters()]
    ['0.W', '0.b', '2.W', '2.b']
    """

    def __init__(self, layers: list[Layer]) -> None:
        layers = list(layers)
        if not layers:
            raise ValueError("Sequential needs at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layer {i} is {type(layer).__name__}, not a minidl Layer")
        self.layers = layers
        self.history = None  # the History of the last fit, set when it starts (kept if it fails)

    # ---- computing ------------------------------------------------------------------------
    def forward(self, X: np.ndarray) -> np.ndarray:
        """Apply every layer in order."""
        for layer in self.layers:
            X = layer.forward(X)
        return X

    __call__ = forward

    def backward(self, G: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        """Propagate ``G = dL/d(output)`` back through the layers; fills every ``.grad``.

        Returns ``dL/d(input)``, or None with ``input_grad=False``: training never needs the
        gradient of the data, so the first layer is told to skip it.
        """
        for layer in reversed(self.layers[1:]):
            G = layer.backward(G)
        return self.layers[0].backward(G, input_grad=input_grad)

    def train(self, mode: bool = True) -> Sequential:
        """Switch every layer to training mode (Dropout active); ``train(False)`` is ``eval()``."""
        for layer in self.layers:
            layer.train(mode)
        return self

    def eval(self) -> Sequential:
        return self.train(False)

    # ---- parameters -----------------------------------------------------------------------
    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        for i, layer in enumerate(self.layers):
            for p in layer.parameters():
                yield f"{i}.{p.name}", p

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def n_parameters(self) -> int:
        return sum(p.size for p in self.parameters())

    def state_dict(self) -> dict[str, np.ndarray]:
        """A copy of every parameter's value, keyed by name."""
        return {name: p.value.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy values in, after checking every name, shape and dtype.

        Nothing is copied unless everything matches: a wrong shape must not be broadcast silently,
        and a half-loaded model is worse than an error.
        """
        params = dict(self.named_parameters())
        missing = sorted(set(params) - set(state))
        unexpected = sorted(set(state) - set(params))
        mismatched = []
        for name in sorted(set(params) & set(state)):
            want, got = params[name].value, np.asarray(state[name])
            if want.shape != got.shape or want.dtype != got.dtype:
                mismatched.append(
                    f"{name}: model has {want.shape} {want.dtype}, state has {got.shape} {got.dtype}"
                )
        if missing or unexpected or mismatched:
            lines = ["state does not fit this model:"]
            if missing:
                lines.append(f"  missing: {', '.join(missing)}")
            if unexpected:
                lines.append(f"  unexpected: {', '.join(unexpected)}")
            lines += [f"  mismatched {m}" for m in mismatched]
            raise ValueError("\n".join(lines))
        for name, p in params.items():
            p.value[...] = state[name]

    def save(self, path: str | os.PathLike, **extra: np.ndarray) -> None:
        """Write the parameters (and any ``extra`` arrays) to an ``.npz`` file, atomically."""
        save_npz(path, {**self.state_dict(), **{f"__{k}__": np.asarray(v) for k, v in extra.items()}})

    def load(self, path: str | os.PathLike) -> dict[str, np.ndarray]:
        """Load parameters saved by ``save``; returns the ``extra`` arrays that were stored with them."""
        arrays = load_npz(path)
        extra = {k[2:-2]: v for k, v in arrays.items() if k.startswith("__") and k.endswith("__")}
        self.load_state_dict({k: v for k, v in arrays.items() if not k.startswith("__")})
        return extra

    # ---- description ----------------------------------------------------------------------
    def summary(self, input_shape: tuple[int, ...] | None = None) -> str:
        """The model as a table: each layer, its output shape and parameter count, and the total.

        ``input_shape`` excludes the batch axis; when omitted it is read from a first ``Dense``.
        Output shapes come from pushing one all-zero example through copies of the layers.
        """
        if input_shape is None:
            first = self.layers[0]
            if not hasattr(first, "n_in"):
                raise ValueError("summary() needs input_shape (excluding the batch axis)")
            input_shape = (first.n_in,)
        dtype = next((p.value.dtype for p in self.parameters()), np.float32)
        X = np.zeros((1, *input_shape), dtype=dtype)
        rows = [("Layer", "Output shape", "Params")]
        for i, layer in enumerate(self.layers):
            probe = copy.deepcopy(layer).eval()  # a copy: the model's own caches stay untouched
            X = probe.forward(X)
            count = sum(p.size for p in layer.parameters())
            rows.append((f"{i}: {layer!r}", str((None, *X.shape[1:])), f"{count:,}"))
        widths = [max(len(r[c]) for r in rows) for c in range(3)]
        rule = "-" * (sum(widths) + 4)
        fmt = f"{{:<{widths[0]}}}  {{:<{widths[1]}}}  {{:>{widths[2]}}}"
        lines = [fmt.format(*rows[0]), rule, *(fmt.format(*r) for r in rows[1:]), rule]
        lines.append(f"Total parameters: {self.n_parameters():,}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        inner = ",\n".join(f"  {layer!r}" for layer in self.layers)
        return f"Sequential([\n{inner}\n])"


def save_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` atomically (``minidl._io.atomic_write``): an interrupted write
    never leaves a half-written file.

    (``np.savez`` given a *path* appends ``.npz`` when missing; given an open file it writes
    exactly there, which is why we hand it the temporary file object.)
    """
    with atomic_write(path) as f:
        np.savez(f, **arrays)


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read every array of an ``.npz`` file (no pickle), with a clear error for a damaged file."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise
    except Exception as err:  # zipfile.BadZipFile, ValueError, EOFError, OSError ...
        raise ValueError(
            f"cannot read weights from {os.fspath(path)!r}: damaged or not an .npz "
            f"file ({type(err).__name__}: {err})"
        ) from err
