"""Optimiser steps as their equations against in place: what the in-place form saves per epoch.

    python -m benchmarks.optim [--repeats N] [--quick] [--out DIR]

Each step written two ways: as its equations (``m = beta1 * m + (1 - beta1) * g``, new arrays every
step) and in place (``m *= beta1`` ... into a scratch array per parameter, no new arrays). This
times one training epoch of the 784-100-10 ReLU MLP of ``benchmarks.mlp``
(``minidl.train.train_epoch``) with each, round-robin in the same process, at batch 32, 128 and
the full batch. ``minidl.optim`` writes a step in place only where the equations make an epoch at
least 10% longer (ratio >= 1.1): the last column says which form it uses. Results go to
``DIR/optim.json`` and ``DIR/optim.md``.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks._util import (
    cpu_snapshot,
    load_train,
    machine_info,
    median,
    others_load,
    parse_args,
    publish,
    round_robin,
)
from minidl.layers import Dense, ReLU
from minidl.losses import SoftmaxCrossEntropy
from minidl.model import Sequential
from minidl.optim import SGD, Adam
from minidl.train import train_epoch

BATCH_SIZES = [32, 128, None]  # None: the full batch
SEED = 0


class SGDInPlace(SGD):
    """SGD with momentum: the velocity updated in place, the step through a scratch array."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.scratch = [np.empty_like(p.value) for p in self.params]

    def step(self) -> None:
        for p, v, tmp in zip(self.params, self.velocity, self.scratch, strict=True):
            v *= self.momentum
            v += p.grad
            p.value -= np.multiply(v, self.lr, out=tmp)


class AdamEquations(Adam):
    """Adam as its four equations, new arrays every step."""

    def step(self) -> None:
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        for i, p in enumerate(self.params):
            g = p.grad
            self.m[i] = b1 * self.m[i] + (1 - b1) * g
            self.v[i] = b2 * self.v[i] + (1 - b2) * g * g
            m_hat, v_hat = self.m[i] / (1 - b1**self.t), self.v[i] / (1 - b2**self.t)
            p.value -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


# name: (equations, in place, the form minidl.optim uses)
OPTIMIZERS = {
    "SGD(momentum=0.9)": (lambda ps: SGD(ps, 0.05, 0.9), lambda ps: SGDInPlace(ps, 0.05, 0.9), "equations"),
    "Adam": (lambda ps: AdamEquations(ps, lr=1e-3), lambda ps: Adam(ps, lr=1e-3), "in place"),
}


def epoch(X: np.ndarray, y: np.ndarray, batch_size: int | None, make_optimizer):
    rng = np.random.default_rng(SEED)
    model = Sequential([Dense(X.shape[1], 100, rng=rng), ReLU(), Dense(100, 10, rng=rng)])
    loss, optimizer = SoftmaxCrossEntropy(), make_optimizer(model.parameters())
    return lambda: train_epoch(model, X, y, loss, optimizer, batch_size, rng)


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], repeats=9)
    repeats = 2 if args.quick else args.repeats
    batch_sizes = [32] if args.quick else BATCH_SIZES
    machine = machine_info()
    X, y = load_train()
    results, rows = [], []
    started = time.perf_counter()
    for name, (equations_step, in_place_step, used) in OPTIMIZERS.items():
        for batch_size in batch_sizes:
            label = "full" if batch_size is None else str(batch_size)
            print(f"{name}, batch {label}: {repeats} rounds", end=" ", flush=True)
            jobs = {
                "equations": epoch(X, y, batch_size, equations_step),
                "in place": epoch(X, y, batch_size, in_place_step),
            }
            snapshot = cpu_snapshot()
            times = round_robin(jobs, repeats)
            others = others_load(snapshot, cpu_snapshot())
            paired = median([a / b for a, b in zip(times["equations"], times["in place"], strict=True)])
            results.append({"optimizer": name, "batch_size": batch_size, "all_seconds": times,
                            "paired_ratio": paired, "others_load": others})  # fmt: skip
            rows.append([name, label, f"{median(times['equations']):.3f}", f"{median(times['in place']):.3f}",
                         f"{paired:.2f}", used, "-" if others is None else f"{others:.2f}"])  # fmt: skip
    header = [
        "optimiser",
        "batch",
        "equations s",
        "in place s",
        "equations / in place",
        "minidl uses",
        "others' load",
    ]
    notes = (
        f"Seconds per epoch of 60000 examples, median of {repeats} interleaved rounds; the ratio is the "
        f"median of per-round ratios. CPU: {machine['cpu']}, BLAS threads {machine['blas_threads']}, "
        f"numpy {machine['numpy']}; {time.perf_counter() - started:.0f} s in all."
    )
    publish(
        args.out, "optim", {"results": results, "machine": machine, "repeats": repeats}, header, rows, notes
    )


if __name__ == "__main__":
    main()
