"""A multiclass network trained the Keras way: validation set, early stopping, best-model checkpoint.

The lab: train a network on the ten Fashion-MNIST classes with a validation set, for at most 50
epochs, stopping early when the validation score stops improving and keeping the best model in a
checkpoint file; then read its learning curves, its test accuracy and its confusion matrix. Which
classes does it mix up, and what do those images look like?

    python -m experiments.multiclass [--out DIR] [--quick] [--plot-only] [--seed S]

``run`` trains one network and saves into DIR (every file written atomically):
    best.npz        the best weights so far (ModelCheckpoint), with their epoch and score
    history.json    the training history (HistoryCheckpoint), rewritten after every epoch
    results.npz     the test labels, the test logits of the best weights, the misclassified images
    run.json        settings, data sizes, epochs, timings, the model summary
``plot`` reads only those files and draws curves.png, confusion.png and confused_pairs.png, then
writes metrics.json and report.md.

Training: Adam on mini-batches with EarlyStopping (restoring the best weights), ModelCheckpoint,
HistoryCheckpoint and ReduceLROnPlateau, wrapped in ``sigterm_as_interrupt()``: Ctrl-C or ``kill`` stops it cleanly,
with the best weights in best.npz and the history so far in history.json.

experiments.binary reuses the pieces: ``Settings``, ``build_model``, ``load_data``, ``train``,
``EpochLog``, ``curves_figure`` and ``require``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from experiments._common import (
    CLASS_NAMES,
    Split,
    log,
    make_parser,
    md_table,
    read_json,
    run_and_plot,
    split_data,
    write_json,
    write_text,
)
from minidl import plots
from minidl.callbacks import (
    Callback,
    EarlyStopping,
    HistoryCheckpoint,
    ModelCheckpoint,
    ReduceLROnPlateau,
    read_checkpoint_info,
    sigterm_as_interrupt,
)
from minidl.layers import Dense, Dropout, ReLU
from minidl.losses import Loss, SoftmaxCrossEntropy
from minidl.metrics import classification_report, confusion_matrix, most_confused_pairs
from minidl.model import Sequential, load_npz, save_npz
from minidl.model_selection import stratified_subsample
from minidl.optim import Adam
from minidl.train import History, fit, predict

NAME = "multiclass"
DESCRIPTION = (
    "Train a 10-class network on Fashion-MNIST with a validation set, early stopping and a "
    "best-model checkpoint; report its curves, test accuracy and confusions. "
    "(One training: --workers has no effect here.)"
)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything that decides a training run (saved in run.json, part of a sweep task)."""

    hidden: int = 256  # units of the hidden layer: 784 -> hidden -> ReLU -> Dropout -> outputs
    dropout: float = 0.2  # probability of zeroing a hidden unit during training
    lr: float = 1e-3  # Adam's learning rate
    batch_size: int = 128
    max_epochs: int = 50
    patience: int = 5  # epochs without improvement of `monitor` before stopping
    monitor: str = "val_accuracy"  # what EarlyStopping and ModelCheckpoint watch
    lr_monitor: str = "val_loss"  # ReduceLROnPlateau: when this has not improved ...
    lr_patience: int = 2  # ... for this many epochs ...
    lr_factor: float = 0.5  # ... multiply the learning rate by this
    n_train: int | None = None  # stratified subsample of the training part (None: all 50000)
    n_val: int | None = None  # stratified subsample of the validation part (None: all 10000)


# Full settings, and the --quick smoke run (seconds, same code paths, meaningless numbers).
FULL = Settings()
QUICK = dataclasses.replace(FULL, max_epochs=3, patience=2, lr_patience=1, n_train=3000, n_val=1000)
VAL_SIZE = 10_000  # validation images taken (stratified) from the 60000 training images
SEED = 0  # the network's seed (weights, dropout masks, batch order)
TARGET_ACCURACY = 0.89  # the lab's goal for the test accuracy
N_PAIRS = 4  # most-confused class pairs shown as images
N_EXAMPLES = 8  # images per pair
TORSO = [0, 2, 3, 4, 6]  # T-shirt/top, Pullover, Dress, Coat, Shirt
FOOTWEAR = [5, 7, 9]  # Sandal, Sneaker, Ankle boot


# ---------------------------------------------------------------------------------------------
# Compute
# ---------------------------------------------------------------------------------------------


def load_data(settings: Settings, data_seed: int = 0) -> Split:
    """The stratified train/validation split of ``split_data`` (standardised with the training
    statistics), subsampled, stratified, when ``settings`` asks for it. Labels are the 10 classes;
    ``images_test`` are the raw uint8 test images."""
    split = split_data(VAL_SIZE, data_seed, "standardise")
    X_train, y_train, X_val, y_val = split.X_train, split.y_train, split.X_val, split.y_val
    if settings.n_train is not None:
        keep = stratified_subsample(y_train, settings.n_train, rng=data_seed)
        X_train, y_train = X_train[keep], y_train[keep]
    if settings.n_val is not None:
        keep = stratified_subsample(y_val, settings.n_val, rng=data_seed + 1)
        X_val, y_val = X_val[keep], y_val[keep]
    return dataclasses.replace(split, X_train=X_train, y_train=y_train, X_val=X_val, y_val=y_val)


def seeds(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Two independent generators from one seed: one for the model (weights and dropout masks),
    one for ``fit`` (the order of the examples in each epoch)."""
    model_seq, fit_seq = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(model_seq), np.random.default_rng(fit_seq)


def build_model(n_out: int, settings: Settings, rng: np.random.Generator) -> Sequential:
    """784 -> hidden -> ReLU -> Dropout -> n_out logits (10 classes, or 1 for a binary network)."""
    return Sequential(
        [
            Dense(784, settings.hidden, rng=rng),
            ReLU(),
            Dropout(settings.dropout, rng=rng),
            Dense(settings.hidden, n_out, rng=rng),
        ]
    )


class EpochLog(Callback):
    """One ``_common.log`` line per epoch, prefixed with the run's name (for parallel workers,
    whose lines would otherwise be impossible to tell apart)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        scores = "  ".join(f"{k} {v:.4f}" for k, v in logs.items() if isinstance(v, float))
        log(f"{self.prefix}: epoch {epoch}  {scores}")

    def on_train_end(self, logs: dict) -> None:
        if self.history.stop_reason:
            log(f"{self.prefix}: {self.history.stop_reason}")


def train(
    model: Sequential,
    loss: Loss,
    X_train: np.ndarray,
    y_train: np.ndarray,
    validation_data: tuple[np.ndarray, np.ndarray],
    settings: Settings,
    checkpoint: Path,
    history_file: Path,
    rng: np.random.Generator,
    *,
    callbacks: Sequence[Callback] = (),
    verbose: int | None = None,
) -> tuple[History, list[tuple[int, float]], float]:
    """Adam, mini-batches, at most ``settings.max_epochs`` epochs, with the Keras trio:
    EarlyStopping (restores the best weights at the end), ModelCheckpoint (best weights only, in
    ``checkpoint``) and HistoryCheckpoint (``history_file``), plus ReduceLROnPlateau. Returns the
    history, the learning-rate reductions ``[(epoch, new_lr), ...]`` and the seconds spent; the
    model ends with its best weights. SIGTERM stops it like Ctrl-C."""
    optimizer = Adam(model.parameters(), lr=settings.lr)
    early = EarlyStopping(monitor=settings.monitor, patience=settings.patience, restore_best_weights=True)
    best = ModelCheckpoint(checkpoint, monitor=settings.monitor, save_best_only=True)
    slower = ReduceLROnPlateau(optimizer, settings.lr_monitor, settings.lr_factor, settings.lr_patience)
    started = time.perf_counter()
    with sigterm_as_interrupt():
        history = fit(
            model,
            X_train,
            y_train,
            loss=loss,
            optimizer=optimizer,
            epochs=settings.max_epochs,
            batch_size=settings.batch_size,
            validation_data=validation_data,
            callbacks=[early, best, slower, HistoryCheckpoint(history_file), *callbacks],
            rng=rng,
            verbose=verbose,
        )
    return history, slower.reductions, time.perf_counter() - started


def load_best(model: Sequential, checkpoint: Path) -> dict:
    """Load the checkpoint's weights into ``model``; returns what the file says about itself."""
    if not checkpoint.exists():
        raise RuntimeError(f"{checkpoint} was never written: no epoch had a finite validation score")
    model.load(checkpoint)
    return read_checkpoint_info(checkpoint)


def run(args: argparse.Namespace) -> None:
    """Train one network and save its checkpoint, history, test outputs and run information."""
    settings = QUICK if args.quick else FULL
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("results.npz", "run.json"):  # from an earlier run: must not outlive this one
        (out / stale).unlink(missing_ok=True)
    started = time.perf_counter()
    log(f"{NAME}: loading Fashion-MNIST (data seed {args.data_seed})")
    data = load_data(settings, args.data_seed)
    log(f"{NAME}: {len(data.y_train)} train, {len(data.y_val)} validation, {len(data.y_test)} test images")
    model_rng, fit_rng = seeds(args.seed)
    model = build_model(10, settings, model_rng)
    log(f"{NAME}: model\n{model.summary()}")
    checkpoint, history_file = out / "best.npz", out / "history.json"
    history, reductions, seconds = train(
        model,
        SoftmaxCrossEntropy(),
        data.X_train,
        data.y_train,
        (data.X_val, data.y_val),
        settings,
        checkpoint,
        history_file,
        fit_rng,
    )
    # The test set is used once, by the weights ModelCheckpoint saved: loaded back from the file.
    info = load_best(model, checkpoint)
    logits = predict(model, data.X_test)
    wrong = np.flatnonzero(logits.argmax(axis=1) != data.y_test)
    save_npz(
        out / "results.npz",
        {
            "y_test": data.y_test,
            "test_logits": logits,
            "error_index": wrong,
            "error_images": data.images_test[wrong],
        },
    )
    write_json(
        out / "run.json",
        {
            "quick": args.quick,
            "seed": args.seed,
            "data_seed": args.data_seed,
            "settings": dataclasses.asdict(settings),
            "n_train": len(data.y_train),
            "n_val": len(data.y_val),
            "n_test": len(data.y_test),
            "class_counts": {
                part: np.bincount(y, minlength=10).tolist()
                for part, y in (("train", data.y_train), ("val", data.y_val), ("test", data.y_test))
            },
            "summary": model.summary(),
            "n_parameters": model.n_parameters(),
            "checkpoint": info,
            "epochs_trained": history.epoch[-1],
            "stop_reason": history.stop_reason,
            "lr_reductions": reductions,
            "train_seconds": seconds,
            "epoch_seconds": history.epoch_time,
            "run_seconds": time.perf_counter() - started,
        },
    )
    log(f"{NAME}: trained in {seconds:.1f}s, best epoch {info['best_epoch']}; results in {out}")


# ---------------------------------------------------------------------------------------------
# Figures shared with experiments.binary
# ---------------------------------------------------------------------------------------------


def curves_figure(history: dict, path: Path, title: str, lr_reductions: Sequence = ()) -> None:
    """Loss and accuracy, train and validation, per epoch, with the best epoch (whose weights were
    kept) as a dashed line and a star, the epoch where early stopping ended the run as a dotted
    line, and triangles along the top where the learning rate was reduced. One legend below."""
    h = history["history"]
    epochs = np.asarray(history["epoch"])
    best, stopped = history.get("best_epoch"), history.get("stopped_epoch")
    monitor = history.get("monitor")
    reduced = "learning rate halved" if history.get("lr_factor") == 0.5 else "learning rate reduced"
    fig = plots.new_figure(12.5, 5.0)
    axes = fig.subplots(1, 2)
    # Epoch 0 (before training: loss ~ ln 10, accuracy ~ 0.1) would squash the interesting part.
    shown = epochs >= 1
    for ax, name in zip(axes, ("loss", "accuracy"), strict=True):
        for key, label, color in ((name, "train", "C0"), ("val_" + name, "validation", "C1")):
            values = np.asarray(h[key], dtype=float)
            ax.plot(epochs[shown], values[shown], "o-", ms=3, lw=1.8, color=color, label=label)
        if best is not None:
            value = h["val_" + name][list(epochs).index(best)]
            ax.axvline(best, color="k", ls="--", lw=1.2, label=f"best epoch {best}: its weights are kept")
            ax.plot([best], [value], "*", ms=14, color="C1", mec="k", zorder=5)
        if stopped is not None:
            ax.axvline(stopped, color="0.45", ls=":", lw=1.5, label=f"early stop after epoch {stopped}")
        if len(lr_reductions):
            at = [e for e, _ in lr_reductions]
            # In axes coordinates just under the top edge, with headroom made for them.
            ax.plot(
                at, [0.97] * len(at), "v", color="C2", ms=8, transform=ax.get_xaxis_transform(), label=reduced
            )
            low, high = ax.get_ylim()
            ax.set_ylim(low, high + 0.08 * (high - low))
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.set_title(f"{name.capitalize()} per epoch")
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), fontsize=9.5, frameon=False)
    if monitor:
        title += f"  (best = {'lowest' if monitor.endswith('loss') else 'highest'} {monitor})"
    fig.suptitle(title)
    plots.save_figure(fig, path)


def require(out_dir: Path, names: Sequence[str], name: str) -> None:
    """Exit with a clear message if ``run`` has not written its result files into ``out_dir``."""
    missing = [n for n in names if not (out_dir / n).exists()]
    if missing:
        raise SystemExit(
            f"{out_dir} has no results to plot (missing {', '.join(missing)}): run "
            f"`python -m experiments.{name} --out {out_dir}` first (without --plot-only)"
        )


def image_rel(path: Path, caption: str) -> str:
    """Markdown for a figure next to report.md."""
    return f"![{caption}]({path.name})"


# ---------------------------------------------------------------------------------------------
# Plot and report
# ---------------------------------------------------------------------------------------------


def softmax_cross_entropy(logits: np.ndarray, y: np.ndarray) -> float:
    return SoftmaxCrossEntropy().forward(logits.astype(np.float64), y)


def plot(out_dir: Path) -> dict[str, Any]:
    """Draw every figure and write metrics.json and report.md from the saved files only.
    Returns the headline numbers (printed as the summary table)."""
    out_dir = Path(out_dir)
    require(out_dir, ("run.json", "history.json", "results.npz", "best.npz"), NAME)
    info = read_json(out_dir / "run.json")
    history = read_json(out_dir / "history.json")
    history["monitor"] = info["settings"]["monitor"]
    history["lr_factor"] = info["settings"]["lr_factor"]
    res = load_npz(out_dir / "results.npz")
    y, logits = res["y_test"], res["test_logits"]
    pred = logits.argmax(axis=1)
    accuracy = float(np.mean(pred == y))
    cm = confusion_matrix(y, pred, 10)
    ckpt = info["checkpoint"]
    best = ckpt["best_epoch"]

    curves = out_dir / "curves.png"
    curves_figure(history, curves, "Multiclass network (10 classes): learning curves", info["lr_reductions"])
    confusion = out_dir / "confusion.png"
    plots.confusion_matrices(
        cm, CLASS_NAMES, path=confusion, title=f"Test set, best weights (epoch {best}): confusion matrix"
    )
    pairs = most_confused_pairs(cm, k=N_PAIRS)
    examples = out_dir / "confused_pairs.png"
    shown = confused_pairs_figure(res, pred, pairs, examples)

    report = classification_report(y, pred, target_names=list(CLASS_NAMES), digits=3)
    report_dict = classification_report(y, pred, target_names=list(CLASS_NAMES), output_dict=True)
    h = history["history"]
    epochs = history["epoch"]
    at_best = epochs.index(best)
    recall = np.diag(cm) / cm.sum(axis=1)
    metrics = {
        "test_accuracy": accuracy,
        "test_loss": softmax_cross_entropy(logits, y),
        "best_epoch": best,
        "best_score": ckpt["best_score"],
        "monitor": history["monitor"],
        "epochs_trained": info["epochs_trained"],
        "stopped_epoch": history.get("stopped_epoch"),
        "stop_reason": info["stop_reason"],
        "lr_reductions": info["lr_reductions"],
        "val_accuracy_at_best": h["val_accuracy"][at_best],
        "val_loss_at_best": h["val_loss"][at_best],
        "train_accuracy_at_best": h["accuracy"][at_best],
        "train_seconds": info["train_seconds"],
        # whole epochs: the updates, then the evaluation on the train and validation sets
        "seconds_per_epoch": info["train_seconds"] / max(info["epochs_trained"], 1),
        "n_parameters": info["n_parameters"],
        "per_class_recall": dict(zip(CLASS_NAMES, recall.tolist(), strict=True)),
        "most_confused_pairs": [
            {"true": CLASS_NAMES[t], "predicted": CLASS_NAMES[p], "count": c} for t, p, c in pairs
        ],
        "confusion_matrix": cm.tolist(),
        "classification_report": report_dict,
        "quick": info["quick"],
    }
    write_json(out_dir / "metrics.json", metrics)
    figures = {"curves": curves, "confusion": confusion, "examples": examples}
    write_text(out_dir / "report.md", report_md(info, history, metrics, cm, report, figures, shown))
    return metrics


def confused_pairs_figure(res: dict, pred: np.ndarray, pairs: list, path: Path) -> int:
    """Test images of the most-confused pairs, one row per pair, titled "true: X / pred: Y".
    Every row shows the same number of images (the first ones in test-set order); returns it."""
    y, index, images = res["y_test"], res["error_index"], res["error_images"]
    rows = [np.flatnonzero((y[index] == t) & (pred[index] == p)) for t, p, _ in pairs]
    n = min([N_EXAMPLES, *(len(r) for r in rows)]) if rows else 0
    chosen = np.concatenate([r[:n] for r in rows]) if n else np.zeros(0, dtype=np.int64)
    if len(chosen) == 0:  # a perfect model: nothing to show, but the figure exists
        fig = plots.new_figure(6, 1.5)
        fig.text(0.5, 0.5, "no misclassified test images", ha="center", va="center")
        plots.save_figure(fig, path)
        return 0
    titles = [f"true: {CLASS_NAMES[y[index[i]]]} / pred: {CLASS_NAMES[pred[index[i]]]}" for i in chosen]
    plots.image_grid(
        images[chosen],
        titles=titles,
        ncols=n,
        path=path,
        title=f"The {len(pairs)} most frequent confusions on the test set (one row per pair)",
    )
    return n


def report_md(
    info: dict, history: dict, m: dict, cm: np.ndarray, report: str, figures: dict, shown: int
) -> str:
    s = info["settings"]
    h, epochs = history["history"], history["epoch"]
    best, monitor = m["best_epoch"], m["monitor"]
    at_best = epochs.index(best)
    last = len(epochs) - 1
    minutes = info["train_seconds"] / 60
    quick = (
        "\n> **Quick smoke run** (`--quick`): a few epochs on a small subsample. The numbers below "
        "only show that the code works; run without `--quick` for the real ones.\n"
        if info["quick"]
        else ""
    )
    met = "meets" if m["test_accuracy"] >= TARGET_ACCURACY else "does **not** meet"
    stopped = (
        f"Early stopping ended training after epoch {history['stopped_epoch']}: "
        f"{info['stop_reason'].removeprefix('early stopping: ')}."
        if history.get("stopped_epoch") is not None
        else f"Training ran all {s['max_epochs']} epochs without early stopping triggering"
        + (f" ({info['stop_reason']})." if info["stop_reason"] else ".")
    )
    lowest_val = int(np.argmin(h["val_loss"][1:])) + 1
    reductions = info["lr_reductions"]
    lr_text = (
        "The learning rate was lowered after epoch"
        + ("s " if len(reductions) > 1 else " ")
        + ", ".join(str(e) for e, _ in reductions)
        + f" (green triangles), from {s['lr']:g} to {reductions[-1][1]:.2g}."
        if reductions
        else "The learning rate was never lowered."
    )
    gap = h["accuracy"][last] - h["val_accuracy"][last]
    overfit = (
        f"After epoch {lowest_val} the training loss kept falling ({h['loss'][lowest_val]:.4f} -> "
        f"{h['loss'][last]:.4f}) but the validation loss did not ({h['val_loss'][lowest_val]:.4f} -> "
        f"{h['val_loss'][last]:.4f}): what the network still learned was particular to its training "
        "images, not to the classes (over-fitting). More epochs would not help; "
        if lowest_val < epochs[last] and h["loss"][last] < h["loss"][lowest_val]
        else "The validation loss was still falling at the end, so more epochs could still help. "
    )

    pair_rows = []
    for p in m["most_confused_pairs"]:
        t, q = CLASS_NAMES.index(p["true"]), CLASS_NAMES.index(p["predicted"])
        back = int(cm[q, t])
        pair_rows.append([p["true"], p["predicted"], p["count"], f"{p['count'] / cm[t].sum():.1%}", back])
    recall = m["per_class_recall"]
    order = sorted(recall, key=recall.get)
    worst = ", ".join(f"{k} ({recall[k]:.1%})" for k in order[:3])
    best_classes = ", ".join(f"{k} ({recall[k]:.1%})" for k in order[::-1][:3])
    top = m["most_confused_pairs"][0] if m["most_confused_pairs"] else None
    off = cm - np.diag(np.diag(cm))
    n_errors = int(off.sum())
    upper = off[np.ix_(TORSO, TORSO)].sum() / max(n_errors, 1)
    shoes = int(off[np.ix_(FOOTWEAR, FOOTWEAR)].sum())
    shoes_other = int(off[FOOTWEAR].sum() + off[:, FOOTWEAR].sum() - 2 * shoes)

    lines = [
        "# Multiclass network with a validation set, early stopping and a best-model checkpoint",
        quick,
        "**Question.** Train a neural network on the ten Fashion-MNIST classes the way Keras users "
        f"do: watch a validation set, train for at most {s['max_epochs']} epochs, stop early when the "
        "validation score no longer improves, keep the best model in a checkpoint file. How good is "
        "that model on the test set, and which classes does it confuse?",
        "",
        "**Answer (this run).** "
        f"The best epoch was **{best}** of {info['epochs_trained']} trained; its weights, reloaded "
        f"from the checkpoint, classify **{m['test_accuracy']:.2%}** of the 10000 test images "
        f"correctly (test loss {m['test_loss']:.4f}), which {met} the lab's target of "
        f"{TARGET_ACCURACY:.0%}. Training took **{minutes:.1f} min** "
        f"({info['train_seconds']:.0f} s for {info['epochs_trained']} epochs, "
        f"{m['seconds_per_epoch']:.1f} s each with the evaluation after it, on this machine)."
        + (
            f" The most frequent mistake is {top['true']} predicted as {top['predicted']} "
            f"({top['count']} test images)."
            if top
            else ""
        ),
        "",
        "## Set-up",
        "",
        f"- **Data**: Fashion-MNIST, 28x28 grey images of 10 kinds of clothing. The 60000 training "
        f"images are split, stratified (same class proportions), into {info['n_train']} for training "
        f"and {info['n_val']} for validation (data seed {info['data_seed']}); the official 10000 test "
        "images are only used once, at the end. Pixels are standardised per pixel with the mean and "
        "standard deviation of the training part.",
        f"- **Network**: 784 -> {s['hidden']} ReLU -> Dropout(p={s['dropout']}) -> 10 logits, "
        f"{info['n_parameters']:,} parameters; softmax cross-entropy loss.",
        f"- **Training**: Adam (learning rate {s['lr']:g}), mini-batches of {s['batch_size']}, at most "
        f"{s['max_epochs']} epochs, seed {info['seed']}.",
        f'- **Callbacks** (minidl\'s Keras-style ones): `EarlyStopping(monitor="{monitor}", '
        f'patience={s["patience"]}, restore_best_weights=True)`, `ModelCheckpoint("best.npz", '
        f'monitor="{monitor}", save_best_only=True)` and `HistoryCheckpoint("history.json")`, '
        "inside `sigterm_as_interrupt()` so that Ctrl-C or `kill` leaves complete files behind; and "
        f'`ReduceLROnPlateau(monitor="{s["lr_monitor"]}", factor={s["lr_factor"]}, '
        f"patience={s['lr_patience']})` "
        "(defined in this experiment, after Keras's), which lowers Adam's learning rate when the "
        "validation loss stalls: large steps early, then smaller ones that settle into a minimum the "
        "large ones kept jumping over.",
        "",
        "```",
        info["summary"],
        "```",
        "",
        "## Training",
        "",
        image_rel(figures["curves"], "Loss and accuracy per epoch, train and validation, best epoch marked"),
        "",
        f"Before the first update the loss was {h['loss'][0]:.3f} (a random 10-way guess gives "
        f"ln 10 = {math.log(10):.3f}) and the accuracy {h['accuracy'][0]:.1%}. "
        f"The validation loss was lowest at epoch {lowest_val} ({min(h['val_loss'][1:]):.4f}). "
        f"The best epoch by `{monitor}` is epoch {best}: validation loss {h['val_loss'][at_best]:.4f}, "
        f"validation accuracy {h['val_accuracy'][at_best]:.2%} (train accuracy "
        f"{h['accuracy'][at_best]:.2%}). {stopped} {lr_text}",
        "",
        f"At the last epoch ({epochs[last]}) the training accuracy was {h['accuracy'][last]:.2%} and the "
        f"validation accuracy {h['val_accuracy'][last]:.2%}, a gap of {100 * gap:.1f} points; the training loss "
        f"was {h['loss'][last]:.4f} and the validation loss {h['val_loss'][last]:.4f}. "
        + overfit
        + "in any case the weights kept are those of the best epoch, not the last ones: EarlyStopping "
        "restores them in memory and ModelCheckpoint has them on disk (`best.npz`, which also records "
        "the epoch and the score; `minidl.callbacks.read_checkpoint_info` reads them back).",
        "",
        "## Test accuracy",
        "",
        md_table(
            ["", "value"],
            [
                ["test accuracy (best weights, reloaded from best.npz)", f"{m['test_accuracy']:.4f}"],
                ["test loss", f"{m['test_loss']:.4f}"],
                [f"validation accuracy at epoch {best}", f"{m['val_accuracy_at_best']:.4f}"],
                [f"train accuracy at epoch {best}", f"{m['train_accuracy_at_best']:.4f}"],
                ["epochs trained / best epoch", f"{info['epochs_trained']} / {best}"],
                [
                    "training time",
                    f"{info['train_seconds']:.0f} s ({m['seconds_per_epoch']:.1f} s per epoch)",
                ],
            ],
        ),
        "",
        "The validation set chose the epoch, so its accuracy is slightly optimistic; the test "
        "accuracy is the honest estimate.",
        "",
        "## What it confuses",
        "",
        image_rel(figures["confusion"], "Confusion matrix on the test set: counts and row-normalised"),
        "",
        "Rows are the true classes, columns the predicted ones. Left: counts out of the 1000 test "
        "images of each class; right: each row divided by its total, so the diagonal is the recall of "
        f"each class (the share of its images recognised). Best recognised: {best_classes}. "
        f"Hardest: {worst}.",
        "",
        "The most frequent confusions (the last column counts the same pair the other way round):",
        "",
        md_table(
            ["true class", "predicted as", "test images", "share of the true class", "reverse"], pair_rows
        ),
        "",
        image_rel(figures["examples"], "Test images of the most frequent confusions"),
        "",
        f"Above, {shown} misclassified test images of each of these pairs (the first ones in test-set "
        f"order, not hand-picked). Of all {n_errors} test errors, {upper:.0%} are between the five "
        f"garments with a torso ({', '.join(CLASS_NAMES[k] for k in TORSO)}), which share a "
        "silhouette, often with sleeves; at 28x28 grey pixels a collar, buttons or "
        f"the fabric are a few pixels at most. Among the three kinds of footwear: {shoes} errors; "
        f"between footwear and everything else: {shoes_other}.",
        "",
        "## Classification report (test set)",
        "",
        "```",
        report.rstrip(),
        "```",
        "",
        "Precision: of the images predicted as the class, the share that really are; recall: of the "
        "images of the class, the share found; F1: their harmonic mean; support: test images of the class.",
        "",
        "## Files and reproduction",
        "",
        f"`python -m experiments.{NAME} --out DIR{' --quick' if info['quick'] else ''}` trains and "
        f"writes everything here; `--plot-only` redraws figures and this report from the saved files. "
        f"`best.npz` (weights of epoch {best}), `history.json`, `results.npz` (test logits), "
        f"`run.json`, `metrics.json`. Whole run: {info['run_seconds']:.0f} s.",
        "",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------


def summary_table(m: dict) -> str:
    return md_table(
        ["test accuracy", "test loss", "best epoch", "epochs trained", "train time (s)", "s/epoch"],
        [
            [
                m["test_accuracy"],
                m["test_loss"],
                m["best_epoch"],
                m["epochs_trained"],
                f"{m['train_seconds']:.1f}",
                f"{m['seconds_per_epoch']:.2f}",
            ]
        ],
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = make_parser(NAME, DESCRIPTION)
    parser.add_argument(
        "--seed", type=int, default=SEED, help="seed of the network (weights, dropout, order)"
    )
    args = parser.parse_args(argv)
    return run_and_plot(
        args,
        run,
        plot,
        summary_table,
        name=NAME,
        resume_hint=f"{args.out} holds the best weights so far (best.npz) and the history (history.json); "
        "run the same command again to train anew",
    )


if __name__ == "__main__":
    main()
