"""One training epoch of a 784-100-10 ReLU MLP on Fashion-MNIST: minidl against the floor and PyTorch.

    python -m benchmarks.mlp [--repeats N] [--quick] [--out DIR]

Every implementation trains the same network (softmax cross-entropy, plain SGD, float32, the 60000
training images scaled to [0, 1]) for one epoch, at batch sizes 1, 32, 128 and the full batch:

* ``minidl``: ``minidl.train.train_epoch``, exactly what ``fit`` runs for an epoch.
* ``floor``:  only the five matrix products no step can avoid (forward ``X @ W1``, ``H @ W2``;
  backward ``dW2 = H.T @ G``, ``dH = G @ W2.T``, ``dW1 = X.T @ dH``) into pre-allocated arrays
  on a pre-shuffled copy of the data. No framework can beat it with the same BLAS.
* ``numpy``:  a careful hand-written NumPy loop (shuffled copy gathered once into a kept buffer,
  in-place elementwise work): what plain NumPy can do without any framework.
* ``torch``:  PyTorch CPU, when it can be imported, with as many threads as NumPy's BLAS, slicing a
  pre-shuffled tensor (no DataLoader) and ``torch.optim.SGD``.

Batch size 1 runs a sample of ``BATCH1_STEPS`` steps, scaled to an epoch of 60000 steps.
Implementations are timed round-robin (one epoch of each per round, order rotated), after one
untimed warm-up round, and the table shows medians. Results go to ``DIR/mlp.json`` and ``DIR/mlp.md``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from benchmarks._util import (
    cpu_snapshot,
    import_torch,
    load_train,
    machine_info,
    markdown_table,
    median,
    others_load,
    parse_args,
    round_robin,
    text_table,
    write_report,
)
from minidl.layers import Dense, ReLU
from minidl.losses import SoftmaxCrossEntropy
from minidl.model import Sequential
from minidl.optim import SGD
from minidl.train import train_epoch

BATCH_SIZES = [1, 32, 128, None]  # None: the full batch
BATCH1_STEPS = 2000  # batch size 1 runs this many steps, scaled up to the whole epoch
N_HIDDEN, N_CLASSES = 100, 10
LR = 0.05
SEED = 0
# goals: minidl / floor at most, minidl / torch at most (None: no goal)
GOALS = {32: (2.0, 0.5), 128: (1.5, 1.0), None: (1.3, 1.0)}

Epoch = Callable[[], object]


def minidl_epoch(X: np.ndarray, y: np.ndarray, batch_size: int | None) -> Epoch:
    rng = np.random.default_rng(SEED)
    model = Sequential([Dense(X.shape[1], N_HIDDEN, rng=rng), ReLU(), Dense(N_HIDDEN, N_CLASSES, rng=rng)])
    loss, optimizer = SoftmaxCrossEntropy(), SGD(model.parameters(), lr=LR)
    return lambda: train_epoch(model, X, y, loss, optimizer, batch_size, rng)


def floor_epoch(X: np.ndarray, y: np.ndarray, batch_size: int | None) -> Epoch:
    n, d = X.shape
    B = n if batch_size is None else batch_size
    rng = np.random.default_rng(SEED)
    Xs = X if B == n else X[rng.permutation(n)]
    W1 = rng.normal(0, d**-0.5, (d, N_HIDDEN)).astype(np.float32)
    W2 = rng.normal(0, N_HIDDEN**-0.5, (N_HIDDEN, N_CLASSES)).astype(np.float32)
    H, dH = np.empty((B, N_HIDDEN), np.float32), np.empty((B, N_HIDDEN), np.float32)
    G = np.empty((B, N_CLASSES), np.float32)
    dW1, dW2 = np.empty_like(W1), np.empty_like(W2)

    def epoch() -> None:
        for start in range(0, n, B):
            Xb = Xs[start : start + B]
            m = len(Xb)
            np.matmul(Xb, W1, out=H[:m])
            np.matmul(H[:m], W2, out=G[:m])  # the logits stand in for dL/dZ
            np.matmul(H[:m].T, G[:m], out=dW2)
            np.matmul(G[:m], W2.T, out=dH[:m])
            np.matmul(Xb.T, dH[:m], out=dW1)

    return epoch


def numpy_epoch(X: np.ndarray, y: np.ndarray, batch_size: int | None) -> Epoch:
    n, d = X.shape
    B = n if batch_size is None else batch_size
    rng = np.random.default_rng(SEED)
    W1 = rng.normal(0, d**-0.5, (d, N_HIDDEN)).astype(np.float32)
    W2 = rng.normal(0, N_HIDDEN**-0.5, (N_HIDDEN, N_CLASSES)).astype(np.float32)
    b1, b2 = np.zeros(N_HIDDEN, np.float32), np.zeros(N_CLASSES, np.float32)
    Xs, ys = np.empty_like(X), np.empty_like(y)
    lr = np.float32(LR)

    def epoch() -> None:
        if B == n:
            Xe, ye = X, y
        else:
            order = rng.permutation(n)
            Xe, ye = np.take(X, order, axis=0, out=Xs), np.take(y, order, out=ys)
        for start in range(0, n, B):
            Xb, yb = Xe[start : start + B], ye[start : start + B]
            m = len(Xb)
            H = Xb @ W1
            H += b1
            np.maximum(H, 0, out=H)
            Z = H @ W2
            Z += b2
            Z -= Z.max(axis=1, keepdims=True)
            np.exp(Z, out=Z)
            Z /= Z.sum(axis=1, keepdims=True)
            Z[np.arange(m), yb] -= 1
            Z *= np.float32(1 / m)
            dW2, db2 = H.T @ Z, Z.sum(axis=0)
            dH = Z @ W2.T
            dH *= H > 0
            dW1, db1 = Xb.T @ dH, dH.sum(axis=0)
            for p, g in ((W1, dW1), (b1, db1), (W2, dW2), (b2, db2)):
                g *= lr
                p -= g

    return epoch


def torch_epoch(X: np.ndarray, y: np.ndarray, batch_size: int | None) -> Epoch:
    torch = import_torch()
    n = len(X)
    B = n if batch_size is None else batch_size
    torch.manual_seed(SEED)
    generator = torch.Generator().manual_seed(SEED)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    model = torch.nn.Sequential(
        torch.nn.Linear(X.shape[1], N_HIDDEN), torch.nn.ReLU(), torch.nn.Linear(N_HIDDEN, N_CLASSES)
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    cross_entropy = torch.nn.functional.cross_entropy

    def epoch() -> None:
        if B == n:
            Xs, ys = Xt, yt
        else:
            order = torch.randperm(n, generator=generator)
            Xs, ys = Xt[order], yt[order]
        for start in range(0, n, B):
            loss = cross_entropy(model(Xs[start : start + B]), ys[start : start + B])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    return epoch


def fmt(seconds: float) -> str:
    return f"{seconds:.3f}" if seconds == seconds else "-"


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], repeats=7)
    repeats = 2 if args.quick else args.repeats
    batch_sizes = [32, None] if args.quick else BATCH_SIZES
    torch = import_torch()
    machine = machine_info()
    if torch is not None:
        torch.set_num_threads(machine["blas_threads"])
    X, y = load_train()
    makers = {"minidl": minidl_epoch, "floor": floor_epoch, "numpy": numpy_epoch}
    if torch is not None:
        makers["torch"] = torch_epoch

    results = []
    started = time.perf_counter()
    for batch_size in batch_sizes:
        if batch_size == 1:
            sample = np.random.default_rng(SEED).choice(len(X), BATCH1_STEPS, replace=False)
            Xb, yb = X[sample], y[sample]
        else:
            Xb, yb = X, y
        scale = len(X) / len(Xb)
        jobs = {name: make(Xb, yb, batch_size) for name, make in makers.items()}
        label = "full" if batch_size is None else str(batch_size)
        print(f"batch {label}: {', '.join(jobs)} x {repeats} rounds", end=" ", flush=True)
        snapshot = cpu_snapshot()
        times = round_robin(jobs, repeats)
        others = others_load(snapshot, cpu_snapshot())
        times = {name: [t * scale for t in ts] for name, ts in times.items()}
        row = {
            "batch_size": batch_size,
            "steps": -(-len(X) // (batch_size or len(X))),
            "sampled_steps": len(Xb) if batch_size == 1 else None,
            "seconds": {name: median(ts) for name, ts in times.items()},
            "all_seconds": times,
            "others_load": others,
        }
        paired = {}  # median over rounds of the per-round ratio: robust to a slow spell
        for other in makers:
            if other != "minidl":
                paired[other] = median([a / b for a, b in zip(times["minidl"], times[other], strict=True)])
        row["paired_ratio"] = paired
        row["ratio"] = {o: row["seconds"]["minidl"] / row["seconds"][o] for o in makers if o != "minidl"}
        results.append(row)
    elapsed = time.perf_counter() - started

    others = [name for name in makers if name != "minidl"]
    header = ["batch", "steps", *(f"{name} s" for name in makers), *(f"minidl/{name}" for name in others)]
    header += ["goals: /floor, /torch", "others' load"]
    rows = []
    for row in results:
        b = row["batch_size"]
        label = "full" if b is None else str(b) + (f" ({row['sampled_steps']} sampled)" if b == 1 else "")
        cells = [label, str(row["steps"]), *(fmt(row["seconds"][name]) for name in makers)]
        cells += [f"{row['ratio'][name]:.2f}" for name in others]
        goal = GOALS.get(b)
        if goal is None:
            cells.append("-")
        else:
            met_floor = row["ratio"]["floor"] <= goal[0]
            met_torch = row["ratio"]["torch"] <= goal[1] if "torch" in row["ratio"] else None
            verdict = {True: "met", False: "MISSED", None: "n/a"}
            cells.append(f"<= {goal[0]} {verdict[met_floor]}, <= {goal[1]} {verdict[met_torch]}")
            row["goals"] = {"floor": [goal[0], met_floor], "torch": [goal[1], met_torch]}
        cells.append("-" if row["others_load"] is None else f"{row['others_load']:.2f}")
        rows.append(cells)

    notes = (
        f"Seconds per epoch of 60000 examples, median of {repeats} interleaved rounds (batch 1: "
        f"{BATCH1_STEPS} steps, scaled to the epoch). others' load: cores kept busy by other processes "
        f"while that row was measured (of {machine['cores']}). CPU: {machine['cpu']}, "
        f"BLAS threads {machine['blas_threads']}, numpy {machine['numpy']}, torch {machine['torch']}, "
        f"env {machine['env'] or '-'}; {elapsed:.0f} s in all."
    )
    print(text_table(header, rows))
    print(notes)
    data = {"results": results, "machine": machine, "repeats": repeats, "batch1_steps": BATCH1_STEPS}
    write_report(args.out, "mlp", data, markdown_table(header, rows) + "\n\n" + notes)
    print(f"wrote {args.out / 'mlp.json'} and {args.out / 'mlp.md'}")


if __name__ == "__main__":
    main()
