"""Forward and backward time of each minidl layer and loss, at a few batch sizes.

    python -m benchmarks.layers [--repeats N] [--quick] [--out DIR]

Each case builds one layer (float32), draws an input and an upstream gradient, and times
``forward`` and ``backward`` separately: each timing is the mean over enough calls to last about
``MIN_SECONDS``, and the table shows the median of ``--repeats`` such timings, the cases
interleaved round-robin. Conv2D and MaxPool2D are included when ``minidl.conv`` exists.
Results go to ``DIR/layers.json`` and ``DIR/layers.md``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from benchmarks._util import machine_info, median, parse_args, publish
from minidl import layers, losses

BATCH_SIZES = [32, 128, 1024]
MIN_SECONDS = 0.05
SEED = 0


def cases(batch_sizes: list[int]) -> dict[str, Callable[[], tuple[str, Callable, Callable]]]:
    """name -> builder returning (input shape text, forward(), backward()) for one fresh layer."""
    rng = np.random.default_rng(SEED)

    def normal(*shape):
        return rng.standard_normal(shape, dtype=np.float32)

    def layer_case(make_layer, shape):
        def build():
            layer, X = make_layer(), normal(*shape)
            G = normal(*layer.forward(X).shape)
            return "x".join(map(str, shape)), lambda: layer.forward(X), lambda: layer.backward(G)

        return build

    def loss_case(shape):
        def build():
            loss, Z = losses.SoftmaxCrossEntropy(), normal(*shape)
            y = rng.integers(0, shape[1], shape[0])
            return "x".join(map(str, shape)), lambda: loss.forward(Z, y), loss.backward

        return build

    out = {}
    for N in batch_sizes:
        out[f"Dense 784->100 | {N}"] = layer_case(lambda: layers.Dense(784, 100, rng=SEED), (N, 784))
        out[f"Dense 100->10 | {N}"] = layer_case(lambda: layers.Dense(100, 10, rng=SEED), (N, 100))
        out[f"ReLU | {N}"] = layer_case(layers.ReLU, (N, 100))
        out[f"Sigmoid | {N}"] = layer_case(layers.Sigmoid, (N, 100))
        out[f"Tanh | {N}"] = layer_case(layers.Tanh, (N, 100))
        out[f"Softmax | {N}"] = layer_case(layers.Softmax, (N, 10))
        out[f"SoftmaxCrossEntropy | {N}"] = loss_case((N, 10))
    try:
        from minidl import conv
    except ImportError:
        return out
    for N in batch_sizes:
        out[f"Conv2D 1->8 3x3 pad 1 | {N}"] = layer_case(
            lambda: conv.Conv2D(1, 8, 3, padding=1, rng=SEED), (N, 1, 28, 28)
        )
        out[f"MaxPool2D 2x2 | {N}"] = layer_case(lambda: conv.MaxPool2D(2), (N, 8, 28, 28))
    return out


def per_call(fn: Callable[[], object]) -> float:
    """Mean seconds per call over about MIN_SECONDS of calls."""
    calls, started = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - started
        if elapsed >= MIN_SECONDS:
            return elapsed / calls


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], repeats=5)
    repeats = 2 if args.quick else args.repeats
    batch_sizes = [32] if args.quick else BATCH_SIZES
    built = {name: build() for name, build in cases(batch_sizes).items()}
    times = {name: {"forward": [], "backward": []} for name in built}
    for _ in range(1 + repeats):  # the first round warms up and is dropped
        for name, (_, forward, backward) in built.items():
            forward()
            times[name]["forward"].append(per_call(forward))
            times[name]["backward"].append(per_call(backward))
    header = ["layer", "batch", "input", "forward us", "backward us", "total us", "total us / example"]
    rows, results = [], []
    for name, (shape, _, _) in built.items():
        layer, N = name.split(" | ")
        f, b = (median(times[name][k][1:]) for k in ("forward", "backward"))
        results.append(
            {"layer": layer, "batch_size": int(N), "input": shape, "forward_s": f, "backward_s": b}
        )
        rows.append([layer, N, shape, f"{f * 1e6:.1f}", f"{b * 1e6:.1f}", f"{(f + b) * 1e6:.1f}",
                     f"{(f + b) * 1e6 / int(N):.2f}"])  # fmt: skip
    machine = machine_info()
    load = machine["load_average"]
    notes = (
        f"Median of {repeats} rounds, float32. CPU: {machine['cpu']}, {machine['cores']} cores, "
        f"BLAS threads {machine['blas_threads']}, numpy {machine['numpy']}; load average after "
        f"{load[0]:.2f}."
    )
    publish(
        args.out, "layers", {"results": results, "machine": machine, "repeats": repeats}, header, rows, notes
    )


if __name__ == "__main__":
    main()
