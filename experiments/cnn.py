"""MLP vs CNN on Fashion-MNIST: does a small convolutional network beat a dense one of the same size?

Two models with about the same number of weights, trained the same way on the same data:

    MLP  Dense(784, 512) ReLU Dropout(0.3) Dense(512, 10)                             407,050 weights
    CNN  Conv2D(1, 32, 3, padding=1) ReLU MaxPool2D(2) Conv2D(32, 64, 3, padding=1) ReLU MaxPool2D(2)
         Flatten Dense(3136, 128) ReLU Dropout(0.3) Dense(128, 10)                     421,642 weights

Training, for both: softmax cross-entropy, Adam (lr 1e-3, multiplied by 0.85 after every epoch),
mini-batches of 128, at most 15 epochs, EarlyStopping on the validation loss (patience 3, best
weights restored) and a ModelCheckpoint of the best weights. The MLP is cheap, so it runs with 5
seeds (mean +- std); the CNN costs about 20x more per epoch and runs with one seed.

    python -m experiments.cnn [--out DIR] [--quick] [--plot-only] [--workers N] [--epochs E]

``run`` trains every (model, seed) with ``run_sweep`` (two processes with one BLAS thread each on
a two-core machine: the CNN on one core, the MLP seeds one after another on the other; a finished
training is saved in DIR/runs and is not redone if the run is restarted). Each training writes
DIR/checkpoints/<model>-seed<s>.npz (best weights) and .history.json (after every epoch). Then:
    results.json    settings, normalisation, every training's history, times, test scores
    results.npz     test labels and every training's test predictions; an example test image
``plot`` reads only those files (and the CNN's checkpoint) and draws curves.png, confusion.png,
per_class.png, filters.png and feature_maps.png, then writes metrics.json and report.md.
Training is wrapped in ``sigterm_as_interrupt()``: Ctrl-C or ``kill`` stops every training cleanly
(best weights and histories so far stay on disk).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import multiprocessing
import os
import resource
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.ticker import MaxNLocator

from experiments._common import (
    CLASS_NAMES,
    class_counts,
    fmt,
    log,
    make_parser,
    md_table,
    read_json,
    split_data,
    write_json,
    write_text,
)
from minidl import Adam, Dense, Dropout, Flatten, ReLU, Sequential, SoftmaxCrossEntropy, fit, metrics, plots
from minidl.callbacks import (
    Callback,
    EarlyStopping,
    ExponentialDecay,
    HistoryCheckpoint,
    ModelCheckpoint,
    read_checkpoint_info,
    sigterm_as_interrupt,
)
from minidl.conv import Conv2D, MaxPool2D
from minidl.model import load_npz, save_npz
from minidl.model_selection import stratified_subsample
from minidl.sweep import default_workers, process_pool, run_sweep
from minidl.train import predict

NAME = "cnn"
MODELS = ("mlp", "cnn")
LABELS = {"mlp": "MLP", "cnn": "CNN"}
COLORS = {"mlp": "C0", "cnn": "C1"}

FULL = {
    "n_train": None,  # all 50000 training images
    "n_val": None,  # all 10000 validation images
    "seeds": {"mlp": 5, "cnn": 1},
    "hidden": 512,  # MLP hidden units: 407,050 weights, about the CNN's 421,642
    "dropout": 0.3,
    "lr": 1e-3,
    "lr_decay": 0.85,  # lr of epoch e = lr * lr_decay ** (e - 1)
    "batch_size": 128,
    "max_epochs": 15,
    "patience": 3,
    "monitor": "val_loss",
}
# A smoke run of a few seconds of training: a stratified 3000/1000 subset, two epochs.
QUICK = {
    **FULL,
    "n_train": 3000,
    "n_val": 1000,
    "seeds": {"mlp": 2, "cnn": 1},
    "max_epochs": 2,
    "patience": 2,
}

# fit scores the whole training and validation sets after every epoch, EVAL_CHUNK images per
# forward pass: for the CNN, 2048 images make 200 MB per feature-map tensor, far out of cache
# (measured 0.5-0.7 ms per image, against 0.15 ms in chunks of 128).
EVAL_CHUNK = 128
SCORE_KEYS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy")
EXAMPLE_INDEX = 0  # the test image whose first-layer feature maps are drawn (an ankle boot)


# ---- data and models ----------------------------------------------------------------------------
@functools.lru_cache(maxsize=2)
def prepared_data(data_seed: int, n_train: int | None, n_val: int | None) -> dict[str, Any]:
    """The stratified split of ``split_data`` (pixels in [0, 1]), optionally subsampled, then
    standardised with ONE mean and ONE standard deviation, measured on the training images.

    Not per pixel (``split_data(normalisation="standardise")``): a convolution applies the same
    filter at every position, so every position should see pixels on the same scale, and per-pixel
    statistics would blow up the almost always black border pixels. One global affine map keeps
    an image an image, centred with unit variance (what the default initialisation assumes).
    Cached per process.
    """
    data = split_data(seed=data_seed, normalisation="raw")
    tr = _subset(data.y_train, n_train, data_seed)
    va = _subset(data.y_val, n_val, data_seed)
    X_train = data.X_train[tr]
    mean, std = float(X_train.mean(dtype=np.float64)), float(X_train.std(dtype=np.float64))

    def standardise(X: np.ndarray) -> np.ndarray:
        return ((X - np.float32(mean)) / np.float32(std)).astype(np.float32)

    return {
        "X_train": standardise(X_train),
        "y_train": data.y_train[tr],
        "X_val": standardise(data.X_val[va]),
        "y_val": data.y_val[va],
        "X_test": standardise(data.X_test),
        "y_test": data.y_test,
        "images_test": data.images_test,
        "mean": mean,
        "std": std,
    }


def _subset(y: np.ndarray, n: int | None, seed: int) -> np.ndarray:
    return np.arange(len(y)) if n is None else np.sort(stratified_subsample(y, n, rng=seed))


def build_model(kind: str, cfg: dict, seed: int) -> Sequential:
    """The MLP or the CNN of the module docstring, weights drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    if kind == "mlp":
        h = cfg["hidden"]
        return Sequential(
            [Dense(784, h, rng=rng), ReLU(), Dropout(cfg["dropout"], rng=rng), Dense(h, 10, rng=rng)]
        )
    if kind == "cnn":
        return Sequential(
            [
                Conv2D(1, 32, 3, padding=1, rng=rng),  # (N, 32, 28, 28)
                ReLU(),
                MaxPool2D(2),  # (N, 32, 14, 14)
                Conv2D(32, 64, 3, padding=1, rng=rng),  # (N, 64, 14, 14)
                ReLU(),
                MaxPool2D(2),  # (N, 64, 7, 7)
                Flatten(),  # (N, 3136)
                Dense(64 * 7 * 7, 128, rng=rng),
                ReLU(),
                Dropout(cfg["dropout"], rng=rng),
                Dense(128, 10, rng=rng),
            ]
        )
    raise ValueError(f"unknown model {kind!r}; expected one of {MODELS}")


INPUT_SHAPE = {"mlp": (784,), "cnn": (1, 28, 28)}  # one example, without the batch axis


# ---- callbacks of our own (timing, progress) ----------------------------------------------------
class EpochClock(Callback):
    """Wall-clock and CPU seconds of every whole epoch: the training pass, scoring the training
    and validation sets, and the other callbacks' work. With one BLAS thread the CPU time is what
    the epoch would take on an idle core; the wall time also counts waiting for a busy machine."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def on_epoch_begin(self, epoch: int) -> None:
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        self.wall.append(time.perf_counter() - self._wall)
        self.cpu.append(time.process_time() - self._cpu)


class EpochLog(Callback):
    """One progress line per epoch on stderr, named after the training (workers run in parallel)."""

    def __init__(self, name: str, epochs: int, clock: EpochClock) -> None:
        self.name, self.epochs, self.clock = name, epochs, clock

    def on_train_begin(self, logs: dict) -> None:
        log(f"{self.name}: before training  loss {logs['loss']:.4f}  accuracy {logs['accuracy']:.4f}")

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        scores = "  ".join(f"{k} {v:.4f}" for k, v in logs.items() if isinstance(v, float))
        wall, cpu = self.clock.wall[-1], self.clock.cpu[-1]
        log(f"{self.name}: epoch {epoch}/{self.epochs}  {wall:.1f} s (CPU {cpu:.1f} s)  {scores}")

    def on_train_end(self, logs: dict) -> None:
        if self.history.stop_reason:
            log(f"{self.name}: {self.history.stop_reason}")


# ---- one training (a top-level function, so worker processes can run it) ------------------------
def train_one(model: str, seed: int, cfg: dict, data_seed: int, checkpoint_dir: str) -> dict:
    """Train one model, keep its best weights (checkpoint file), score them on the test set.

    Returns a JSON-able dict: history, best epoch, per-epoch times (wall and CPU), the test loss,
    accuracy and predictions, the parameter count and the model summary.
    """
    data = prepared_data(data_seed, cfg["n_train"], cfg["n_val"])
    shape = INPUT_SHAPE[model]
    X, X_val, X_test = (data[k].reshape(-1, *shape) for k in ("X_train", "X_val", "X_test"))
    net = build_model(model, cfg, seed)
    name = f"{model}-seed{seed}"
    folder = Path(checkpoint_dir)
    folder.mkdir(parents=True, exist_ok=True)
    checkpoint = folder / f"{name}.npz"
    optimizer = Adam(net.parameters(), lr=cfg["lr"])
    decay, clock = ExponentialDecay(optimizer, cfg["lr_decay"]), EpochClock()
    callbacks = [
        decay,
        EarlyStopping(cfg["monitor"], patience=cfg["patience"], restore_best_weights=True),
        ModelCheckpoint(checkpoint, cfg["monitor"], save_best_only=True),
        HistoryCheckpoint(folder / f"{name}.history.json"),
        clock,  # after the callbacks that copy and save weights: their time counts too
        EpochLog(name, cfg["max_epochs"], clock),
    ]
    wall, cpu = time.perf_counter(), time.process_time()
    with sigterm_as_interrupt():
        history = fit(
            net,
            X,
            data["y_train"],
            loss=SoftmaxCrossEntropy(),
            optimizer=optimizer,
            epochs=cfg["max_epochs"],
            batch_size=cfg["batch_size"],
            validation_data=(X_val, data["y_val"]),
            callbacks=callbacks,
            rng=seed + 10_000,  # the order of examples: its own stream, independent of the weights
            verbose=0,
            eval_batch_size=EVAL_CHUNK,
        )
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    # The test set is used once, by the weights ModelCheckpoint saved: loaded back from the file.
    net.load(checkpoint)
    info = read_checkpoint_info(checkpoint)
    logits = predict(net, X_test, batch_size=EVAL_CHUNK)
    record = history.to_dict()
    del record["step_loss"]  # one loss per update: long, and not used here
    return {
        "model": model,
        "seed": seed,
        "history": record["history"],
        "best_epoch": info["best_epoch"],
        "stop_reason": history.stop_reason,
        "epochs_run": len(history.epoch) - 1,
        "lr": decay.lrs,
        "train_pass_seconds": history.epoch_time,  # the updates only (wall)
        "epoch_wall_seconds": clock.wall,  # updates + scoring + checkpoints
        "epoch_cpu_seconds": clock.cpu,
        "fit_wall_seconds": wall,
        "fit_cpu_seconds": cpu,
        "test_loss": SoftmaxCrossEntropy().forward(logits, data["y_test"]),
        "test_accuracy": float(np.mean(logits.argmax(axis=1) == data["y_test"])),
        "test_pred": logits.argmax(axis=1).tolist(),
        "n_parameters": net.n_parameters(),
        "summary": net.summary(shape),
        "normalisation": {"mean": data["mean"], "std": data["std"]},
    }


# ---- the study ----------------------------------------------------------------------------------
class LoadSampler:
    """Samples the 1-minute load average every ``interval`` seconds in a background thread."""

    def __init__(self, interval: float = 10.0) -> None:
        self.interval, self.samples = interval, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            with contextlib.suppress(OSError):
                self.samples.append(os.getloadavg()[0])
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and of its finished child processes."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _worker_signals() -> None:
    """Start-up of every worker process: ignore Ctrl-C (SIGINT) and SIGTERM while idle. Only the
    main process reacts to them; it then sends SIGTERM to the workers, which ``fit`` (inside
    ``sigterm_as_interrupt``) turns into a clean stop, and an idle worker simply ignores."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def run_trainings(tasks: dict, out: Path, workers: int | None, checkpoint_dir: Path):
    """``run_sweep`` over the tasks, in our own process pool (one BLAS
    thread per worker, as run_sweep's own), so that a Ctrl-C or ``kill`` of this process can be
    passed on to the workers: each then stops its training cleanly (best weights restored and
    saved, history written) instead of finishing it, and the pool shuts down normally."""
    fn = functools.partial(train_one, checkpoint_dir=str(checkpoint_dir.resolve()))
    workers = max(1, min(workers or default_workers(), len(tasks)))  # one worker too: the same bits
    pool = process_pool(workers, initializer=_worker_signals)
    try:
        with sigterm_as_interrupt():
            return run_sweep(fn, tasks, out / "runs", executor=pool)
    except KeyboardInterrupt:
        log(f"{NAME}: interrupted; stopping the workers (best weights so far are in {checkpoint_dir})")
        for child in multiprocessing.active_children():
            child.terminate()  # SIGTERM: a running fit stops cleanly; an idle worker ignores it
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def run(args: argparse.Namespace, cfg: dict) -> None:
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    wall, cpu = time.perf_counter(), cpu_seconds()
    # The CNN first: the longest training starts at once, the MLP seeds share the other worker.
    tasks = {
        f"{model}-seed{seed}": {"model": model, "seed": seed, "cfg": cfg, "data_seed": args.data_seed}
        for model in ("cnn", "mlp")
        for seed in range(cfg["seeds"][model])
    }
    log(f"{NAME}: {len(tasks)} trainings ({', '.join(tasks)}), at most {cfg['max_epochs']} epochs each")
    with LoadSampler() as load:
        sweep = run_trainings(tasks, out, args.workers, out / "checkpoints")
    sweep.raise_if_failed()
    runs = sweep.results
    data = prepared_data(args.data_seed, cfg["n_train"], cfg["n_val"])
    save_npz(
        out / "results.npz",
        {
            "y_test": data["y_test"],
            **{f"pred_{key}": np.asarray(r.pop("test_pred"), dtype=np.int64) for key, r in runs.items()},
            "example_image": data["images_test"][EXAMPLE_INDEX],
            "example_label": np.int64(data["y_test"][EXAMPLE_INDEX]),
        },
    )
    write_json(
        out / "results.json",
        {
            "quick": args.quick,
            "data_seed": args.data_seed,
            "config": cfg,
            "n_train": len(data["y_train"]),
            "n_val": len(data["y_val"]),
            "normalisation": {"mean": data["mean"], "std": data["std"]},
            "runs": runs,
            "resumed": sweep.resumed,
            "workers": min(args.workers or default_workers(), len(tasks)),
            "wall_seconds": time.perf_counter() - wall,
            "cpu_seconds": cpu_seconds() - cpu,
            "load_average": load.samples,
            "cores": os.cpu_count(),
        },
    )
    log(f"{NAME}: trained in {time.perf_counter() - wall:.0f} s; results in {out}")


# ---- figures and report, from the saved results -------------------------------------------------
def _best(run: dict, key: str) -> float:
    return run["history"][key][run["best_epoch"]]


def _mean_std(values: list[float]) -> tuple[float, float]:
    return float(np.mean(values)), float(np.std(values))


def _chosen(runs: list[dict], monitor: str) -> dict:
    """The seed a practitioner would keep: the best monitored validation score at its best epoch."""
    return (
        min(runs, key=lambda r: _best(r, monitor))
        if monitor.endswith("loss")
        else max(runs, key=lambda r: _best(r, monitor))
    )


def curves_figure(groups: dict[str, list[dict]], path: Path) -> None:
    """Loss and accuracy per epoch, both models: train dashed, validation solid; the MLP as the
    mean +- std over its seeds. Epoch 0 (before training) is left out: it would squash the rest."""
    fig = plots.new_figure(13, 4.8)
    axes = fig.subplots(1, 2)
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for model, runs in groups.items():
            n = len(runs)
            for key, style, split in ((metric, "--", "train"), (f"val_{metric}", "-", "validation")):
                mean, std, _ = plots.mean_std([r["history"] for r in runs], key)
                x = np.arange(len(mean))[1:]
                label = f"{LABELS[model]} {split}" + (f" (mean ± std, {n} seeds)" if n > 1 else " (1 seed)")
                ax.plot(x, mean[1:], style, color=COLORS[model], lw=2, label=label)
                if n > 1:
                    ax.fill_between(
                        x, (mean - std)[1:], (mean + std)[1:], color=COLORS[model], alpha=0.25, lw=0
                    )
            if n == 1:
                best = runs[0]["best_epoch"]
                ax.plot(
                    best, runs[0]["history"][f"val_{metric}"][best], "*", color=COLORS[model], ms=14,
                    mec="black", label=f"{LABELS[model]} weights kept (epoch {best})",
                )  # fmt: skip
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(f"{metric.capitalize()} on the training and validation sets")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize=9, frameon=False)
    fig.suptitle("MLP vs CNN: learning curves (scored in eval mode after each epoch)")
    plots.save_figure(fig, path)


def confusion_figure(cms: dict[str, np.ndarray], titles: dict[str, str], path: Path) -> None:
    """Row-normalised test confusion matrices of both models, and their difference."""
    fig = plots.new_figure(21, 6.6)
    axes = fig.subplots(1, 3)
    for ax, model in zip(axes, MODELS, strict=False):
        plots.confusion_matrix_plot(cms[model], CLASS_NAMES, normalize="true", ax=ax, title=titles[model])
    diff = _row_fractions(cms["cnn"]) - _row_fractions(cms["mlp"])
    ax = axes[2]
    vmax = max(0.01, float(np.abs(diff).max()))
    im = ax.imshow(diff, cmap=plots.DIVERGING_CMAP, vmin=-vmax, vmax=vmax, interpolation="nearest")
    for i in range(10):
        for j in range(10):
            if round(diff[i, j], 2) != 0:
                dark = abs(diff[i, j]) > 0.6 * vmax
                color = "white" if dark else "black"
                ax.text(j, i, f"{diff[i, j]:+.2f}", ha="center", va="center", fontsize=8, color=color)
    ax.set_xticks(range(10), labels=CLASS_NAMES, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(10), labels=CLASS_NAMES)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("CNN minus MLP (diagonal red = CNN better,\noff-diagonal blue = CNN confuses less)")
    fig.colorbar(im, ax=ax, shrink=0.8).set_label("difference of fractions of the true class")
    fig.suptitle("Test-set confusion matrices, row-normalised (diagonal = recall)")
    plots.save_figure(fig, path)


def _row_fractions(cm: np.ndarray) -> np.ndarray:
    return cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)


def filters_figure(W: np.ndarray, path: Path) -> None:
    """The CNN's 32 first-layer 3x3 kernels, one symmetric diverging colour scale."""
    n = W.shape[0]
    plots.weight_images(
        W.reshape(n, -1).T,  # (9, 32): column k is filter k unrolled
        [f"filter {k + 1}" for k in range(n)],
        shape=W.shape[2:],
        ncols=8,
        path=path,
        title="CNN first layer: the 32 learned 3x3 filters (red > 0, blue < 0, white 0; one scale for all)",
    )


def feature_maps_figure(
    image: np.ndarray, label: int, W: np.ndarray, b: np.ndarray, norm: dict, path: Path
) -> None:
    """One test image and what the first layer makes of it: ReLU(conv(image, filter k)), k = 1..32."""
    conv = Conv2D(1, W.shape[0], W.shape[2:], padding=1, rng=0)
    conv.W.value[...], conv.b.value[...] = W, b
    x = ((image.astype(np.float32) / 255 - norm["mean"]) / norm["std"]).astype(np.float32)
    maps = np.maximum(conv.forward(x.reshape(1, 1, 28, 28))[0], 0)  # (32, 28, 28)
    fig = plots.new_figure(16, 7.2)
    left, right = fig.subfigures(1, 2, width_ratios=[1, 4.2])
    ax = left.add_subplot()
    ax.imshow(image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"input: test image {EXAMPLE_INDEX}\n({CLASS_NAMES[label]})")
    axes = right.subplots(4, 8)
    vmax = float(maps.max()) or 1.0
    for k, ax in enumerate(axes.ravel()):
        im = ax.imshow(maps[k], cmap="magma", vmin=0, vmax=vmax, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"filter {k + 1}", fontsize=9)
    right.colorbar(im, ax=axes, shrink=0.8).set_label("activation after ReLU")
    fig.suptitle("What the first layer sees: the 32 feature maps of one image (one colour scale for all)")
    plots.save_figure(fig, path)


SOBEL = {  # 3x3 edge detectors; as cross-correlation kernels, positive where the top (left) is bright
    "horizontal": np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]], dtype=float),
    "vertical": np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], dtype=float),
}


def edge_filters(W: np.ndarray) -> dict:
    """For each Sobel edge direction, the learned first-layer filter most like it (or its negative):
    its number (from 1), the cosine between the two kernels, and which side it wants bright."""
    F = W[:, 0].reshape(len(W), -1).astype(float)
    F /= np.linalg.norm(F, axis=1, keepdims=True)
    found = {}
    for name, K in SOBEL.items():
        cos = F @ (K.ravel() / np.linalg.norm(K))
        k = int(np.argmax(np.abs(cos)))
        first, second = ("top", "bottom") if name == "horizontal" else ("left", "right")
        bright, dark = (first, second) if cos[k] > 0 else (second, first)
        found[name] = {"filter": k + 1, "cosine": float(abs(cos[k])), "bright": bright, "dark": dark}
    return found


def plot(out: Path) -> dict:
    """Draw every figure and write metrics.json and report.md from results.json, results.npz and
    the CNN's checkpoint."""
    out = Path(out)
    if not (out / "results.json").exists() or not (out / "results.npz").exists():
        sys.exit(f"no results in {out}: run without --plot-only first")
    R = read_json(out / "results.json")
    npz = load_npz(out / "results.npz")
    cfg, y_test = R["config"], npz["y_test"]
    groups = {m: [r for r in R["runs"].values() if r["model"] == m] for m in MODELS}
    for runs in groups.values():
        runs.sort(key=lambda r: r["seed"])
    chosen = {m: _chosen(groups[m], cfg["monitor"]) for m in MODELS}
    pred = {m: npz[f"pred_{m}-seed{chosen[m]['seed']}"] for m in MODELS}
    figs: dict[str, str] = {}

    curves_figure(groups, out / "curves.png")
    figs["curves"] = (
        "Learning curves: training (dashed) and validation (solid) loss and accuracy per epoch; "
        "the star marks the CNN epoch whose weights were kept."
    )
    cms = {m: metrics.confusion_matrix(y_test, pred[m], 10) for m in MODELS}
    titles = {
        m: f"{LABELS[m]} (seed {chosen[m]['seed']}), test accuracy {np.mean(pred[m] == y_test):.4f}"
        for m in MODELS
    }
    confusion_figure(cms, titles, out / "confusion.png")
    figs["confusion"] = (
        "Test-set confusion matrices (row-normalised) of the MLP, the CNN, and their difference."
    )
    recall = {m: metrics.per_class_accuracy(y_test, pred[m], 10) for m in MODELS}
    plots.bar_compare(
        list(CLASS_NAMES),
        {f"{LABELS[m]} (seed {chosen[m]['seed']})": recall[m] for m in MODELS},
        ylabel="fraction of the class classified correctly",
        title="Per-class test accuracy (recall), MLP vs CNN",
        path=out / "per_class.png",
    )
    figs["per_class"] = "Per-class test accuracy (recall) of both models."
    weights = load_npz(out / "checkpoints" / f"cnn-seed{chosen['cnn']['seed']}.npz")
    filters_figure(weights["0.W"], out / "filters.png")
    figs["filters"] = "The CNN's 32 first-layer filters, on one symmetric colour scale."
    feature_maps_figure(
        npz["example_image"],
        int(npz["example_label"]),
        weights["0.W"],
        weights["0.b"],
        R["normalisation"],
        out / "feature_maps.png",
    )
    figs["feature_maps"] = "One test image and its 32 first-layer feature maps (after ReLU)."

    M = _metrics(R, groups, chosen, pred, cms, recall, y_test)
    M["edge_filters"] = edge_filters(weights["0.W"])
    write_json(out / "metrics.json", M)
    write_text(out / "report.md", _report(R, M, groups, figs))
    return M


def _model_metrics(runs: list[dict], chosen: dict, pred: np.ndarray, y_test: np.ndarray) -> dict:
    def both(key: str) -> dict:
        values = [_best(r, key) for r in runs]
        mean, std = _mean_std(values)
        return {"chosen": _best(chosen, key), "mean": mean, "std": std, "per_seed": values}

    epoch_wall = [w for r in runs for w in r["epoch_wall_seconds"]]
    epoch_cpu = [c for r in runs for c in r["epoch_cpu_seconds"]]
    train_pass = [t for r in runs for t in r["train_pass_seconds"]]
    test_acc = [r["test_accuracy"] for r in runs]
    test_loss = [r["test_loss"] for r in runs]
    return {
        "seeds": [r["seed"] for r in runs],
        "chosen_seed": chosen["seed"],
        "n_parameters": chosen["n_parameters"],
        "summary": chosen["summary"],
        "epochs_run": [r["epochs_run"] for r in runs],
        "best_epoch": [r["best_epoch"] for r in runs],
        "stop_reason": [r["stop_reason"] for r in runs],
        "train_loss": both("loss"),
        "train_accuracy": both("accuracy"),
        "val_loss": both("val_loss"),
        "val_accuracy": both("val_accuracy"),
        "test_loss": {
            "chosen": chosen["test_loss"],
            "mean": _mean_std(test_loss)[0],
            "std": _mean_std(test_loss)[1],
            "per_seed": test_loss,
        },
        "test_accuracy": {
            "chosen": float(np.mean(pred == y_test)),
            "mean": _mean_std(test_acc)[0],
            "std": _mean_std(test_acc)[1],
            "per_seed": test_acc,
        },
        "initial_loss": [r["history"]["loss"][0] for r in runs],
        "val_accuracy_curves": [r["history"]["val_accuracy"] for r in runs],
        "seconds_per_epoch": {
            "train_pass_wall": float(np.mean(train_pass)),
            "epoch_wall": float(np.mean(epoch_wall)),
            "epoch_cpu": float(np.mean(epoch_cpu)),
        },
        "fit_wall_seconds": [r["fit_wall_seconds"] for r in runs],
        "fit_cpu_seconds": [r["fit_cpu_seconds"] for r in runs],
    }


def _metrics(R, groups, chosen, pred, cms, recall, y_test) -> dict:
    models = {m: _model_metrics(groups[m], chosen[m], pred[m], y_test) for m in MODELS}
    stat, p, b, c = metrics.mcnemar(pred["mlp"] == y_test, pred["cnn"] == y_test)
    load = R["load_average"]
    return {
        "test_accuracy": models["cnn"]["test_accuracy"]["chosen"],  # the final model: the CNN
        "final_model": f"cnn-seed{chosen['cnn']['seed']}",
        "models": models,
        "per_class_accuracy": {m: dict(zip(CLASS_NAMES, recall[m].tolist(), strict=True)) for m in MODELS},
        "confusion_matrix": {m: cms[m] for m in MODELS},
        "most_confused": {
            m: metrics.most_confused_pairs(cms[m], k=5, class_names=list(CLASS_NAMES)) for m in MODELS
        },
        "mcnemar": {"statistic": stat, "p_value": p, "only_mlp_right": b, "only_cnn_right": c},
        "hyperparameters": R["config"],
        "normalisation": R["normalisation"],
        "run": {
            "wall_seconds": R["wall_seconds"],
            "cpu_seconds": R["cpu_seconds"],
            "workers": R["workers"],
            "cores": R["cores"],
            "load_average_mean": float(np.mean(load)) if load else None,
            "load_average_max": float(np.max(load)) if load else None,
            "resumed": R["resumed"],
        },
        "n_test": len(y_test),
        "quick": R["quick"],
    }


def _pm(d: dict, digits: int = 4) -> str:
    return f"{d['mean']:.{digits}f} ± {d['std']:.{digits}f}"


def _report(R: dict, M: dict, groups: dict, figs: dict) -> str:
    cfg, mlp, cnn = R["config"], M["models"]["mlp"], M["models"]["cnn"]
    n_mlp, n_cnn = len(mlp["seeds"]), len(cnn["seeds"])

    def fig(name: str) -> str:
        return f"![{figs[name]}]({name}.png)\n\n*{figs[name]}*"

    quick = (
        "\n> **Quick smoke run** (`--quick`): a small subset and two epochs; the numbers below are not the study's.\n"
        if R["quick"]
        else ""
    )
    rows = []
    if n_mlp > 1:
        rows.append([f"MLP, mean ± std over {n_mlp} seeds"] + [_pm(mlp[k]) for k in SCORE_KEYS])
    for model, m in (("mlp", mlp), ("cnn", cnn)):
        rows.append(
            [
                f"{LABELS[model]}, seed {m['chosen_seed']}"
                + (" (lowest validation loss)" if len(m["seeds"]) > 1 else "")
            ]
            + [m[k]["chosen"] for k in SCORE_KEYS]
        )
    score_table = md_table(
        [
            "model",
            "train loss",
            "train accuracy",
            "validation loss",
            "validation accuracy",
            "test loss",
            "test accuracy",
        ],
        rows,
    )
    cost_rows = []
    for model, m in (("mlp", mlp), ("cnn", cnn)):
        s = m["seconds_per_epoch"]
        cost_rows.append(
            [
                LABELS[model],
                f"{m['n_parameters']:,}",
                ", ".join(map(str, m["epochs_run"])),
                ", ".join(map(str, m["best_epoch"])),
                s["train_pass_wall"],
                s["epoch_wall"],
                s["epoch_cpu"],
                float(np.mean(m["fit_cpu_seconds"])),
            ]
        )
    cost_table = md_table(
        [
            "model",
            "parameters",
            "epochs run (per seed)",
            "best epoch (per seed)",
            "updates s/epoch (wall)",
            "whole epoch s (wall)",
            "whole epoch s (CPU)",
            "CPU s per training",
        ],
        cost_rows,
        digits=1,
    )
    t_mlp, t_cnn = mlp["test_accuracy"]["chosen"], cnn["test_accuracy"]["chosen"]
    gap = t_cnn - t_mlp
    mc = M["mcnemar"]
    better = "CNN" if gap > 0 else "MLP"
    significance = (
        f"McNemar's test on the {M['n_test']} test images: {mc['only_cnn_right']} images only the CNN gets right, "
        f"{mc['only_mlp_right']} only the MLP, p = {mc['p_value']:.2g}"
        + (
            " — far too lopsided to be luck."
            if mc["p_value"] < 1e-3
            else " (a small p means the difference is not luck)."
        )
    )
    seed_spread = (
        f" The MLP's test accuracy varies by only ±{mlp['test_accuracy']['std']:.4f} (std) from seed to seed, "
        f"so a gap of {abs(gap):.4f} is not a lucky seed."
        if n_mlp > 1
        else ""
    )
    ratio_cpu = cnn["seconds_per_epoch"]["epoch_cpu"] / mlp["seconds_per_epoch"]["epoch_cpu"]
    pc = M["per_class_accuracy"]
    gains = sorted(CLASS_NAMES, key=lambda c: pc["cnn"][c] - pc["mlp"][c], reverse=True)
    gain_text = ", ".join(f"{c} {pc['mlp'][c]:.3f} -> {pc['cnn'][c]:.3f}" for c in gains[:3])
    worst = min(CLASS_NAMES, key=lambda c: pc["cnn"][c])
    cm_mlp, index = M["confusion_matrix"]["mlp"], {name: k for k, name in enumerate(CLASS_NAMES)}
    confused = "\n".join(
        f"- true **{t}** predicted as **{p}**: {n} times (MLP: {cm_mlp[index[t]][index[p]]})"
        for t, p, n in M["most_confused"]["cnn"]
    )
    gen_gap = {
        m: M["models"][m]["train_accuracy"]["chosen"] - M["models"][m]["val_accuracy"]["chosen"]
        for m in MODELS
    }
    run = M["run"]
    load = (
        f"1-minute load average was {run['load_average_mean']:.1f} on average (max {run['load_average_max']:.1f}) "
        f"on {run['cores']} cores"
        if run["load_average_mean"] is not None
        else "load is unknown"
    )
    init = mlp["initial_loss"] + cnn["initial_loss"]
    norm = R["normalisation"]
    n_seeds_text = (
        f"The MLP trains in seconds per epoch, so it ran with {n_mlp} seeds (weights and example order); the CNN costs "
        f"{ratio_cpu:.0f}x more per epoch and ran with {n_cnn} seed{'s' if n_cnn > 1 else ''}"
        + (
            " only: its numbers carry the seed-to-seed spread of one run, which for the MLP is the std shown."
            if n_cnn == 1
            else "."
        )
    )
    return f"""# MLP vs CNN on Fashion-MNIST
{quick}
**Answer: the {better} is better. Test accuracy {t_cnn:.4f} for the CNN vs {t_mlp:.4f} for the MLP,
{abs(gap) * 100:.1f} points {"more" if gap > 0 else "less"} for the CNN, with about the same number of weights
({cnn["n_parameters"]:,} vs {mlp["n_parameters"]:,}).** {significance}{seed_spread}

Everything below was measured by this run ({R["n_train"]} training, {
        R["n_val"]
    } validation and 10000 test images).

## The two models

Both have about 410,000 weights, so the comparison is about *how* they are arranged, not how many:

```
{mlp["summary"]}
```

```
{cnn["summary"]}
```

The MLP connects every pixel to each of its 512 hidden units: to recognise a pattern (an edge, a
collar, a strap) it must learn it separately at every position where it can appear. The CNN's
first two layers slide small filters over the image: the **same** 3x3 weights are used at every
position (weight sharing), each output looks only at a neighbourhood (local connectivity), and
max-pooling keeps the strongest response in each 2x2 window, so a small shift of the input
changes little. The conv layers hold only {320 + 18496:,} weights; almost all of the CNN's weights
are in the dense layer that combines the 64 feature maps of 7x7.

**Training, identical for both**: softmax cross-entropy on the logits, Adam with learning rate
{cfg["lr"]:g} multiplied by {cfg["lr_decay"]:g} after every epoch (large steps first, smaller ones
to settle), mini-batches of {cfg["batch_size"]}, Dropout({cfg["dropout"]:g}) before the last layer, at most
{cfg["max_epochs"]} epochs, `EarlyStopping("{cfg["monitor"]}", patience={
        cfg["patience"]
    }, restore_best_weights=True)`
and `ModelCheckpoint` of the best weights; the test scores come from the weights reloaded from that
checkpoint. Before training the loss is {min(init):.3f}-{max(init):.3f}: a little above ln 10 = 2.303, the
loss of a uniform guess, because the random initial logits are not all equal.
{n_seeds_text}

**Data**: the official 60000 training images split stratified into training and validation
(seed {R["data_seed"]}); the 10000 test images are used once, by the kept weights. Pixels are scaled to
[0, 1] and then standardised with **one** mean ({norm["mean"]:.4f}) and **one** standard deviation
({norm["std"]:.4f}) measured on the training images, for both models (the CNN sees each row of
784 as a 1x28x28 image). Not per pixel: a convolution applies the same filter at every position,
so every position should be on the same scale, and per-pixel statistics would blow up the border
pixels that are almost always black.

{md_table(["class", "train", "validation", "test"], _class_rows(R))}

## Scores

Train and validation scores are those of the kept epoch, measured in eval mode (no dropout) on the
whole sets; test scores are from the kept weights.

{score_table}

{fig("curves")}

{_generalisation_text(gen_gap, M, R["n_train"])} {_budget_text(M, cfg)}

## Where the two models differ

{fig("confusion")}

{fig("per_class")}

The largest per-class gains of the CNN over the MLP (recall, MLP -> CNN): {gain_text}. The CNN's
hardest class is **{worst}** ({pc["cnn"][worst]:.3f}). Its most frequent confusions (true -> predicted):

{confused}

Shirts, T-shirts, pullovers and coats share one silhouette; telling them apart needs local details
(a collar, buttons, a zip, the texture of knitwear){
        ", which is what small shared filters capture" if gap > 0 else ""
    }.

## What the first layer learned

{fig("filters")}

{fig("feature_maps")}

Each 3x3 filter is a tiny pattern detector: filters with red on one side and blue on the other
respond to edges of one orientation (bright on one side, dark on the other), others to bright
or dark spots or lines. {
        _edge_text(M["edge_filters"])
    } The feature maps show the same image through each filter after ReLU:
some light up the outline, some only its top or left edges, some the flat bright areas, some the
black background. The thin frame around some maps comes from the zero padding: after
standardisation a black pixel is {-norm["mean"] / norm["std"]:.2f}, so the padded zeros look to
the filters like a faint bright border. The second conv layer combines these maps into larger patterns.

## Cost

{cost_table}

"updates" is the training pass alone; a "whole epoch" also scores the whole training and
validation sets (needed for the curves and for early stopping) and saves checkpoints. Each
training ran in its own process with one BLAS thread, so its CPU time is what it would take on an
idle core; the wall times also contain the waiting on this shared machine. The CNN costs
{ratio_cpu:.0f}x more CPU per epoch than the MLP for the same number of weights: each of its conv
weights is used at every one of 784 or 196 positions of every image, while each MLP weight is used
once per image.

The whole run (`python -m experiments.cnn{" --quick" if R["quick"] else ""}`, {
        run["workers"]
    } worker processes) took
**{_duration(run["wall_seconds"])}** of wall time and {_duration(run["cpu_seconds"])} of CPU time, while the
machine's {load}. {_idle_estimate(M)}

---
Reproduce: `python -m experiments.cnn{
        " --quick" if R["quick"] else ""
    }`; redraw from saved results with `--plot-only`.
"""


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} minutes"


def _idle_estimate(M: dict) -> str:
    """How long the trainings would take with one idle core per worker, from their CPU times."""
    cpu = {m: sum(M["models"][m]["fit_cpu_seconds"]) for m in MODELS}
    if M["run"]["workers"] < 2:
        return (
            f"On an idle core the trainings would take about {_duration(sum(cpu.values()))} (their CPU time)."
        )
    longest = max(MODELS, key=lambda m: cpu[m])
    other = next(m for m in MODELS if m != longest)
    return (
        f"With an idle core per worker the trainings would take about {_duration(cpu[longest])}, the "
        f"{LABELS[longest]}'s CPU time, since the {LABELS[other]} trainings ({_duration(cpu[other])} of CPU in "
        "all) run alongside on the other core; add a few seconds to start and to draw."
    )


def _edge_text(edges: dict) -> str:
    """The learned filters closest to the two Sobel edge detectors, in words."""
    h, v = edges["horizontal"], edges["vertical"]
    return (
        f"Measured against the classic Sobel edge detectors: filter {h['filter']} is the closest to a "
        f"horizontal-edge detector (cosine {h['cosine']:.2f}; it fires where the {h['bright']} of a patch is "
        f"bright and the {h['dark']} dark), filter {v['filter']} to a vertical one (cosine {v['cosine']:.2f}; "
        f"bright {v['bright']}, dark {v['dark']}); compare their maps below."
    )


def _budget_text(M: dict, cfg: dict) -> str:
    """Did a model run into the epoch limit while still improving, and how much was it gaining?"""
    parts, gain = [], {}
    gap = M["models"]["cnn"]["val_accuracy"]["chosen"] - M["models"]["mlp"]["val_accuracy"]["chosen"]
    for m in MODELS:
        mm = M["models"][m]
        # still improving: the run's best (monitored) epoch is its last one, the epoch limit
        runs = zip(mm["epochs_run"], mm["best_epoch"], mm["val_accuracy_curves"], strict=True)
        improving = [curve for run, best, curve in runs if run == best == cfg["max_epochs"]]
        if cfg["max_epochs"] < 4:
            continue
        if not improving:
            late = [
                b for b, e in zip(mm["best_epoch"], mm["epochs_run"], strict=True) if e == cfg["max_epochs"]
            ]
            if late:
                parts.append(
                    f"The {LABELS[m]} had stopped improving before the epoch limit: its validation loss "
                    f"was lowest at epoch {', '.join(map(str, late))} of {cfg['max_epochs']}."
                )
            continue
        gain[m] = float(np.mean([curve[-1] - curve[-4] for curve in improving]))
        parts.append(
            f"The {LABELS[m]} ran into the {cfg['max_epochs']}-epoch limit while still improving "
            f"({len(improving)} of {len(mm['seeds'])} run{'s' if len(mm['seeds']) > 1 else ''} had their best "
            f"validation loss at the last epoch), but slowly: {gain[m] * 100:+.2f} points of validation "
            "accuracy over the last three epochs."
        )
        if m == "mlp" and gap > 0 and gain[m] < gap / 3:
            parts.append(
                f"At that pace, with a learning rate that keeps shrinking, more epochs would not make up "
                f"the {gap * 100:.1f} points of validation accuracy between the two models."
            )
        elif m == "mlp":
            parts.append("More epochs could still change the comparison: the epoch budget limits it.")
    return " ".join(parts) if parts else "Early stopping ended every training before the epoch limit."


def _generalisation_text(gen_gap: dict, M: dict, n_train: int) -> str:
    """What the gap between training and validation accuracy says, for this run's numbers."""
    val = {m: M["models"][m]["val_accuracy"]["chosen"] for m in MODELS}
    train = {m: M["models"][m]["train_accuracy"]["chosen"] for m in MODELS}
    text = (
        f"At the kept epoch, training accuracy is {gen_gap['mlp'] * 100:.1f} points above validation "
        f"accuracy for the MLP and {gen_gap['cnn'] * 100:.1f} points for the CNN."
    )
    if val["cnn"] <= val["mlp"]:
        return text
    fits = (
        "fits its training set better"
        if train["cnn"] > train["mlp"]
        else "fits its training set less closely"
    )
    if gen_gap["cnn"] < gen_gap["mlp"]:
        text += (
            f" The CNN {fits} *and* loses less of it on new images (the smaller gap): its advantage is "
            "not memorisation."
        )
    else:
        text += f" The CNN {fits}, and its gap is not smaller: part of its advantage is a closer fit."
    return text + (
        " Its built-in assumptions (a pattern means the same thing anywhere, nearby pixels belong "
        "together) are a prior that the MLP would have to learn from the data, and "
        f"{n_train} images are not enough for it to learn them as well as the CNN is given them."
    )


def _class_rows(R: dict) -> list:
    data = split_data(seed=R["data_seed"], normalisation="raw")
    rows = class_counts(data.y_train, data.y_val, data.y_test)
    if R["n_train"] != len(data.y_train) or R["n_val"] != len(data.y_val):  # a --quick subset
        rows[-1] = ["total (this run used a subset)", R["n_train"], R["n_val"], 10000]
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = make_parser(NAME, __doc__.split("\n")[0])
    parser.add_argument(
        "--epochs",
        type=int,
        default=argparse.SUPPRESS,  # no "(default: None)" in --help
        help=f"maximum epochs per training ({FULL['max_epochs']}; {QUICK['max_epochs']} with --quick)",
    )
    args = parser.parse_args(argv)
    cfg = dict(QUICK if args.quick else FULL)
    if getattr(args, "epochs", None):
        cfg["max_epochs"] = args.epochs
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.plot_only:
        try:
            run(args, cfg)
        except KeyboardInterrupt:
            log(
                f"{NAME}: stopped. Finished trainings are kept in {args.out / 'runs'}: the same command resumes."
            )
            sys.exit(130)
    log("drawing figures and writing the report")
    M = plot(args.out)
    rows = []
    for model in MODELS:
        m = M["models"][model]
        rows.append(
            [
                f"{LABELS[model]} seed {m['chosen_seed']}",
                f"{m['n_parameters']:,}",
                m["best_epoch"][m["seeds"].index(m["chosen_seed"])],
                m["seconds_per_epoch"]["epoch_wall"],
                m["seconds_per_epoch"]["epoch_cpu"],
                m["train_accuracy"]["chosen"],
                m["val_accuracy"]["chosen"],
                m["test_accuracy"]["chosen"],
            ]
        )
    print(
        md_table(
            [
                "model",
                "parameters",
                "best epoch",
                "s/epoch (wall)",
                "s/epoch (CPU)",
                "train acc.",
                "val. acc.",
                "test acc.",
            ],
            rows,
        )
    )
    print(
        f"\nfinal model: CNN, test accuracy {M['test_accuracy']:.4f}; run took {fmt(M['run']['wall_seconds'] / 60, 1)} min "
        f"(CPU {fmt(M['run']['cpu_seconds'] / 60, 1)} min)"
    )
    print(f"figures, metrics.json and report.md in {args.out}/")
    return M


if __name__ == "__main__":
    main()
