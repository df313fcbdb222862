"""The main job: a softmax-only classifier on Fashion-MNIST, batch vs mini-batch gradient descent.

The model is one ``Dense(784, 10)`` layer (weights N(0, std 1/sqrt(784)), biases 0) trained with
softmax cross-entropy and plain SGD. The study:

0. a first look at the data (examples per class, class counts of train / validation / test);
1. input normalisation (raw [0, 1] pixels, centred, standardised) compared under batch gradient
   descent, each at its best learning rate from a short sweep on the validation set;
2. where the loss starts, per seed, next to ln(10) and next to what the initialisation predicts;
3. batch gradient descent over 10 seeds, epochs chosen by early stopping on the validation loss;
4. mini-batch gradient descent (batch 32) over the same seeds, and the comparison of the two;
5. the final model, chosen on validation, scored once on the official test set;
6. its weights drawn as one 28x28 image per class.

Run -> save -> plot: trainings are saved as they finish under ``DIR/runs`` (an interrupted run
resumes), the aggregate goes to ``DIR/results.json``, and figures, ``metrics.json`` and
``report.md`` are drawn from those files (``--plot-only`` redraws them).
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np

from experiments._common import (
    CLASS_NAMES,
    class_counts,
    log,
    make_parser,
    md_table,
    read_json,
    run_and_plot,
    split_data,
    write_json,
    write_text,
)
from minidl import SGD, Dense, Sequential, SoftmaxCrossEntropy, fit, metrics, plots
from minidl.callbacks import EarlyStopping
from minidl.model import load_npz, save_npz
from minidl.model_selection import stratified_subsample
from minidl.sweep import run_sweep
from minidl.train import predict

NAME = "softmax_only"

# Full study. Learning rates are swept on a log grid; epochs are chosen by early stopping: training
# stops once the validation loss has not improved by MIN_DELTA for PATIENCE epochs in a row, and
# the weights of the best epoch are kept.
FULL = {
    "seeds": 10,
    "n_train": None,  # all 50000 training examples
    "n_val": None,  # all 10000 validation examples
    "normalisations": ["raw", "centre", "standardise"],
    "gd_lrs": [0.1, 0.3, 1.0, 3.0],
    "gd_sweep_epochs": 50,
    "gd_max_epochs": 200,
    "gd_patience": 10,
    "mb_lrs": [0.01, 0.03, 0.1, 0.3],
    "mb_sweep_epochs": 3,
    "mb_max_epochs": 30,
    "mb_patience": 3,
    "batch_size": 32,
    "min_delta": 1e-4,
}
# A smoke run in seconds: a stratified 5000/2000 subset, two seeds, few epochs.
QUICK = {
    **FULL,
    "seeds": 2,
    "n_train": 5000,
    "n_val": 2000,
    "gd_lrs": [0.3, 1.0],
    "gd_sweep_epochs": 8,
    "gd_max_epochs": 15,
    "gd_patience": 3,
    "mb_lrs": [0.01, 0.03],
    "mb_sweep_epochs": 1,
    "mb_max_epochs": 3,
    "mb_patience": 2,
}
NORMALISATION_NAMES = {"raw": "raw [0, 1]", "centre": "centred", "standardise": "standardised"}
LN10 = math.log(10)


# ---- one training run (a top-level function, so worker processes can run it) -----------------
def _subset(y: np.ndarray, n: int | None, seed: int) -> np.ndarray:
    return np.arange(len(y)) if n is None else np.sort(stratified_subsample(y, n, rng=seed))


def train_run(
    normalisation: str,
    lr: float,
    batch_size: int | None,
    epochs: int,
    seed: int,
    patience: int,
    min_delta: float,
    n_train: int | None,
    n_val: int | None,
    data_seed: int,
    weights: str | None = None,
) -> dict:
    """Train one softmax-only model; return its history (and save its best weights if asked)."""
    data = split_data(seed=data_seed, normalisation=normalisation)
    tr, va = _subset(data.y_train, n_train, data_seed), _subset(data.y_val, n_val, data_seed)
    X, y, X_val, y_val = data.X_train[tr], data.y_train[tr], data.X_val[va], data.y_val[va]
    model = Sequential([Dense(784, 10, rng=seed)])
    stopper = EarlyStopping("val_loss", patience=patience, min_delta=min_delta)
    history = fit(
        model,
        X,
        y,
        loss=SoftmaxCrossEntropy(),
        optimizer=SGD(model.parameters(), lr=lr),
        epochs=epochs,
        batch_size=batch_size,
        validation_data=(X_val, y_val),
        callbacks=[stopper] if patience else [],
        rng=seed + 10_000,  # the order of examples: its own stream, independent of the weights
        verbose=0,
    )
    if weights:
        model.save(weights)
    # The training loss of every update, averaged over blocks of updates whose length grows
    # geometrically (about 200 points, evenly spaced on a log axis).
    step_loss = np.asarray(history.step_loss)
    edges = np.unique(np.geomspace(1, len(step_loss) + 1, 200).astype(int)) - 1
    sums = np.add.reduceat(step_loss, edges[:-1])
    widths = np.diff(edges)
    return {
        "step_x": (edges[:-1] + (widths - 1) / 2).tolist(),
        "step_loss": (sums / widths).tolist(),
        "history": history.history,
        "epoch_time": history.epoch_time,
        "best_epoch": history.best_epoch if history.best_epoch is not None else len(history.epoch) - 1,
        "stop_reason": history.stop_reason,
        "diverged": history.diverged,
        "steps_per_epoch": history.params["steps_per_epoch"],
        "mean_sq_input": float(np.mean(np.square(X, dtype=np.float64))),
    }


# ---- the study --------------------------------------------------------------------------------
def _task(cfg: dict, args, **kw) -> dict:
    base = {"patience": 0, "min_delta": cfg["min_delta"], "n_train": cfg["n_train"], "n_val": cfg["n_val"]}
    return {**base, "data_seed": args.data_seed, **kw}


def _final_val_loss(result: dict) -> float:
    losses = result["history"]["val_loss"]
    return math.inf if result["diverged"] or losses[-1] is None else losses[-1]


def run(args, cfg: dict) -> dict:
    out = args.out
    runs_dir = out / "runs"
    started = time.perf_counter()

    # 1. Learning-rate sweeps on the validation set: batch GD for every normalisation, and
    #    mini-batch GD, one seed each.
    log("step 1/3: learning-rate sweeps (batch GD per normalisation, mini-batch GD)")
    sweep_tasks = {}
    for norm in cfg["normalisations"]:
        for lr in cfg["gd_lrs"]:
            sweep_tasks[f"sweep-gd-{norm}-lr{lr:g}"] = _task(
                cfg, args, normalisation=norm, lr=lr, batch_size=None, epochs=cfg["gd_sweep_epochs"], seed=0
            )
        for lr in cfg["mb_lrs"]:
            sweep_tasks[f"sweep-mb-{norm}-lr{lr:g}"] = _task(
                cfg,
                args,
                normalisation=norm,
                lr=lr,
                batch_size=cfg["batch_size"],
                epochs=cfg["mb_sweep_epochs"],
                seed=0,
            )
    sweep = run_sweep(train_run, sweep_tasks, runs_dir, max_workers=args.workers)
    sweep.raise_if_failed()
    res = sweep.results

    def best_lr(kind: str, norm: str) -> float:
        lrs = cfg["gd_lrs"] if kind == "gd" else cfg["mb_lrs"]
        return min(lrs, key=lambda lr: _final_val_loss(res[f"sweep-{kind}-{norm}-lr{lr:g}"]))

    gd_best = {norm: best_lr("gd", norm) for norm in cfg["normalisations"]}
    norm = args.normalisation or min(
        cfg["normalisations"], key=lambda n: _final_val_loss(res[f"sweep-gd-{n}-lr{gd_best[n]:g}"])
    )
    gd_lr = args.lr or gd_best[norm]
    mb_lr = args.mb_lr or best_lr("mb", norm)
    batch_size = args.batch_size or cfg["batch_size"]
    log(f"chosen: {NORMALISATION_NAMES[norm]} inputs, batch GD lr {gd_lr:g}, mini-batch lr {mb_lr:g}")

    # 2. Every seed, batch and mini-batch, with early stopping on the validation loss.
    log(f"step 2/3: {cfg['seeds']} seeds x (batch GD, mini-batch GD of {batch_size})")
    (out / "weights").mkdir(parents=True, exist_ok=True)
    seed_tasks = {}
    for seed in range(cfg["seeds"]):
        for kind, lr, bs, epochs, patience in (
            ("gd", gd_lr, None, args.epochs or cfg["gd_max_epochs"], cfg["gd_patience"]),
            ("mb", mb_lr, batch_size, args.epochs or cfg["mb_max_epochs"], cfg["mb_patience"]),
        ):
            key = f"{kind}-seed{seed}"
            seed_tasks[key] = _task(
                cfg,
                args,
                normalisation=norm,
                lr=lr,
                batch_size=bs,
                epochs=epochs,
                seed=seed,
                patience=patience,
                weights=str(out / "weights" / f"{key}.npz"),
            )
    seeds = run_sweep(train_run, seed_tasks, runs_dir, max_workers=args.workers)
    seeds.raise_if_failed()
    gd = [seeds.results[f"gd-seed{s}"] for s in range(cfg["seeds"])]
    mb = [seeds.results[f"mb-seed{s}"] for s in range(cfg["seeds"])]

    # 3. The final model: the run with the best validation accuracy at its best epoch.
    log("step 3/3: final model on the test set")
    candidates = [
        (r["history"]["val_accuracy"][r["best_epoch"]], kind, s)
        for kind, runs in (("gd", gd), ("mb", mb))
        for s, r in enumerate(runs)
    ]
    val_acc, kind, seed = max(candidates)
    data = split_data(seed=args.data_seed, normalisation=norm)
    model = Sequential([Dense(784, 10, rng=0)])  # its initial weights are replaced by the saved ones
    model.load(out / "weights" / f"{kind}-seed{seed}.npz")
    y_pred = predict(model, data.X_test, labels=True)

    raw = split_data(seed=args.data_seed, normalisation="raw")
    tr = _subset(raw.y_train, cfg["n_train"], args.data_seed)
    results = {
        "config": cfg,
        "quick": args.quick,
        "data_seed": args.data_seed,
        "chosen": {"normalisation": norm, "gd_lr": gd_lr, "mb_lr": mb_lr, "batch_size": batch_size},
        "normalisation_given": args.normalisation is not None,
        "sweep": res,
        "gd": gd,
        "mb": mb,
        "final": {"kind": kind, "seed": seed, "val_accuracy": val_acc, "y_pred": y_pred},
        "mean_sq_input_raw": float(np.mean(np.square(raw.X_train[tr], dtype=np.float64))),
        "seconds": time.perf_counter() - started,
        # training compute of every run, whether it ran now or was resumed from an earlier start
        "train_seconds": sum(sweep.seconds.values()) + sum(seeds.seconds.values()),
    }
    write_json(out / "results.json", results)
    save_npz(out / "weights" / "final_W.npz", {"W": model.layers[0].W.value})  # for --plot-only
    return results


# ---- figures and report, from the saved results -----------------------------------------------
def _curve(runs: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    mean, std, _ = plots.mean_std([r["history"] for r in runs], key)
    return mean, std


def _first_epoch_below(mean: np.ndarray, target: float) -> int | None:
    hits = np.flatnonzero(mean <= target)
    return int(hits[0]) if hits.size else None


def plot(out: Path) -> dict:
    if not (out / "results.json").exists():
        sys.exit(
            f"no results in {out}: run `python -m experiments.softmax_only --out {out}` without --plot-only first"
        )
    R = read_json(out / "results.json")
    cfg, chosen, gd, mb, final = R["config"], R["chosen"], R["gd"], R["mb"], R["final"]
    norm = chosen["normalisation"]
    data = split_data(seed=R["data_seed"], normalisation=norm)
    figs = {}

    # 0. The data.
    plots.class_examples(
        data.images_train,
        data.y_train,
        CLASS_NAMES,
        per_class=10,
        rng=0,
        path=out / "data_examples.png",
        title="Fashion-MNIST: ten training examples per class",
    )
    figs["data_examples"] = "Ten training images per class."

    # 1. Normalisation under batch GD, each at its best learning rate.
    sweep = R["sweep"]
    norm_rows, series = [], {}
    for n in cfg["normalisations"]:
        by_lr = {lr: sweep[f"sweep-gd-{n}-lr{lr:g}"] for lr in cfg["gd_lrs"]}
        lr, best = min(by_lr.items(), key=lambda kv: _final_val_loss(kv[1]))
        h = best["history"]
        series[f"{NORMALISATION_NAMES[n]}, lr {lr:g}"] = (range(len(h["val_loss"])), h["val_loss"], None)
        norm_rows.append(
            [NORMALISATION_NAMES[n], f"{lr:g}", h["loss"][0], h["val_loss"][-1], h["val_accuracy"][-1]]
        )
    plots.compare_curves(
        series,
        xlabel="epoch",
        ylabel="validation loss",
        title=f"Batch gradient descent: input normalisation ({cfg['gd_sweep_epochs']} epochs, seed 0)",
        path=out / "normalisation.png",
    )
    figs["normalisation"] = "Validation loss of batch gradient descent for each input normalisation."

    # Learning-rate sweeps for the chosen normalisation.
    fig = plots.new_figure(12, 4.5)
    axes = fig.subplots(1, 2)
    lr_rows = []
    for ax, kind, lrs, title in (
        (axes[0], "gd", cfg["gd_lrs"], "batch GD"),
        (axes[1], "mb", cfg["mb_lrs"], f"mini-batch GD (batch {chosen['batch_size']})"),
    ):
        series = {}
        for lr in lrs:
            r = sweep[f"sweep-{kind}-{norm}-lr{lr:g}"]
            h = r["history"]
            vals = [v if v is not None else np.nan for v in h["val_loss"]]
            label = f"lr {lr:g}" + (" (diverged)" if r["diverged"] else "")
            series[label] = (range(len(vals)), vals, None)
            lr_rows.append(
                [
                    title,
                    f"{lr:g}",
                    "diverged" if r["diverged"] else _final_val_loss(r),
                    None if r["diverged"] else h["val_accuracy"][-1],
                ]
            )
        plots.compare_curves(
            series,
            xlabel="epoch",
            ylabel="validation loss",
            ax=ax,
            title=f"{title}: learning-rate sweep ({NORMALISATION_NAMES[norm]} inputs)",
        )
    plots.save_figure(fig, out / "lr_sweep.png")
    figs["lr_sweep"] = "Validation loss per learning rate (one seed)."

    # 3-4. Learning curves over seeds.
    for kind, runs, label in (
        ("gd", gd, "Batch gradient descent"),
        ("mb", mb, f"Mini-batch gradient descent (batch {chosen['batch_size']})"),
    ):
        histories = [r["history"] for r in runs]
        fig = plots.learning_curves_grid(
            histories, title=f"{label}, lr {chosen[kind + '_lr']:g}, {len(runs)} seeds"
        )
        for ax, key in zip(fig.axes, ("loss", "accuracy"), strict=False):
            # Zoom past epoch 0 (loss ~2.3, accuracy ~0.1), which would flatten everything after it.
            later = np.concatenate(
                [np.asarray(h[k][1:], dtype=float) for h in histories for k in (key, f"val_{key}")]
            )
            lo, hi = np.nanmin(later), np.nanmax(later)
            ax.set_ylim(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
        plots.save_figure(fig, out / f"curves_{kind}.png")
        figs[f"curves_{kind}"] = (
            f"{label}: every seed (thin) and the mean ± 1 std band (narrower than the line where seeds agree); "
            "the y axis starts after epoch 0."
        )

    # Batch vs mini-batch: same validation loss, in epochs and in update steps.
    gd_mean, gd_std = _curve(gd, "val_loss")
    mb_mean, mb_std = _curve(mb, "val_loss")
    steps = {"gd": gd[0]["steps_per_epoch"], "mb": mb[0]["steps_per_epoch"]}
    fig = plots.new_figure(12, 4.5)
    axes = fig.subplots(1, 2)
    labels = {
        "gd": f"batch GD (lr {chosen['gd_lr']:g})",
        "mb": f"mini-batch {chosen['batch_size']} (lr {chosen['mb_lr']:g})",
    }
    plots.compare_curves(
        {
            labels["gd"]: (np.arange(len(gd_mean)), gd_mean, gd_std),
            labels["mb"]: (np.arange(len(mb_mean)), mb_mean, mb_std),
        },
        xlabel="epoch",
        ylabel="validation loss",
        ax=axes[0],
        title=f"Validation loss vs epochs (mean ± std over {len(gd)} seeds)",
    )
    by_steps = {}
    for kind, runs in (("gd", gd), ("mb", mb)):
        n = min(len(r["step_loss"]) for r in runs)  # seeds stop at different epochs: common part
        Y = np.array([r["step_loss"][:n] for r in runs])
        by_steps[labels[kind]] = (np.asarray(runs[0]["step_x"][:n]) + 1, Y.mean(axis=0), Y.std(axis=0))
    plots.compare_curves(
        by_steps,
        xlabel="update step (log scale)",
        ylabel="training loss of the batch",
        logx=True,
        ax=axes[1],
        title="Training loss vs update steps (mini-batch: block means of batch losses)",
    )
    plots.save_figure(fig, out / "batch_vs_minibatch.png")
    figs["batch_vs_minibatch"] = "Batch vs mini-batch gradient descent, against epochs and against updates."

    # A validation loss both methods reach on their mean curves, over the epochs every seed ran.
    common = {
        kind: np.mean(
            [r["history"]["val_loss"][: min(len(q["history"]["val_loss"]) for q in runs)] for r in runs],
            axis=0,
        )
        for kind, runs in (("gd", gd), ("mb", mb))
    }
    target = float(max(common["gd"].min(), common["mb"].min()))
    comparison = []
    for kind, runs in (("gd", gd), ("mb", mb)):
        e = _first_epoch_below(common[kind], target)
        secs = np.mean([sum(r["epoch_time"][:e]) for r in runs]) if e is not None else None
        comparison.append(
            {
                "method": "batch GD" if kind == "gd" else f"mini-batch {chosen['batch_size']}",
                "lr": chosen[f"{kind}_lr"],
                "target_val_loss": target,
                "epochs_to_target": e,
                "updates_to_target": None if e is None else e * steps[kind],
                "seconds_to_target": secs,
                "epochs_run_mean": float(np.mean([len(r["history"]["loss"]) - 1 for r in runs])),
                "best_epoch_mean": float(np.mean([r["best_epoch"] for r in runs])),
                "best_epoch_std": float(np.std([r["best_epoch"] for r in runs])),
                "train_seconds_mean": float(np.mean([sum(r["epoch_time"]) for r in runs])),
                "val_loss_best_mean": float(
                    np.mean([r["history"]["val_loss"][r["best_epoch"]] for r in runs])
                ),
                "val_loss_best_std": float(np.std([r["history"]["val_loss"][r["best_epoch"]] for r in runs])),
                "val_accuracy_best_mean": float(
                    np.mean([r["history"]["val_accuracy"][r["best_epoch"]] for r in runs])
                ),
                "val_accuracy_best_std": float(
                    np.std([r["history"]["val_accuracy"][r["best_epoch"]] for r in runs])
                ),
            }
        )

    # 5. Final model on the test set.
    y_pred = np.asarray(final["y_pred"])
    y_test = data.y_test
    cm = metrics.confusion_matrix(y_test, y_pred, 10)
    plots.confusion_matrices(
        cm,
        CLASS_NAMES,
        path=out / "confusion_matrix.png",
        title="Final softmax-only model on the 10000 test images",
    )
    figs["confusion_matrix"] = (
        "Test-set confusion matrix: counts and row-normalised (the diagonal is recall)."
    )
    P, Rc, F = metrics.precision_recall_f1(y_test, y_pred, 10)
    per_class_acc = metrics.per_class_accuracy(y_test, y_pred, 10)
    system = {
        "accuracy": metrics.accuracy(y_test, y_pred),
        **{
            f"{avg}_{name}": float(v)
            for avg in ("macro", "micro")
            for name, v in zip(
                ("precision", "recall", "f1"),
                metrics.precision_recall_f1(y_test, y_pred, 10, average=avg),
                strict=True,
            )
        },
    }
    plots.bar_compare(
        list(CLASS_NAMES),
        {"precision": P, "recall": Rc, "F1": F},
        ylabel="score",
        title="Per-class precision, recall and F1 on the test set",
        path=out / "per_class.png",
    )
    figs["per_class"] = "Per-class precision, recall and F1 of the final model."
    confused = metrics.most_confused_pairs(cm, k=5, class_names=list(CLASS_NAMES))

    # 6. Weights as images.
    W = load_npz(out / "weights" / "final_W.npz")["W"]
    plots.weight_images(
        W,
        CLASS_NAMES,
        path=out / "weights.png",
        title="Softmax weights: column k of W as a 28x28 image (red +, blue -)",
    )
    figs["weights"] = "The ten columns of W, one per class, on one symmetric colour scale."

    initial = [r["history"]["loss"][0] for r in gd]
    msq = gd[0]["mean_sq_input"]
    metrics_out = {
        "test_accuracy": system["accuracy"],
        "system": system,
        "per_class": {
            name: {
                "precision": P[k],
                "recall": Rc[k],
                "f1": F[k],
                "accuracy": per_class_acc[k],
                "support": int(cm[k].sum()),
            }
            for k, name in enumerate(CLASS_NAMES)
        },
        "confusion_matrix": cm,
        "most_confused": confused,
        "initial_loss": float(np.mean(initial)),
        "initial_loss_per_seed": initial,
        "initial_loss_predicted": LN10 + 0.45 * msq,
        "hyperparameters": {
            **chosen,
            "gd_epochs_max": cfg["gd_max_epochs"],
            "mb_epochs_max": cfg["mb_max_epochs"],
            "early_stopping": {
                "monitor": "val_loss",
                "gd_patience": cfg["gd_patience"],
                "mb_patience": cfg["mb_patience"],
                "min_delta": cfg["min_delta"],
            },
        },
        "final_model": final | {"y_pred": None},
        "comparison": comparison,
        "histories": {"gd": [r["history"] for r in gd], "mb": [r["history"] for r in mb]},
        "seconds": R["seconds"],
        "quick": R["quick"],
    }
    write_json(out / "metrics.json", metrics_out)
    write_text(out / "report.md", _report(R, metrics_out, norm_rows, lr_rows, data, figs))
    return metrics_out


def _report(R: dict, M: dict, norm_rows, lr_rows, data, figs: dict) -> str:
    cfg, chosen, gd, mb = R["config"], R["chosen"], R["gd"], R["mb"]
    norm = NORMALISATION_NAMES[chosen["normalisation"]]
    gd_c, mb_c = M["comparison"]
    sys_ = M["system"]
    msq_raw, msq = R["mean_sq_input_raw"], gd[0]["mean_sq_input"]
    init = M["initial_loss_per_seed"]
    n_tr = len(data.y_train) if cfg["n_train"] is None else cfg["n_train"]
    n_va = len(data.y_val) if cfg["n_val"] is None else cfg["n_val"]

    def fig(name: str) -> str:
        return f"![{figs[name]}]({name}.png)\n\n*{figs[name]}*"

    quick = (
        "\n> **Quick smoke run** (`--quick`): a small subset and few epochs; the numbers below are not the study's.\n"
        if R["quick"]
        else ""
    )
    seed_rows = [
        [
            s,
            init[s],
            gd[s]["best_epoch"],
            gd[s]["history"]["val_accuracy"][gd[s]["best_epoch"]],
            mb[s]["best_epoch"],
            mb[s]["history"]["val_accuracy"][mb[s]["best_epoch"]],
        ]
        for s in range(len(gd))
    ]
    per_class_rows = [
        [name, v["accuracy"], v["precision"], v["recall"], v["f1"], v["support"]]
        for name, v in M["per_class"].items()
    ]
    per_class_rows += [
        ["macro average", None, sys_["macro_precision"], sys_["macro_recall"], sys_["macro_f1"], 10000],
        [
            "micro average",
            sys_["accuracy"],
            sys_["micro_precision"],
            sys_["micro_recall"],
            sys_["micro_f1"],
            10000,
        ],
    ]
    confused = "\n".join(f"- true **{t}** predicted as **{p}**: {c} times" for t, p, c in M["most_confused"])
    comp_rows = [
        [
            c["method"],
            f"{c['lr']:g}",
            c["epochs_to_target"],
            c["updates_to_target"],
            c["seconds_to_target"],
            f"{c['best_epoch_mean']:.1f} ± {c['best_epoch_std']:.1f}",
            c["train_seconds_mean"],
            f"{c['val_loss_best_mean']:.4f} ± {c['val_loss_best_std']:.4f}",
            f"{c['val_accuracy_best_mean']:.4f} ± {c['val_accuracy_best_std']:.4f}",
        ]
        for c in (gd_c, mb_c)
    ]
    target = gd_c["target_val_loss"]
    final = M["final_model"]
    final_name = (
        "batch gradient descent"
        if final["kind"] == "gd"
        else f"mini-batch gradient descent (batch {chosen['batch_size']})"
    )
    best_norm = min(norm_rows, key=lambda r: r[3])
    raw_row = next((r for r in norm_rows if r[0].startswith("raw")), None)

    gd_stopped = sum(len(r["history"]["loss"]) - 1 < cfg["gd_max_epochs"] for r in gd)
    epochs_text = (
        "**Epochs** are chosen by a stated criterion on the validation curve: early stopping ends a run "
        f"once its validation loss has not improved by at least {cfg['min_delta']:g} for {cfg['gd_patience']} "
        f"epochs (batch GD, at most {cfg['gd_max_epochs']} epochs) or {cfg['mb_patience']} epochs "
        f"(mini-batch, at most {cfg['mb_max_epochs']} epochs), and keeps the weights of the best epoch. "
        + (
            f"Batch GD never met it: in all {len(gd)} seeds the validation loss was still falling at epoch "
            f"{cfg['gd_max_epochs']}, so the cap decided (more epochs would still help it, slowly). "
            if gd_stopped == 0
            else f"Batch GD met it in {gd_stopped} of {len(gd)} seeds. "
        )
        + "Per seed:"
    )
    if R.get("normalisation_given"):
        chosen_text = f"Used: **{norm}** inputs, as asked on the command line."
    else:
        chosen_text = f"Chosen: **{norm}** inputs, the lowest validation loss here ({best_norm[0]}: {best_norm[3]:.4f})."
        if raw_row and raw_row is not best_norm:
            chosen_text += f" Raw pixels reach only {raw_row[3]:.4f}."
    centred_note = (
        "the inputs are centred" if chosen["normalisation"] != "raw" else "here: brighter than black"
    )
    faster = (mb_c["epochs_to_target"] or math.inf) < (gd_c["epochs_to_target"] or math.inf)
    comparison_text = (
        f"One epoch of batch GD is one update computed from all {n_tr} examples; one epoch of mini-batch GD is "
        f"{mb[0]['steps_per_epoch']} updates from {chosen['batch_size']} examples each. Per *update*, the full "
        "batch gives the more accurate gradient, so it makes more progress per step (right panel); per *epoch*, "
        f"a pass over the data and what costs time, mini-batch makes {mb[0]['steps_per_epoch']} noisy steps where "
        f"batch GD makes one. Each mini-batch step is noisy, so it needs a smaller learning rate "
        f"({chosen['mb_lr']:g} vs {chosen['gd_lr']:g}) and its curves stay a little wavy. "
        + (
            f"Here mini-batch reached the target in {mb_c['epochs_to_target']} epochs against "
            f"{gd_c['epochs_to_target']} for batch GD."
            if faster
            else "Here batch GD reached the target in fewer epochs."
        )
    )
    tr = _subset(data.y_train, cfg["n_train"], R["data_seed"])
    va = _subset(data.y_val, cfg["n_val"], R["data_seed"])
    counts = class_counts(data.y_train[tr], data.y_val[va], data.y_test)
    return f"""# Softmax-only classifier on Fashion-MNIST: batch vs mini-batch gradient descent
{quick}
One `Dense(784, 10)` layer, softmax cross-entropy on its logits, plain SGD. Weights start from
N(0, std 1/sqrt(784)), biases at 0. Everything below was measured by this run
({R["train_seconds"]:.0f} s of training over all runs, {len(gd)} seeds).

## 0. The data

Fashion-MNIST: 28x28 grey images of clothing in 10 balanced classes. The official 60000 training
images are split **stratified** (seeded) into {n_tr} train and {n_va} validation images; the official
10000 test images are used only once, for the final model.

{md_table(["class", "train", "validation", "test"], counts)}

{fig("data_examples")}

## 1. Input normalisation

Each pixel becomes a float in [0, 1]. Batch gradient descent on raw pixels is badly conditioned:
every pixel is non-negative (root-mean-square {math.sqrt(msq_raw):.2f}), so all inputs share one large common
direction, the loss surface is a long narrow valley, and the learning rate that is stable along the
steep direction is far too small along the others. **Centring** (subtracting each pixel's training
mean) removes that common direction; **standardising** also divides by each pixel's standard
deviation, which equalises the scales but blows up near-constant border pixels (a pixel that is
almost always 0 gets a huge value the few times it is not). Each option at its best learning rate
after {cfg["gd_sweep_epochs"]} epochs of batch gradient descent (one seed):

{md_table(["inputs", "best lr", "loss at start", "validation loss", "validation accuracy"], norm_rows)}

{fig("normalisation")}

{chosen_text} The statistics are
fitted on the training part only and applied unchanged to validation and test.

## 2. Where the loss starts

Before any update, each logit is a sum of 784 inputs times N(0, 1/784) weights, so its variance is
the mean squared input, s^2 = mean(x^2). With all logits 0 the loss would be exactly
ln(10) = {LN10:.4f}. Random logits with variance s^2 raise it: to second order the expected loss is
ln(10) + (1 - 1/10) s^2 / 2. On raw pixels s^2 = {msq_raw:.3f}, predicting {LN10 + 0.45 * msq_raw:.3f}; on the
{norm} inputs used here s^2 = {msq:.3f}, predicting **{LN10 + 0.45 * msq:.4f}**. Measured over the {
        len(gd)
    } seeds:
mean **{np.mean(init):.4f}** (min {min(init):.4f}, max {max(init):.4f}).

Why this initialisation suits the model: with std 1/sqrt(n_in) the logits start with a variance
equal to the mean squared input, order 1 or below, so the softmax starts nearly uniform (no class is
confidently wrong, the loss starts near its uninformed value ln 10) and its gradient P - Y is not
saturated. Much larger weights would start confidently wrong with a large loss; zero weights would
also work for this convex model (every seed would then be identical, which is why multi-seed
studies need random starts).

## 3-4. Batch and mini-batch gradient descent

**Learning rates** were chosen by a short sweep on the validation set (one seed; batch GD for
{cfg["gd_sweep_epochs"]} epochs, mini-batch for {
        cfg["mb_sweep_epochs"]
    } epochs), keeping the lowest validation loss:

{md_table(["method", "lr", "validation loss", "validation accuracy"], lr_rows)}

{fig("lr_sweep")}

{epochs_text}

{
        md_table(
            [
                "seed",
                "loss at start",
                "batch GD best epoch",
                "batch GD val. accuracy",
                "mini-batch best epoch",
                "mini-batch val. accuracy",
            ],
            seed_rows,
        )
    }

{fig("curves_gd")}

{fig("curves_mb")}

**Batch vs mini-batch.** A target validation loss both reach on the mean curve, {target:.4f}:

{
        md_table(
            [
                "method",
                "lr",
                "epochs to target",
                "updates to target",
                "train seconds to target",
                "best epoch (mean ± std)",
                "train seconds (all epochs)",
                "best val. loss",
                "best val. accuracy",
            ],
            comp_rows,
        )
    }

{fig("batch_vs_minibatch")}

{comparison_text}

## 5. The final model

Chosen on validation: the run with the highest validation accuracy at its best epoch, which is
{final_name}, seed {final["seed"]} (validation accuracy {
        final["val_accuracy"]:.4f}). On the official test set it scores:

**test accuracy {sys_["accuracy"]:.4f}**; macro precision {sys_["macro_precision"]:.4f}, recall {
        sys_["macro_recall"]:.4f}, F1 {sys_["macro_f1"]:.4f};
micro precision = recall = F1 = accuracy = {
        sys_["micro_f1"]:.4f} (each test image has exactly one label and one
prediction, so micro averages all equal the accuracy).

{md_table(["class", "accuracy (= recall)", "precision", "recall", "F1", "support"], per_class_rows)}

Per-class accuracy here is the fraction of that class's test images classified correctly, i.e. its recall.

{fig("confusion_matrix")}

{fig("per_class")}

The pairs of classes most often confused (true -> predicted):

{confused}

Shirts, T-shirts, pullovers and coats share one silhouette, and a linear model sees only a weighted
sum of pixels; footwear and bags, with distinct shapes, are nearly always right.

## 6. What the weights look like

{fig("weights")}

Each panel is the template the model matches against an image: where a pixel is brighter than
its training mean ({centred_note}), red weights raise the class's score and blue weights
lower it. The shapes are recognisable: trouser legs with a blue gap between them (a bright middle
column argues against trousers), the outline of sneakers and ankle boots low in the frame, a bag's
wide body. Much of each template is about where a class differs from its look-alikes, which is why
the upper-body garments (T-shirt, pullover, coat, shirt) look less like their pictures. The
speckle comes from having one free weight per pixel and no penalty on the weights: pixels that are
rarely lit get weights set by the few images that light them.

---
Reproduce: `python -m experiments.softmax_only{
        " --quick" if R["quick"] else ""
    }`; redraw from saved results with `--plot-only`.
"""


def summary_table(M: dict) -> str:
    """The short summary printed at the end of a run."""
    gd_c, mb_c = M["comparison"]
    table = md_table(
        ["", "batch GD", f"mini-batch {M['hyperparameters']['batch_size']}"],
        [
            ["learning rate", f"{gd_c['lr']:g}", f"{mb_c['lr']:g}"],
            ["best epoch (mean)", f"{gd_c['best_epoch_mean']:.1f}", f"{mb_c['best_epoch_mean']:.1f}"],
            ["best val. accuracy (mean)", gd_c["val_accuracy_best_mean"], mb_c["val_accuracy_best_mean"]],
            [
                "train seconds per seed",
                f"{gd_c['train_seconds_mean']:.2f}",
                f"{mb_c['train_seconds_mean']:.2f}",
            ],
        ],
    )
    return (
        f"{table}\n\ninitial loss {M['initial_loss']:.4f} (ln 10 = {LN10:.4f}); final model: "
        f"{M['final_model']['kind']} seed {M['final_model']['seed']}; test accuracy {M['test_accuracy']:.4f}"
    )


def main(argv: list[str] | None = None) -> dict:
    parser = make_parser(NAME, __doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, help="number of seeds (default 10, quick 2)")
    parser.add_argument(
        "--epochs", type=int, help="maximum epochs of every seed run (default: 200 batch GD, 30 mini-batch)"
    )
    parser.add_argument("--lr", type=float, help="batch GD learning rate (default: chosen by the sweep)")
    parser.add_argument("--mb-lr", type=float, help="mini-batch learning rate (default: chosen by the sweep)")
    parser.add_argument("--batch-size", type=int, help="mini-batch size (default 32)")
    parser.add_argument(
        "--normalisation",
        choices=list(NORMALISATION_NAMES),
        help="input normalisation: raw [0, 1] pixels, centred, or standardised per pixel (default: chosen by the sweep)",
    )
    args = parser.parse_args(argv)
    cfg = dict(QUICK if args.quick else FULL)
    if args.seeds:
        cfg["seeds"] = args.seeds
    args.out.mkdir(parents=True, exist_ok=True)
    return run_and_plot(
        args,
        lambda a: run(a, cfg),
        plot,
        summary_table,
        name=NAME,
        resume_hint=f"the finished trainings are saved in {args.out / 'runs'}, and the same command resumes from them",
    )


if __name__ == "__main__":
    main()
