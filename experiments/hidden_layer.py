"""One hidden layer: how many hidden units, batch or mini-batch, and the final model on the test set.

The lab's questions, answered in ``report.md`` with the numbers of the run:

1. Softmax on top of one hidden layer of n ReLU units, n = 10 ... 500: how does the validation
   accuracy change with n (mean +- std over seeds), and which n is best?
2. Mini-batch against full-batch gradient descent: what does each buy per epoch and per second?
3. The best n, trained with early stopping on the validation set and evaluated once on the
   test set: confusion matrix, per-class and overall accuracy, precision, recall and F1.
4. Against the softmax-only model (read from ``softmax_only/metrics.json`` next to the output
   folder if that experiment was run, else trained here on the same split): what does the
   hidden layer add?
5. What do the hidden units look at? Their input weights drawn as 28x28 images.

    python -m experiments.hidden_layer [--out DIR] [--quick] [--plot-only] [--workers N]

``run`` trains (every configuration x seed through ``minidl.sweep.run_sweep``, so an interrupted
run resumes) and saves ``results.json`` and ``final_model.npz``; ``plot`` draws the figures and
writes ``report.md`` and ``metrics.json`` from those two files only. The default run trains
23 networks on 50000 images: 250 s of CPU time, 11.5 min of wall time measured on a shared 2-core
machine under heavy load (about 3-4 min on a quiet one); ``--quick`` takes about 10 s.

Helpers that ``experiments.hyperparams`` shares live here too: ``build_mlp``,
``history_record``, ``sweep_executor``, ``run_key`` and ``overlay_curves``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from experiments._common import (
    CLASS_NAMES,
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
from minidl.callbacks import Callback, EarlyStopping, ExponentialDecay
from minidl.datasets import load_fashion_mnist
from minidl.layers import Dense, Dropout, ReLU
from minidl.losses import SoftmaxCrossEntropy
from minidl.metrics import classification_report, confusion_matrix, most_confused_pairs
from minidl.model import Sequential
from minidl.model_selection import stratified_subsample
from minidl.optim import SGD, Adam, Optimizer
from minidl.sweep import default_workers, process_pool, run_sweep, task_key
from minidl.train import History, fit, predict

NAME = "hidden_layer"


@dataclass(frozen=True)
class Settings:
    """Everything that defines a run. ``n_train`` / ``n_val`` None means the whole split."""

    hidden: tuple[int, ...] = (10, 20, 50, 100, 200, 500)  # hidden units n to compare
    seeds: tuple[int, ...] = (0, 1, 2)  # one training per n and seed
    batch_size: int = 128  # mini-batch size
    lr: float = 1e-3  # Adam's step size in the first epoch ...
    lr_decay: float = 0.9  # ... multiplied by this after every epoch
    dropout: float = 0.3  # dropout after the hidden layer
    epochs: int = 15  # epochs of every mini-batch run in the comparison of n
    gd_hidden: tuple[int, ...] = (100,)  # n also trained with full-batch gradient descent
    gd_lr: float = 1e-2  # Adam's step size for full batches (constant: one update per epoch)
    gd_epochs: int = 60  # full-batch runs stop here, converged or not
    final_epochs: int = 30  # at most, for the final model (and a softmax-only model if needed) ...
    patience: int = 6  # ... which stops after this many epochs without a better val_accuracy
    final_seed: int = 0
    n_train: int | None = None  # None: all 50000 training images of the split
    n_val: int | None = None  # None: all 10000 validation images
    n_weight_images: int = 20  # hidden units whose input weights are drawn


FULL = Settings()
QUICK = Settings(
    hidden=(10, 50),
    seeds=(0, 1),
    epochs=3,
    gd_hidden=(10,),
    gd_epochs=4,
    final_epochs=4,
    patience=2,
    n_train=2000,
    n_val=1000,
    n_weight_images=10,
)

LOSS = SoftmaxCrossEntropy()


# ---------------------------------------------------------------------------------------------
# Helpers shared with experiments.hyperparams
# ---------------------------------------------------------------------------------------------


def build_mlp(hidden: Sequence[int], seed: int, dropout: float = 0.0, n_in: int = 784) -> Sequential:
    """``Dense -> ReLU [-> Dropout]`` per hidden layer, then ``Dense(.., 10)`` giving the logits.

    ``hidden=()`` is the softmax-only model ``Dense(784, 10)``. Each layer draws its initial
    weights (and dropout masks) from its own generator spawned from ``seed``: the same seed gives
    the same model, and a wider layer does not change how the others start.

    >>> build_mlp([100], seed=0)
    Sequential([
      Dense(784, 100),
      ReLU(),
      Dense(100, 10)
    ])
    """
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2 * len(hidden) + 1)]
    layers, width = [], n_in
    for i, n in enumerate(hidden):
        layers += [Dense(width, n, rng=rngs[2 * i]), ReLU()]
        if dropout:
            layers.append(Dropout(dropout, rng=rngs[2 * i + 1]))
        width = n
    layers.append(Dense(width, 10, rng=rngs[-1]))
    return Sequential(layers)


def make_optimizer(name: str, model: Sequential, lr: float) -> Optimizer:
    """``"adam"`` or ``"sgd"`` (plain gradient descent: no momentum, no weight decay)."""
    if name == "adam":
        return Adam(model.parameters(), lr=lr)
    if name == "sgd":
        return SGD(model.parameters(), lr=lr)
    raise ValueError(f"unknown optimizer {name!r}: use 'adam' or 'sgd'")


def history_record(history: History) -> dict[str, Any]:
    """What a run keeps of its ``History``: the curves, epoch times and why it stopped."""
    return {
        "history": history.history,
        "epoch_time": history.epoch_time,
        "steps_per_epoch": history.params["steps_per_epoch"],
        "stop_reason": history.stop_reason,
        "diverged": history.diverged,
        "best_epoch": history.best_epoch,
    }


def run_key(name: str, task: Mapping[str, Any]) -> str:
    """A readable sweep key, ``name`` plus the hash of the task: a changed setting gets a new
    file instead of clashing with the result of the old one in the same folder."""
    return f"{name}-{task_key(task)[-10:]}"


@contextlib.contextmanager
def sweep_executor(workers: int | None) -> Iterator[Executor | str]:
    """One pool of worker processes for all the sweeps of an experiment.

    ``run_sweep`` alone would start a fresh pool per call, and every fresh worker loads and
    normalises the data again (seconds each); one shared pool (``minidl.sweep.process_pool``,
    one BLAS thread per worker) lets each worker keep its ``split_data`` cache from one sweep to
    the next. ``workers=1`` is one worker process, so every worker count gives the same bits.
    """
    pool = process_pool(workers or default_workers())
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def overlay_curves(
    ax: Axes,
    groups: Mapping[str, Sequence[Mapping[str, Any]]],
    key: str,
    *,
    x: Mapping[str, Sequence[float]] | None = None,
    xlabel: str = "epoch",
    ylabel: str | None = None,
    title: str | None = None,
    logy: bool = False,
    logx: bool = False,
    legend_title: str | None = None,
    dashed: bool = False,
) -> None:
    """Several configurations on one Axes: the mean of ``key`` over seeds as a line, +-1 std as a band.

    ``groups`` maps a legend label to that configuration's run records (``history_record``
    dicts, one per seed). ``x`` optionally maps a label to its x values, one per history entry
    (e.g. the number of updates instead of the epoch). A run that diverged ends with a cross at
    its last finite value, and the legend says how many seeds diverged. ``dashed`` gives each
    configuration its own line style too, so curves that lie on top of each other stay visible.
    """
    styles = ["-", "--", "-.", ":"] if dashed else ["-"]
    any_diverged = False
    for i, (label, runs) in enumerate(groups.items()):
        color = f"C{i % 10}"
        mean, std, _ = plots.mean_std([r["history"] for r in runs], key)
        xs = np.arange(len(mean), dtype=float) if x is None else np.asarray(x[label], dtype=float)
        xs = xs[: len(mean)]
        keep = np.isfinite(mean) & ((xs > 0) if logx else True)
        lo, hi = mean - std, mean + std
        if logy:
            lo = np.maximum(lo, mean / 10)  # a band reaching 0 or below would vanish off a log axis
        ax.fill_between(xs[keep], lo[keep], hi[keep], color=color, alpha=plots.BAND_ALPHA, lw=0)
        n_div = sum(bool(r.get("diverged")) for r in runs)
        note = f" (diverged: {n_div} of {len(runs)} seeds)" if n_div else ""
        ax.plot(xs[keep], mean[keep], color=color, lw=2, ls=styles[i % len(styles)], label=f"{label}{note}")
        for r in runs:
            if not r.get("diverged"):
                continue
            values = np.asarray(r["history"][key], dtype=float)
            finite = np.flatnonzero(np.isfinite(values))
            if finite.size:
                j = finite[-1]
                ax.plot(xs[j], values[j], "x", color=color, ms=11, mew=2.5, zorder=5)
                any_diverged = True
    if any_diverged:
        ax.plot([], [], "x", color="0.3", ms=9, mew=2.5, label="last finite value before divergence")
    if logy:
        ax.set_yscale("log")
        plain_log_ticks(ax)
    if logx:
        ax.set_xscale("log")
    elif x is None:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel or key.replace("val_", "validation ").replace("_", " "))
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8.5, title=legend_title, title_fontsize=8.5)


def plain_log_ticks(ax: Axes) -> None:
    """On a log y axis spanning less than two decades, label ticks 0.3, 0.5, 2 rather than
    3 x 10^-1 (call again after changing the limits)."""
    lo, hi = ax.get_ylim()
    if lo > 0 and hi / lo < 100:
        plain = FuncFormatter(lambda v, _: f"{v:g}")
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain)


def zoom_past_epoch0(ax: Axes, runs: Sequence[Mapping[str, Any]], key: str, top: float | None = None) -> None:
    """Fit the y axis to the values after epoch 0, whose untrained value (loss ~2.3, accuracy
    ~0.1) would squash the interesting part of the curves into a thin strip."""
    values = np.concatenate([np.asarray(r["history"][key][1:], dtype=float) for r in runs])
    values = values[np.isfinite(values)]
    if values.size:
        lo, hi = values.min(), values.max()
        pad = 0.05 * (hi - lo) or 0.01
        ax.set_ylim(lo - pad, hi + pad if top is None else top)


def new_figure(width: float, height: float, nrows: int = 1, ncols: int = 1) -> tuple[Figure, np.ndarray]:
    """A Figure with its own canvas (no pyplot state) and an ``(nrows, ncols)`` array of Axes."""
    fig = plots.new_figure(width, height)
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def save_figure(fig: Figure, path: Path) -> None:
    """Write the PNG atomically, like every function of ``minidl.plots``."""
    plots.save_figure(fig, path)


def load_test_set() -> tuple[np.ndarray, np.ndarray]:
    """The official test images (uint8) and labels, for plots and reports."""
    _, (images, labels) = load_fashion_mnist()
    return images, labels.astype(np.int64)


def mean_pm(values: Sequence[float], digits: int = 4) -> str:
    """``"0.8512 ± 0.0031"``: mean and population std."""
    a = np.asarray(values, dtype=float)
    return f"{a.mean():.{digits}f} ± {a.std():.{digits}f}"


# ---------------------------------------------------------------------------------------------
# Compute
# ---------------------------------------------------------------------------------------------


def data_for(n_train: int | None, n_val: int | None, data_seed: int):
    """``X, y, X_val, y_val, X_test, y_test`` of the shared split (standardised pixels); in
    quick mode stratified subsets of ``n_train`` / ``n_val`` examples."""
    split = split_data(seed=data_seed)
    X, y, Xv, yv = split.X_train, split.y_train, split.X_val, split.y_val
    if n_train is not None:
        idx = stratified_subsample(y, n_train, rng=data_seed)
        X, y = X[idx], y[idx]
    if n_val is not None:
        idx = stratified_subsample(yv, n_val, rng=data_seed)
        Xv, yv = Xv[idx], yv[idx]
    return X, y, Xv, yv, split.X_test, split.y_test


def train_one(
    hidden: list[int],
    seed: int,
    batch_size: int | None,
    lr: float,
    lr_decay: float,
    epochs: int,
    dropout: float,
    n_train: int | None,
    n_val: int | None,
    data_seed: int,
    patience: int | None = None,
    test: bool = False,
    weights_file: str | None = None,
) -> dict[str, Any]:
    """One training run with Adam (a sweep task; returns a JSON-able dict).

    With ``patience``, early stopping on ``val_accuracy`` keeps the best epoch's weights; with
    ``test``, the model is then scored on the test set and its predictions are returned; with
    ``weights_file``, its weights are saved there.
    """
    X, y, Xv, yv, Xt, yt = data_for(n_train, n_val, data_seed)
    model = build_mlp(hidden, seed, dropout)
    optimizer = make_optimizer("adam", model, lr)
    callbacks: list[Callback] = [ExponentialDecay(optimizer, lr_decay)]
    if patience:
        callbacks.append(EarlyStopping("val_accuracy", patience=patience))
    start = time.perf_counter()
    history = fit(
        model,
        X,
        y,
        loss=LOSS,
        optimizer=optimizer,
        epochs=epochs,
        batch_size=batch_size,
        validation_data=(Xv, yv),
        callbacks=callbacks,
        rng=seed,
        verbose=0,
    )
    result = history_record(history)
    result["train_seconds"] = time.perf_counter() - start
    result["n_parameters"] = model.n_parameters()
    if test:
        result["test_pred"] = predict(model, Xt, labels=True).tolist()
        result["test_accuracy"] = float(np.mean(np.asarray(result["test_pred"]) == yt))
    if weights_file:
        model.save(weights_file)
    return result


def best_epoch_scores(history: Mapping[str, Sequence[float]]) -> tuple[float, float, int]:
    """``(validation accuracy, train accuracy, epoch)`` at the epoch of highest validation
    accuracy, which is what early stopping on that metric would keep (never epoch 0)."""
    val = np.asarray(history["val_accuracy"][1:], dtype=float)
    if val.size == 0 or not np.isfinite(val).any():
        return float("nan"), float("nan"), 0
    i = int(np.nanargmax(val))
    return float(val[i]), float(history["accuracy"][i + 1]), i + 1


def read_softmax_reference(path: Path) -> dict[str, Any] | None:
    """Test metrics of the softmax-only experiment, if its ``metrics.json`` is there and readable.

    Needs ``test_accuracy`` and per-class precision, recall and F1: lists of 10 under
    ``precision``, ``recall``, ``f1`` (or ``f1-score``), or dicts keyed by class name, at the
    top level or inside ``per_class`` / ``test``, or a ``classification_report`` dict (class
    name -> {precision, recall, f1-score}). Returns None when anything is missing.
    """
    try:
        data = read_json(path)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("test_accuracy"), (int, float)):
        return None

    def vector(value: Any) -> list[float] | None:
        if isinstance(value, dict):
            value = [value.get(c) for c in CLASS_NAMES]
        if isinstance(value, list) and len(value) == 10 and all(isinstance(v, (int, float)) for v in value):
            return [float(v) for v in value]
        return None

    for source in (data, data.get("per_class"), data.get("test"), data.get("classification_report")):
        if not isinstance(source, dict):
            continue
        if all(isinstance(source.get(c), dict) for c in CLASS_NAMES):  # class name -> metrics
            rows = [source[c] for c in CLASS_NAMES]
            source = {m: [r.get(m, r.get(f"{m}-score")) for r in rows] for m in ("precision", "recall", "f1")}
        found = {m: vector(source.get(m, source.get(f"{m}-score"))) for m in ("precision", "recall", "f1")}
        if all(v is not None for v in found.values()):
            return {"test_accuracy": float(data["test_accuracy"]), **found, "source": str(path)}
    return None


def _task(s: Settings, hidden: Sequence[int], seed: int, data_seed: int, **changes: Any) -> dict[str, Any]:
    task = {
        "hidden": list(hidden),
        "seed": seed,
        "batch_size": s.batch_size,
        "lr": s.lr,
        "lr_decay": s.lr_decay,
        "epochs": s.epochs,
        "dropout": s.dropout if hidden else 0.0,
        "n_train": s.n_train,
        "n_val": s.n_val,
        "data_seed": data_seed,
    }
    return {**task, **changes}


def run(args) -> dict[str, Any]:
    """Train everything; save ``results.json`` and ``final_model.npz`` into ``args.out``."""
    s = QUICK if args.quick else FULL
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    reference_path = Path(args.softmax_metrics or out.parent / "softmax_only" / "metrics.json")
    reference = read_softmax_reference(reference_path)

    # 1. every n x seed with mini-batches; some n also with full batches (batch gradient descent)
    tasks, index = {}, {"minibatch": {}, "fullbatch": {}}
    for n in s.hidden:
        for seed in s.seeds:
            task = _task(s, [n], seed, args.data_seed)
            key = run_key(f"minibatch_n{n}_seed{seed}", task)
            tasks[key] = task
            index["minibatch"].setdefault(str(n), []).append(key)
    for n in s.gd_hidden:
        for seed in s.seeds:
            task = _task(
                s, [n], seed, args.data_seed, batch_size=None, lr=s.gd_lr, lr_decay=1.0, epochs=s.gd_epochs
            )
            key = run_key(f"fullbatch_n{n}_seed{seed}", task)
            tasks[key] = task
            index["fullbatch"].setdefault(str(n), []).append(key)

    with sweep_executor(args.workers) as executor:
        log(
            f"{len(tasks)} trainings: n in {list(s.hidden)} x seeds {list(s.seeds)}; "
            f"full batch for n in {list(s.gd_hidden)}"
        )
        sweep = run_sweep(train_one, tasks, out / "runs", executor=executor)
        sweep.raise_if_failed()
        groups = {
            mode: {n: [sweep.results[k] for k in keys] for n, keys in by_n.items()}
            for mode, by_n in index.items()
        }

        # 2. choose n on validation: mean over seeds of each run's best validation accuracy
        mean_val = {
            n: np.mean([best_epoch_scores(r["history"])[0] for r in groups["minibatch"][str(n)]])
            for n in s.hidden
        }
        best_n = max(s.hidden, key=lambda n: (mean_val[n], -n))  # a tie goes to the smaller layer
        log(f"best n on validation: {best_n} (mean best validation accuracy {mean_val[best_n]:.4f})")

        # 3. the final model, and a softmax-only model when no saved one could be read
        final_tasks = {}
        task = _task(
            s, [best_n], s.final_seed, args.data_seed, epochs=s.final_epochs, patience=s.patience, test=True
        )
        task["weights_file"] = str((out / "final_model.npz").resolve())
        final_tasks[run_key("final", task)] = task
        if reference is None:
            task = _task(
                s, [], s.final_seed, args.data_seed, epochs=s.final_epochs, patience=s.patience, test=True
            )
            final_tasks[run_key("softmax_only", task)] = task
        final = run_sweep(train_one, final_tasks, out / "runs", executor=executor)
        final.raise_if_failed()
    final_run, *softmax_run = final.results.values()

    if reference is None:
        log(f"no readable softmax-only result at {reference_path}: trained Dense(784, 10) here")
        sm = softmax_run[0]
        _, y_test = load_test_set()
        rep = classification_report(
            y_test, sm["test_pred"], n_classes=10, target_names=CLASS_NAMES, output_dict=True
        )
        reference = {
            "test_accuracy": sm["test_accuracy"],
            **{
                m: [rep[c][f"{m}-score" if m == "f1" else m] for c in CLASS_NAMES]
                for m in ("precision", "recall", "f1")
            },
            "source": "trained here",
            "best_epoch": sm["best_epoch"],
            "history": sm["history"],
        }
    else:
        log(f"softmax-only test metrics read from {reference_path}")

    results = {
        "settings": asdict(s),
        "quick": bool(args.quick),
        "data_seed": args.data_seed,
        "workers": 1 if args.workers == 1 else (args.workers or default_workers()),
        "minibatch": groups["minibatch"],
        "fullbatch": groups["fullbatch"],
        "best_hidden": best_n,
        "final": final_run,
        "softmax_reference": reference,
        "seconds": time.perf_counter() - started,
        "resumed_runs": len(sweep.resumed) + len(final.resumed),
    }
    write_json(out / "results.json", results)
    log(f"results saved in {out / 'results.json'} after {results['seconds']:.0f} s")
    return results


# ---------------------------------------------------------------------------------------------
# Plot and report
# ---------------------------------------------------------------------------------------------


def load_results(out: Path) -> dict[str, Any]:
    path = out / "results.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: run `python -m experiments.{NAME} --out {out}` (without --plot-only) first"
        )
    return read_json(path)


def plot(out_dir: str | Path) -> dict[str, Any]:
    """Draw every figure and write ``report.md`` and ``metrics.json`` from the saved results."""
    out = Path(out_dir)
    R = load_results(out)
    s = Settings(**{k: tuple(v) if isinstance(v, list) else v for k, v in R["settings"].items()})
    mb = {n: R["minibatch"][str(n)] for n in s.hidden}
    gd = {n: R["fullbatch"][str(n)] for n in s.gd_hidden}
    best_n, F, ref = R["best_hidden"], R["final"], R["softmax_reference"]
    seeds_text = f"mean (line) ± std (band) over {len(s.seeds)} seeds"

    # 1. validation loss and accuracy per n, one colour per n
    fig, axes = new_figure(13.0, 4.8, ncols=2)
    groups = {f"n = {n}": mb[n] for n in s.hidden}
    for ax, key, what in (
        (axes[0, 0], "val_loss", "Validation loss"),
        (axes[0, 1], "val_accuracy", "Validation accuracy"),
    ):
        overlay_curves(
            ax, groups, key, title=f"{what} (epoch 0 is off the scale)", legend_title="hidden units"
        )
        zoom_past_epoch0(ax, [r for runs in mb.values() for r in runs], key)
    fig.suptitle(f"One hidden layer of n ReLU units, mini-batches of {s.batch_size} (Adam): {seeds_text}")
    save_figure(fig, out / "val_curves.png")

    # 2. train and validation accuracy for each n (the gap is over-fitting)
    ncols = min(3, len(s.hidden))
    nrows = -(-len(s.hidden) // ncols)
    fig, axes = new_figure(5.3 * ncols, 3.9 * nrows, nrows=nrows, ncols=ncols)
    for ax, n in zip(axes.ravel(), s.hidden, strict=False):
        hist = [r["history"] for r in mb[n]]
        plots.learning_curves(hist, keys=("accuracy", "val_accuracy"), title=f"n = {n}", ax=ax)
        zoom_past_epoch0(ax, mb[n], "val_accuracy", top=1.0)
    for ax in axes.ravel()[len(s.hidden) :]:
        ax.set_axis_off()
    fig.suptitle(
        "Train and validation accuracy for each number of hidden units n (epoch 0, ~0.1, is off the scale)"
    )
    save_figure(fig, out / "curves_per_n.png")

    # 3. accuracy at the best validation epoch vs n (log x), train next to validation
    scores = {n: np.array([best_epoch_scores(r["history"]) for r in mb[n]]) for n in s.hidden}
    val = np.array([scores[n][:, 0] for n in s.hidden]).T  # (seeds, hidden sizes)
    train = np.array([scores[n][:, 1] for n in s.hidden]).T
    plots.line_plot(
        s.hidden,
        {"validation": val, "train (same epoch)": train},
        xlabel="hidden units n (log scale)",
        ylabel="accuracy at the best validation epoch",
        logx=True,
        title=f"Accuracy vs hidden units (best on validation: n = {best_n})",
        path=out / "accuracy_vs_hidden.png",
    )

    # 4. full batch vs mini-batch, per epoch and per second of training
    fig, axes = new_figure(13.0, 4.8, ncols=2)
    groups, seconds = {}, {}
    for n in s.gd_hidden:
        for mode, runs in (("mini-batch", mb.get(n)), ("full batch", gd[n])):
            if runs:
                label = f"n = {n}, {mode}"
                groups[label] = runs
                seconds[label] = np.concatenate(
                    [[0.0], np.mean([np.cumsum(r["epoch_time"]) for r in runs], axis=0)]
                )
    overlay_curves(axes[0, 0], groups, "val_accuracy", title="Per epoch")
    overlay_curves(
        axes[0, 1],
        groups,
        "val_accuracy",
        x=seconds,
        xlabel="training time (s, mean over seeds)",
        title="Per second of training",
    )
    fig.suptitle(
        f"Full batch (1 update per epoch, lr {s.gd_lr:g}, stopped after {s.gd_epochs} epochs) "
        "vs mini-batches "
        f"of {s.batch_size} (lr {s.lr:g} x {s.lr_decay:g} per epoch)\nAdam, {seeds_text}"
    )
    save_figure(fig, out / "batch_vs_minibatch.png")

    # 5. the final model on the test set
    _, y_test = load_test_set()
    pred = np.asarray(F["test_pred"])
    cm = confusion_matrix(y_test, pred, 10)
    rep = classification_report(y_test, pred, n_classes=10, target_names=CLASS_NAMES, output_dict=True)
    plots.confusion_matrices(
        cm,
        CLASS_NAMES,
        path=out / "confusion_matrix.png",
        title=f"Final model (n = {best_n}) on the 10000 test images: accuracy {rep['accuracy']:.4f}",
    )
    plots.learning_curves_grid(
        [F["history"]],
        path=out / "final_curves.png",
        title=f"Final model, n = {best_n}: early stopping on validation accuracy "
        f"kept epoch {F['best_epoch']}",
    )

    # 6. against the softmax-only model
    mine = {
        m: [rep[c][f"{m}-score" if m == "f1" else m] for c in CLASS_NAMES]
        for m in ("precision", "recall", "f1")
    }
    plots.bar_compare(
        [*CLASS_NAMES, "macro avg"],
        {
            f"softmax only (test accuracy {ref['test_accuracy']:.3f})": [
                *ref["f1"],
                float(np.mean(ref["f1"])),
            ],
            f"one hidden layer, n = {best_n} (test accuracy {rep['accuracy']:.3f})": [
                *mine["f1"],
                float(np.mean(mine["f1"])),
            ],
        },
        ylabel="F1 score on the test set",
        title="Per-class F1 score: softmax only vs one hidden layer",
        path=out / "compare_softmax.png",
    )

    # 7. what the hidden units look at: the units with the largest outgoing weights
    model = build_mlp([best_n], s.final_seed, s.dropout)
    model.load(out / "final_model.npz")
    W1, W2 = model.layers[0].W.value, model.layers[-1].W.value
    W1_init = build_mlp([best_n], s.final_seed, s.dropout).layers[0].W.value  # the same seed: its start
    moved = float(np.mean(np.linalg.norm(W1 - W1_init, axis=0) / np.linalg.norm(W1_init, axis=0)))
    k = min(s.n_weight_images, best_n)
    chosen = np.sort(np.argsort(-np.linalg.norm(W2, axis=1), kind="stable")[:k])
    plots.weight_images(
        W1[:, chosen],
        [f"unit {u}" for u in chosen],
        ncols=min(10, k),
        path=out / "hidden_weights.png",
        title=f"Input weights of {k} of the {best_n} hidden units (those with the largest outgoing weights)",
    )

    metrics = {
        "test_accuracy": float(rep["accuracy"]),
        "chosen_hidden": best_n,
        "hidden": list(s.hidden),
        "val_accuracy_mean": val.mean(axis=0).tolist(),
        "val_accuracy_std": val.std(axis=0).tolist(),
        "per_class": {
            c: {
                "accuracy": rep[c]["recall"],
                "precision": rep[c]["precision"],
                "recall": rep[c]["recall"],
                "f1": rep[c]["f1-score"],
                "support": rep[c]["support"],
            }
            for c in CLASS_NAMES
        },
        "macro_avg": {
            "precision": rep["macro avg"]["precision"],
            "recall": rep["macro avg"]["recall"],
            "f1": rep["macro avg"]["f1-score"],
        },
        "confusion_matrix": cm.tolist(),
        "final_best_epoch": F["best_epoch"],
        "hidden_weights_moved": moved,
        "softmax_test_accuracy": ref["test_accuracy"],
        "softmax_source": ref["source"],
        "run_seconds": R["seconds"],
        "quick": R["quick"],
    }
    write_json(out / "metrics.json", metrics)
    write_text(out / "report.md", report_text(R, s, mb, gd, val, train, rep, cm, mine, metrics))
    return metrics


def report_text(R, s: Settings, mb, gd, val, train, rep, cm, mine, metrics) -> str:
    """``report.md``: the lab's questions answered with this run's numbers."""
    best_n, F, ref = R["best_hidden"], R["final"], R["softmax_reference"]
    n_seeds = len(s.seeds)
    quick = " (QUICK smoke run: tiny data, few epochs: the numbers mean nothing)" if R["quick"] else ""
    j_best = list(s.hidden).index(best_n)
    rows = [
        [
            n,
            mb[n][0]["n_parameters"],
            mean_pm(val[:, j]),
            mean_pm(train[:, j]),
            f"{np.mean([np.mean(r['epoch_time']) for r in mb[n]]):.1f}",
        ]
        for j, n in enumerate(s.hidden)
    ]
    ranking = ", ".join(str(s.hidden[j]) for j in np.argsort(-val.mean(axis=0), kind="stable"))
    gap = (train - val).mean(axis=0)
    # a difference smaller than the seeds' spread is not a finding
    runner_up = int(np.argsort(-val.mean(axis=0), kind="stable")[1]) if len(s.hidden) > 1 else j_best
    margin = val[:, j_best].mean() - val[:, runner_up].mean()
    spread = max(val[:, j_best].std(), val[:, runner_up].std())

    gd_rows = []
    for n in s.gd_hidden:
        for mode, runs in (("mini-batch", mb.get(n)), ("full batch", gd[n])):
            if runs:
                epochs = len(runs[0]["history"]["loss"]) - 1
                gd_rows.append(
                    [
                        f"n = {n}, {mode}",
                        epochs,
                        epochs * runs[0]["steps_per_epoch"],
                        mean_pm([r["history"]["val_accuracy"][1] for r in runs]),
                        mean_pm([r["history"]["val_accuracy"][-1] for r in runs]),
                        f"{np.mean([sum(r['epoch_time']) for r in runs]):.1f}",
                    ]
                )
    gd_n = s.gd_hidden[0]
    gd_final = np.mean([r["history"]["val_accuracy"][-1] for r in gd[gd_n]])
    gd_loss = np.mean([r["history"]["loss"][-1] for r in gd[gd_n]])
    mb_runs = mb.get(gd_n)
    mb_steps = mb_runs[0]["steps_per_epoch"] if mb_runs else "many"
    mb_first = np.mean([r["history"]["val_accuracy"][1] for r in mb_runs]) if mb_runs else float("nan")
    reach = ""
    if mb_runs:
        mb_curve = np.mean([r["history"]["val_accuracy"] for r in mb_runs], axis=0)
        hits = np.flatnonzero(mb_curve >= gd_final)
        if hits.size:
            reach = (
                " The mini-batch runs passed the full-batch runs' final accuracy after "
                f"{hits[0]} of their epochs."
            )

    per_class = [
        [
            c,
            rep[c]["recall"],
            rep[c]["precision"],
            rep[c]["f1-score"],
            ref["recall"][i],
            ref["precision"][i],
            ref["f1"][i],
        ]
        for i, c in enumerate(CLASS_NAMES)
    ]
    per_class.append(
        [
            "**macro avg**",
            rep["macro avg"]["recall"],
            rep["macro avg"]["precision"],
            rep["macro avg"]["f1-score"],
            float(np.mean(ref["recall"])),
            float(np.mean(ref["precision"])),
            float(np.mean(ref["f1"])),
        ]
    )
    per_class.append(["**accuracy (all classes)**", rep["accuracy"], "", "", ref["test_accuracy"], "", ""])
    confused = most_confused_pairs(cm, k=3, class_names=CLASS_NAMES)
    gain = np.asarray(mine["f1"]) - np.asarray(ref["f1"])
    most, least = int(np.argmax(gain)), int(np.argmin(gain))
    if ref["source"] == "trained here":
        source = (
            "trained here, because no `softmax_only/metrics.json` was found next to this folder: "
            f"`Dense(784, 10)` on the same split with the same recipe (Adam, step decay, early stopping, "
            f"which kept epoch {ref.get('best_epoch')})"
        )
    else:
        source = f"read from `{ref['source']}`, the softmax-only experiment's saved test metrics"
    stopped = len(F["history"]["loss"]) - 1
    why_stop = f"and stopped: {F['stop_reason']}" if F["stop_reason"] else "(all it was allowed)"
    recall = np.array([rep[c]["recall"] for c in CLASS_NAMES])
    hardest = ", ".join(f"{CLASS_NAMES[k]} ({recall[k]:.3f})" for k in np.argsort(recall, kind="stable")[:3])
    easiest = ", ".join(f"{CLASS_NAMES[k]} ({recall[k]:.3f})" for k in np.argsort(-recall, kind="stable")[:3])
    if best_n == max(s.hidden):
        capacity = (
            "Dropout and the decaying step keep that in check: the biggest layer still generalises best."
        )
    else:
        capacity = (
            f"Beyond n = {best_n} the extra capacity goes into memorising and no longer pays on validation."
        )
    gd_epoch_s = np.mean([np.mean(r["epoch_time"]) for r in gd[gd_n]])
    mb_epoch_s = np.mean([np.mean(r["epoch_time"]) for r in mb_runs]) if mb_runs else float("nan")

    return f"""# One hidden layer on Fashion-MNIST{quick}

**Final model: one hidden layer of {best_n} units, test accuracy {rep["accuracy"]:.4f}**
(softmax only: {ref["test_accuracy"]:.4f}). The whole run took {R["seconds"]:.0f} s
({R["seconds"] / 60:.1f} min) with {R["workers"]} worker process(es){
        f", {R['resumed_runs']} runs resumed from an earlier start" if R.get("resumed_runs") else ""
    }.

## Set-up

- Data: {s.n_train or 50000} training and {s.n_val or 10000} validation images, a stratified split of
  the official 60000 training images (seed {R["data_seed"]}). The official 10000 test images are used
  once, by the final model. Each pixel is standardised with the mean and std of the training part.
- Model: `Dense(784, n) -> ReLU -> Dropout({s.dropout}) -> Dense(n, 10)`, softmax cross-entropy on
  the logits. Adam with step size {s.lr:g} in the first epoch, multiplied by {s.lr_decay:g} after each
  epoch; mini-batches of {s.batch_size}; {s.epochs} epochs; {n_seeds} seeds per n (a seed sets the
  initial weights, the dropout masks and the order of the examples).
- A run's score is its best validation accuracy over its epochs (what early stopping keeps).

## 1. How many hidden units?

{md_table(["n", "parameters", "validation accuracy", "train accuracy (same epoch)", "s per epoch"], rows)}

Mean ± std over {n_seeds} seeds. Train accuracy is measured with dropout off.

![Validation loss and accuracy per n](val_curves.png)

![Accuracy vs number of hidden units](accuracy_vs_hidden.png)

**Best on validation: n = {best_n}** ({mean_pm(val[:, j_best])}); from best to worst: {ranking}.
Its lead over the runner-up is {margin:+.4f}, {"less than" if margin < spread else "more than"} the
spread between seeds ({spread:.4f}){", so the two are a tie within noise" if margin < spread else ""}.

- With n = {s.hidden[0]} the hidden layer is a bottleneck: ten classes have to be told apart from
  {s.hidden[0]} features, and train and validation accuracy are both the lowest (under-fitting).
- More units give the output layer more features to combine and the validation accuracy rises,
  by less and less per doubling (the x axis is logarithmic).
- The train-validation gap grows with n, from {gap[0]:+.4f} (n = {s.hidden[0]}) to {gap[-1]:+.4f}
  (n = {s.hidden[-1]}): a bigger layer also memorises more of the training set. {capacity}
- A bigger layer costs time: compare the seconds per epoch.

![Train and validation accuracy for each n](curves_per_n.png)

## 2. Full batch or mini-batches?

{
        md_table(
            ["run", "epochs", "updates", "val. accuracy after epoch 1", "final val. accuracy", "training s"],
            gd_rows,
        )
    }

![Full batch vs mini-batch](batch_vs_minibatch.png)

Both use the same update rule; only the number of examples per gradient differs. Full-batch
gradient descent makes **one** update per epoch from the exact gradient; mini-batches of
{s.batch_size} make {mb_steps} cheaper, noisier updates per epoch. After one epoch the mini-batch
model is at {mb_first:.4f} validation accuracy. Full batch is at {gd_final:.4f} (train loss
{gd_loss:.3f}) after {s.gd_epochs} epochs = {s.gd_epochs} updates, where we **stopped it on
purpose, not converged**: its curve is still rising slowly, and every further epoch costs about as
much as a mini-batch epoch ({gd_epoch_s:.2f} s against {mb_epoch_s:.2f} s here).{reach} Its larger
step size ({s.gd_lr:g} against {s.lr:g}) is safe with the exact gradient and still not enough.
Mini-batches win because a gradient estimated on {s.batch_size} examples already points roughly the
right way, and many cheap steps beat a few exact ones.

## 3. The final model on the test set

n = {best_n}, seed {s.final_seed}, trained for at most {s.final_epochs} epochs with early stopping
on the validation accuracy (patience {s.patience}). It ran {stopped} epochs {why_stop}. It kept
the weights of epoch {F["best_epoch"]}. Evaluated once on the 10000 test images:
**test accuracy {rep["accuracy"]:.4f}**; macro-averaged precision {rep["macro avg"]["precision"]:.4f},
recall {rep["macro avg"]["recall"]:.4f}, F1 {rep["macro avg"]["f1-score"]:.4f}.

![Final model learning curves](final_curves.png)

![Confusion matrix on the test set](confusion_matrix.png)

Per class, next to the softmax-only model. The per-class accuracy is the recall (the fraction of
the class's test images labelled correctly); precision is the fraction of the images given that
label that really are of the class; F1 is their harmonic mean.

{
        md_table(
            [
                "class",
                "accuracy (= recall)",
                "precision",
                "F1",
                "softmax recall",
                "softmax precision",
                "softmax F1",
            ],
            per_class,
            3,
        )
    }

The most frequent confusions: {"; ".join(f"{t} taken for {p} ({c} times)" for t, p, c in confused)}.
The hardest classes (lowest recall) are {hardest}; the easiest are {easiest}. At 28x28 pixels the
upper-body garments (T-shirt/top, Pullover, Coat, Shirt) share one silhouette and differ in details
(a collar, buttons, the length of a sleeve) that a few pixels barely show; footwear, bags and
trousers have shapes of their own.

## 4. What the hidden layer adds over softmax alone

The softmax-only numbers are {source}.

![Per-class F1, softmax only vs one hidden layer](compare_softmax.png)

Test accuracy goes from {ref["test_accuracy"]:.4f} to {rep["accuracy"]:.4f}
({rep["accuracy"] - ref["test_accuracy"]:+.4f}). A softmax classifier scores each class with one
linear template of the pixels, so it cannot express "sleeves AND no collar". The hidden layer first
computes {best_n} features, each a ReLU of its own template, and the output layer scores the classes
from combinations of them. The largest F1 gain is for {CLASS_NAMES[most]} ({gain[most]:+.3f}), the
smallest for {CLASS_NAMES[least]} ({gain[least]:+.3f}).

## 5. What the hidden units look at

![Input weights of hidden units](hidden_weights.png)

Each panel is the 784 input weights of one hidden unit drawn as a 28x28 image (red: a brighter
than average pixel there raises the unit's input, blue: lowers it), for the
{min(s.n_weight_images, best_n)} units with the largest outgoing weights, the ones the output layer
listens to most. They look much noisier than the softmax model's ten class templates, for two
reasons. Training moved each unit's weights away from their random start by {
        metrics["hidden_weights_moved"]:.2f}
times the size of that start (the mean of |W - W_init| / |W_init| over units){
        ", so the random start is still a large part of what you see"
        if metrics["hidden_weights_moved"] < 2
        else ""
    },
and nothing in the recipe (no weight decay) pulls the leftover noise to zero. And a unit is not a
class: it only needs a few strong regions to respond to one part of a garment, so look for the
darker blobs and bars (a bar down the middle: the gap between trouser legs; a sole; the edge of a
sleeve). The output layer combines {best_n} such partial detectors into the ten class scores.

## Reproduce

`python -m experiments.{NAME} --out DIR` trains (finished runs in `DIR/runs/` are reused after an
interruption) and draws; `--plot-only` redraws the figures and this report from `DIR/results.json`
and `DIR/final_model.npz`.
"""


def summary_table(metrics: dict[str, Any]) -> str:
    """The short table printed on stdout at the end."""
    rows = [
        [n, f"{m:.4f} ± {sd:.4f}"]
        for n, m, sd in zip(
            metrics["hidden"], metrics["val_accuracy_mean"], metrics["val_accuracy_std"], strict=True
        )
    ]
    return (
        md_table(["hidden units n", "validation accuracy"], rows)
        + f"\n\nchosen n = {metrics['chosen_hidden']}: test accuracy {metrics['test_accuracy']:.4f} "
        f"(softmax only {metrics['softmax_test_accuracy']:.4f}); run {metrics['run_seconds']:.0f} s"
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = make_parser(
        NAME, "One hidden layer: hidden units, batch vs mini-batch, final model on the test set."
    )
    parser.add_argument(
        "--softmax-metrics",
        type=Path,
        default=None,
        help="metrics.json of the softmax-only experiment to compare with; when not given, "
        "softmax_only/metrics.json next to --out; if that is missing, a softmax-only model is "
        "trained here",
    )
    args = parser.parse_args(argv)
    return run_and_plot(
        args,
        run,
        plot,
        summary_table,
        name=NAME,
        resume_hint=f"the finished trainings are saved under {args.out}, and the same command resumes from them",
    )


if __name__ == "__main__":
    main()
