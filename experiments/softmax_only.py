"""The main job: a softmax-only classifier on Fashion-MNIST, batch vs mini-batch gradient descent.

One ``Dense(784, 10)`` layer, softmax cross-entropy, SGD: the data, input normalisation, the
starting loss, batch vs mini-batch GD over 10 seeds, and a final model chosen on validation,
refit on all 60000 training images and scored once on the test set.

    python -m experiments.softmax_only            # the full study (about 2.5 minutes on 2 cores)
    python -m experiments.softmax_only --quick    # a smoke run in seconds
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np

from experiments import study
from minidl import SGD, Dense, Sequential, SoftmaxCrossEntropy, fit, metrics, plots
from minidl.callbacks import EarlyStopping, EpochAverage, ExponentialDecay
from minidl.train import evaluate, predict

NAME = "softmax_only"
FULL = {
    "seeds": 10,
    "n_train": None,  # None: all 50000 train images of the split (a number: a stratified subset)
    "n_val": None,  # None: all 10000 validation images
    "normalisations": ["raw", "centre", "standardise"],
    # normalisation, learning rates: the lowest validation loss after a short run of one seed
    "gd_lrs": [0.1, 0.3, 1.0, 3.0], "gd_sweep_epochs": 50,
    "mb_lrs": [0.01, 0.03, 0.1, 0.3], "mb_sweep_epochs": 3, "batch_size": 32,
    # epochs: early stopping on the validation loss (patience epochs without a min_delta gain)
    "gd_max_epochs": 200, "gd_patience": 10, "mb_max_epochs": 30, "mb_patience": 3, "min_delta": 1e-4,
    # the final model: mini-batch SGD, its settings chosen on validation, refit with a few seeds
    "final_lrs": [0.1, 0.3], "final_decays": [1.0, 0.8], "final_weight_decays": [0.0, 1e-4],
    "final_max_epochs": 20, "refit_seeds": 3, "n_refit": None,  # None: the refit sees all 60000 images
}  # fmt: skip
QUICK = {**FULL, "seeds": 2, "n_train": 5000, "n_val": 2000, "gd_lrs": [0.3, 1.0], "gd_sweep_epochs": 8,
         "mb_lrs": [0.01, 0.03], "mb_sweep_epochs": 1, "gd_max_epochs": 15, "gd_patience": 3,
         "mb_max_epochs": 3, "mb_patience": 2, "final_lrs": [0.3], "final_decays": [0.8],
         "final_max_epochs": 3, "refit_seeds": 2, "n_refit": 7000}  # fmt: skip
NORMALISATION_NAMES = {"raw": "raw [0, 1]", "centre": "centred", "standardise": "standardised"}
OLD_TEST_ACCURACY = 0.8407  # the old final model: the seed-study run with the best validation accuracy
FIGURES = ("data_examples", "normalisation", "lr_sweep", "curves_gd", "curves_mb", "batch_vs_minibatch",
           "final_selection", "confusion_matrix", "per_class", "weights")  # fmt: skip


# ---- one training (a top-level function: it runs in a worker process) ------------------------------
def train_one(normalisation: str, lr: float, batch_size: int | None, epochs: int, seed: int, data_seed: int,
              n_train: int | None, n_val: int | None, patience: int = 0, min_delta: float = 0.0,
              decay: float = 1.0, weight_decay: float = 0.0, average: bool = False,
              keep: bool = False) -> dict:  # fmt: skip
    """One training; ``average``: score each epoch's mean weights too, ``keep``: return the final weights."""
    data = study.load_data(normalisation, n_train, n_val, data_seed)
    streams = study.seed_streams(seed)
    model = Sequential([Dense(784, 10, rng=streams["weights"])])
    optimizer = SGD(model.parameters(), lr=lr, weight_decay=weight_decay)
    tail = EpochAverage()
    callbacks = [ExponentialDecay(optimizer, decay), *([tail] if average else [])]
    if patience:
        callbacks.append(EarlyStopping("val_loss", patience=patience, min_delta=min_delta))
    validation = (data.X_val, data.y_val) if len(data.y_val) else None
    history = fit(model, data.X_train, data.y_train, loss=SoftmaxCrossEntropy(), optimizer=optimizer,
                  epochs=epochs, batch_size=batch_size, validation_data=validation, callbacks=callbacks,
                  rng=streams["order"], verbose=0)  # fmt: skip
    update_x, update_loss = plots.log_block_means(history.step_loss)  # every update's loss, in block means
    extra = {"update_x": update_x, "update_loss": update_loss, "n_train": len(data.y_train),
             "mean_sq_input": float(np.mean(np.square(data.X_train, dtype=np.float64)))}  # fmt: skip
    if keep:
        extra["arrays"] = tail.averages[-1] if average else model.state_dict()
    if average and validation:
        extra["avg_val_accuracy"] = []
        for state in tail.averages:
            model.load_state_dict(state)
            extra["avg_val_accuracy"].append(evaluate(model, *validation, SoftmaxCrossEntropy())["accuracy"])
    return study.record(history, **extra)


# ---- the study: sweeps -> seeds and final candidates -> refit -> the test set, once ------------------
def end_val_loss(rec: dict) -> float:
    """The validation loss at the end of a run (infinite if it diverged)."""
    last = rec["history"]["val_loss"][-1]
    return math.inf if rec["diverged"] or last is None else last


def best_lr(sweep: dict, settings: dict, kind: str, norm: str) -> float:
    """The swept learning rate of ``kind`` ("gd" or "mb") with the lowest final validation loss."""
    return min(settings[f"{kind}_lrs"], key=lambda lr: end_val_loss(sweep[f"sweep-{kind}-{norm}-lr{lr:g}"]))


def choose_final(candidates: dict[str, dict]) -> dict:
    """The candidate, weights (the last, or the epoch's average) and epoch count with the highest
    validation accuracy; ties go to fewer epochs."""
    options = [(acc, -epoch, key, average) for key, c in candidates.items() for average in (False, True)
               for epoch, acc in enumerate(c[("val_accuracy", "avg_val_accuracy")[average]], 1)]  # fmt: skip
    acc, epochs, key, average = max(options)
    return {"key": key, "average": average, "epochs": -epochs, "val_accuracy": acc}


def run(job: study.Study, settings: dict) -> dict:
    s, data_seed = settings, job.args.data_seed
    base = {"n_train": s["n_train"], "n_val": s["n_val"], "data_seed": data_seed, "seed": 0}
    study.log("stage 1/3: learning-rate sweeps, one seed (batch GD per normalisation, mini-batch GD)")
    batch = {"gd": None, "mb": s["batch_size"]}
    tasks = {f"sweep-{k}-{n}-lr{lr:g}": {**base, "normalisation": n, "lr": lr, "batch_size": batch[k],
                                          "epochs": s[k + "_sweep_epochs"]}
             for n in s["normalisations"] for k in ("gd", "mb") for lr in s[k + "_lrs"]}  # fmt: skip
    sweep = job.train(train_one, tasks)
    lrs = {norm: best_lr(sweep, s, "gd", norm) for norm in s["normalisations"]}
    norm = min(lrs, key=lambda n: end_val_loss(sweep[f"sweep-gd-{n}-lr{lrs[n]:g}"]))
    gd_lr, mb_lr = lrs[norm], best_lr(sweep, s, "mb", norm)
    study.log(f"chosen: {NORMALISATION_NAMES[norm]} inputs, batch GD lr {gd_lr:g}, mini-batch lr {mb_lr:g}")

    study.log(f"stage 2/3: {s['seeds']} seeds x (batch GD, mini-batch GD), and the final model's candidates")
    base |= {"normalisation": norm, "min_delta": s["min_delta"]}
    gd = {"lr": gd_lr, "batch_size": None, "epochs": s["gd_max_epochs"], "patience": s["gd_patience"]}
    tasks = {f"gd-seed{i}": {**base, **gd, "seed": i} for i in range(s["seeds"])}  # the long runs first
    for lr, decay, wd in itertools.product(s["final_lrs"], s["final_decays"], s["final_weight_decays"]):
        task = {"lr": lr, "decay": decay, "weight_decay": wd, "batch_size": s["batch_size"], "average": True}
        tasks[f"final-lr{lr:g}-decay{decay:g}-wd{wd:g}"] = {**base, **task, "epochs": s["final_max_epochs"]}
    mb = {"lr": mb_lr, "batch_size": s["batch_size"], "epochs": s["mb_max_epochs"],
          "patience": s["mb_patience"]}  # fmt: skip
    tasks |= {f"mb-seed{i}": {**base, **mb, "seed": i} for i in range(s["seeds"])}
    runs = job.train(train_one, tasks)
    candidates = {key: {**{k: tasks[key][k] for k in ("lr", "decay", "weight_decay")}, "val_accuracy":
                        r["history"]["val_accuracy"][1:], "avg_val_accuracy": r["avg_val_accuracy"],
                        "label": "lr {lr:g}, decay {decay:g}, wd {weight_decay:g}".format(**tasks[key])}
                  for key, r in runs.items() if key.startswith("final-")}  # fmt: skip

    best = choose_final(candidates)
    study.log(f"stage 3/3: {best['key']}, {best['epochs']} epochs, refit on all training images")
    refit = {**tasks[best["key"]], "epochs": best["epochs"], "average": best["average"], "keep": True}
    refit |= {"n_train": s["n_refit"], "n_val": 0}
    refits = job.train(train_one, {f"refit-seed{i}": {**refit, "seed": i} for i in range(s["refit_seeds"])})
    weights = [r["arrays"] for r in refits.values()]
    weights.append({k: np.mean([w[k] for w in weights], axis=0) for k in weights[0]})  # the final model
    data, losses = study.load_data(norm, s["n_refit"], 0, data_seed), []
    model = Sequential([Dense(784, 10, rng=0)])  # its initial weights are replaced
    for w in weights:  # the training loss of each refit and of their mean
        model.load_state_dict(w)
        losses.append(evaluate(model, data.X_train, data.y_train, SoftmaxCrossEntropy())["loss"])
    X_test, y_test, _ = study.test_set(data)  # the one look at the test set, for the final model
    y_pred = predict(model, X_test, labels=True)

    job.save_arrays("final", {"W": model.layers[0].W.value})
    seen = study.load_data(norm, s["n_train"], s["n_val"], data_seed)
    return {
        "chosen": {"normalisation": norm, "gd_lr": gd_lr, "mb_lr": mb_lr, "batch_size": s["batch_size"]},
        "sweep": sweep,
        **{kind: [runs[f"{kind}-seed{i}"] for i in range(s["seeds"])] for kind in ("gd", "mb")},
        "candidates": candidates,
        "final": {**best, "n_refit": len(data.y_train), "refit_losses": losses, "y_test": y_test.tolist(),
                  "y_pred": y_pred.tolist()},
        "class_counts": [np.bincount(y, minlength=10).tolist() for y in (seen.y_train, seen.y_val, y_test)],
        "data_seed": data_seed, "train_seconds": job.train_seconds,
    }  # fmt: skip


# ---- summary: plain numbers from the results ---------------------------------------------------------
def common(curves: list[list[float]]) -> np.ndarray:
    """Curves cut to the part all have (seeds stop at different epochs): an array (seeds, steps)."""
    return np.array([c[: min(len(c) for c in curves)] for c in curves], dtype=float)


def method_summary(runs: list[dict], target: float, label: str) -> dict:
    """One method's seeds: when the mean validation loss (over the epochs all seeds ran) first
    reaches ``target``, the scores at each seed's best epoch, the batch loss against updates."""
    hits = np.flatnonzero(common([r["history"]["val_loss"] for r in runs]).mean(0) <= target)
    e = int(hits[0]) if hits.size else None
    seconds = [np.cumsum([0, *r["epoch_time"]]) for r in runs]  # training time after each epoch
    losses = common([r["update_loss"] for r in runs])  # (seeds, points): block means of the batch losses
    return {
        "label": label, "epochs_to_target": e, "updates_to_target": e and e * runs[0]["steps_per_epoch"],
        "seconds_to_target": e and float(np.mean([t[e] for t in seconds])),
        "train_seconds_mean": float(np.mean([t[-1] for t in seconds])),
        "best_epoch": [r["best_epoch"] for r in runs],
        "best_val_loss": [r["history"]["val_loss"][r["best_epoch"]] for r in runs],
        "best_val_accuracy": [r["history"]["val_accuracy"][r["best_epoch"]] for r in runs],
        "stopped_early": sum(r["stop_reason"] is not None for r in runs),
        "steps_per_epoch": runs[0]["steps_per_epoch"], "histories": [r["history"] for r in runs],
        "by_update": [runs[0]["update_x"][:losses.shape[1]], losses.mean(0).tolist(), losses.std(0).tolist()],
    }  # fmt: skip


def summarise(results: dict) -> dict:
    s, chosen, sweep, final = results["settings"], results["chosen"], results["sweep"], results["final"]
    seeds, norm = {kind: results[kind] for kind in ("gd", "mb")}, chosen["normalisation"]

    def row(kind: str, norm: str, lr: float) -> dict:
        r = sweep[f"sweep-{kind}-{norm}-lr{lr:g}"]
        return {"lr": lr, "diverged": r["diverged"], "start_loss": r["history"]["loss"][0],
                "val_loss": end_val_loss(r), "val_accuracy": r["history"]["val_accuracy"][-1],
                "curve": r["history"]["val_loss"], "mean_sq_input": r["mean_sq_input"]}  # fmt: skip

    target = max(common([r["history"]["val_loss"] for r in runs]).mean(0).min() for runs in seeds.values())
    y_test, y_pred = np.array(final["y_test"]), np.array(final["y_pred"])
    cm = metrics.confusion_matrix(y_test, y_pred, 10)
    P, R, F = metrics.precision_recall_f1(y_test, y_pred, 10)
    system = {"accuracy": metrics.accuracy(y_test, y_pred)}
    for avg in ("macro", "micro"):
        scores = metrics.precision_recall_f1(y_test, y_pred, 10, average=avg)
        system |= {f"{avg}_{k}": v for k, v in zip(("precision", "recall", "f1"), scores, strict=True)}
    return {
        "test_accuracy": system["accuracy"], "old_test_accuracy": OLD_TEST_ACCURACY,
        "gain_over_old": system["accuracy"] - OLD_TEST_ACCURACY,
        "quick": results["quick"], "seconds": results["seconds"], "train_seconds": results["train_seconds"],
        "settings": s, "chosen": chosen, "data_seed": results["data_seed"],
        "class_counts": results["class_counts"],
        "normalisation": {n: row("gd", n, best_lr(sweep, s, "gd", n)) for n in s["normalisations"]},
        "lr_sweep": {k: [row(k, norm, lr) for lr in s[k + "_lrs"]] for k in seeds},
        "initial_loss_per_seed": [r["history"]["loss"][0] for r in seeds["gd"]],
        "mean_sq_input": (msq := seeds["gd"][0]["mean_sq_input"]),
        "initial_loss_predicted": math.log(10) + (1 - 1 / 10) * msq / 2,  # ln K + (1 - 1/K) s^2 / 2
        "target_val_loss": float(target),  # a validation loss both mean curves reach
        "gd": method_summary(seeds["gd"], target, "Batch GD"),
        "mb": method_summary(seeds["mb"], target, f"Mini-batch GD (batch {chosen['batch_size']})"),
        "final": {**{k: v for k, v in final.items() if k not in ("y_test", "y_pred")},
                  **{k: results["candidates"][final["key"]][k] for k in ("lr", "decay", "weight_decay")},
                  "candidates": results["candidates"]},
        "system": system,
        "per_class": {name: {"precision": P[k], "recall": R[k], "f1": F[k], "support": int(cm[k].sum())}
                      for k, name in enumerate(study.CLASS_NAMES)},
        "confusion_matrix": cm.tolist(),
        "most_confused": metrics.most_confused_pairs(cm, k=5, class_names=list(study.CLASS_NAMES)),
    }  # fmt: skip


# ---- figures -------------------------------------------------------------------------------------------
# fmt: off
def figures(m: dict, out: Path) -> None:
    saved, chosen, names = study.load_arrays(out, "final"), m["chosen"], list(study.CLASS_NAMES)
    label = {kind: f"{m[kind]['label']}, lr {chosen[kind + '_lr']:g}" for kind in ("gd", "mb")}
    seen = study.load_data("raw", m["settings"]["n_train"], m["settings"]["n_val"], m["data_seed"])
    plots.class_examples(seen.images_train, seen.y_train, names, 10, 0, out / "data_examples.png",
                         "Fashion-MNIST: ten training images per class")
    curves = {f"{NORMALISATION_NAMES[n]}, lr {r['lr']:g}": (range(len(r["curve"])), r["curve"], None)
              for n, r in m["normalisation"].items()}
    title = f"Batch GD: input normalisation ({m['settings']['gd_sweep_epochs']} epochs, seed 0)"
    plots.compare_curves(curves, xlabel="epoch", ylabel="validation loss", title=title,
                         path=out / "normalisation.png")
    fig = plots.new_figure(12, 4.5)
    for ax, kind in zip(fig.subplots(1, 2), ("gd", "mb"), strict=True):  # a diverged run's None: a gap
        curves = {f"lr {r['lr']:g}{' (diverged)' * r['diverged']}": (range(len(r["curve"])), r["curve"], None)
                  for r in m["lr_sweep"][kind]}
        title = f"{m[kind]['label']}: learning rates ({NORMALISATION_NAMES[chosen['normalisation']]} inputs)"
        plots.compare_curves(curves, xlabel="epoch", ylabel="validation loss", ax=ax, title=title)
    plots.save_figure(fig, out / "lr_sweep.png")
    for kind in ("gd", "mb"):
        histories = m[kind]["histories"]
        fig = plots.learning_curves_grid(histories, title=f"{label[kind]}, {len(histories)} seeds")
        for ax, key in zip(fig.axes, ("loss", "accuracy"), strict=False):  # the y axis starts after epoch 0
            later = np.array([v for h in histories for k in (key, "val_" + key) for v in h[k][1:]], float)
            lo, hi = np.nanmin(later), np.nanmax(later)
            ax.set_ylim(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
        plots.save_figure(fig, out / f"curves_{kind}.png")

    fig = plots.new_figure(12, 4.5)
    left, right = fig.subplots(1, 2)
    curves = {label[k]: plots.mean_std(m[k]["histories"], "val_loss")[:2] for k in ("gd", "mb")}
    curves = {k: (range(len(mean)), mean, std) for k, (mean, std) in curves.items()}
    plots.compare_curves(curves, xlabel="epoch", ylabel="validation loss", ax=left,
                         title=f"Validation loss vs epochs (mean ± std, {len(m['gd']['histories'])} seeds)")
    curves = {label[k]: (np.array(m[k]["by_update"][0]) + 1, *m[k]["by_update"][1:]) for k in ("gd", "mb")}
    plots.compare_curves(curves, xlabel="update step (log scale)", ylabel="training loss of the batch",
                         logx=True, ax=right, title="Training loss vs updates (block means of batch losses)")
    plots.save_figure(fig, out / "batch_vs_minibatch.png")

    fig = plots.new_figure(12, 4.8)
    panels = {"val_accuracy": "its last weights", "avg_val_accuracy": "its weights averaged over the epoch"}
    for ax, (key, what) in zip(fig.subplots(1, 2, sharey=True), panels.items(), strict=True):
        curves = {c["label"]: (range(1, len(c[key]) + 1), c[key], None)
                  for c in m["final"]["candidates"].values()}
        plots.compare_curves(curves, xlabel="epoch", ylabel="validation accuracy", ax=ax,
                             title=f"Each candidate, {what}")
        legend = ax.get_legend()  # one legend for both, below them, off the curves
        legend.remove()
    labels = [text.get_text() for text in legend.get_texts()]
    fig.legend(legend.legend_handles, labels, loc="outside lower center", ncols=4, frameon=False)
    plots.save_figure(fig, out / "final_selection.png")

    plots.confusion_matrices(np.array(m["confusion_matrix"]), names, out / "confusion_matrix.png",
                             "Final softmax-only model on the 10000 test images")
    scores = {k: [c[k] for c in m["per_class"].values()] for k in ("precision", "recall", "f1")}
    plots.bar_compare(names, scores, ylabel="score", path=out / "per_class.png",
                      title="Per-class precision, recall and F1 on the test set")
    plots.weight_images(saved["W"], names, path=out / "weights.png",
                        title="Final model's weights: column k of W as a 28x28 image (red +, blue -)")
# fmt: on


# ---- the report: the values of reports/softmax_only.md -----------------------------------------------
def epochs_text(m: dict) -> str:
    stopped, n, cap = m["gd"]["stopped_early"], len(m["gd"]["histories"]), m["settings"]["gd_max_epochs"]
    if stopped:
        return f"Batch GD met it in {stopped} of {n} seeds."
    return (f"Batch GD never met it: in all {n} seeds the validation loss was still falling at epoch {cap}, "
            "so the cap decided (more epochs would still help it, slowly).")  # fmt: skip


def comparison_text(m: dict) -> str:
    gd, mb = (m[k]["epochs_to_target"] or math.inf for k in ("gd", "mb"))
    faster = f"mini-batch reached the target in {mb} epochs against {gd} for batch GD"
    return f"Here {faster if mb < gd else 'batch GD reached the target in fewer epochs'}."


def final_text(m: dict) -> str:
    f = m["final"]
    decay = f"multiplied by {f['decay']:g} after every epoch" if f["decay"] < 1 else "constant"
    weights = "the average of its weights over the last epoch" if f["average"] else "its last weights"
    return (f"mini-batch SGD (batch {m['chosen']['batch_size']}), learning rate {f['lr']:g} {decay}, "
            f"weight decay {f['weight_decay']:g}, {f['epochs']} epochs, keeping {weights}")  # fmt: skip


# fmt: off
def report(m: dict) -> dict:
    """The tables and sentences of reports/softmax_only.md (its numbers it reads from ``m`` itself)."""
    chosen, f, system, table = m["chosen"], m["final"], m["system"], study.md_table
    init, n, gd, mb = m["initial_loss_per_seed"], [sum(c) for c in m["class_counts"]], m["gd"], m["mb"]
    counts = [[name, *(c[k] for c in m["class_counts"])] for k, name in enumerate(study.CLASS_NAMES)]
    normalisation = [[NORMALISATION_NAMES[k], f"{r['lr']:g}", r["start_loss"], r["val_loss"],
                      r["val_accuracy"]] for k, r in m["normalisation"].items()]
    lrs = [[m[k]["label"], f"{r['lr']:g}", "diverged" if r["diverged"] else r["val_loss"],
            None if r["diverged"] else r["val_accuracy"]] for k in ("gd", "mb") for r in m["lr_sweep"][k]]
    seeds = [[i, x, gd["best_epoch"][i], gd["best_val_accuracy"][i], mb["best_epoch"][i],
              mb["best_val_accuracy"][i]] for i, x in enumerate(init)]
    comparison = [[c["label"], f"{chosen[k + '_lr']:g}", c["epochs_to_target"], c["updates_to_target"],
                   c["seconds_to_target"], study.pm(c["best_epoch"], 1), c["train_seconds_mean"],
                   study.pm(c["best_val_loss"]), study.pm(c["best_val_accuracy"])]
                  for k, c in (("gd", gd), ("mb", mb))]
    candidates = [[c["label"], *(x for k in ("val_accuracy", "avg_val_accuracy")
                                    for x in (int(np.argmax(c[k])) + 1, max(c[k]), c[k][-1]))]
                  for c in f["candidates"].values()]
    per_class = [[name, v["precision"], v["recall"], v["f1"], v["support"]]
                 for name, v in m["per_class"].items()]
    per_class += [[f"{a} average", *(system[f"{a}_{k}"] for k in ("precision", "recall", "f1")), n[2]]
                  for a in ("macro", "micro")]
    msq_raw = m["normalisation"]["raw"]["mean_sq_input"]
    return {
        "quick_note": "\n> **Quick smoke run** (`--quick`): a small subset and few epochs; the numbers "
                      "below are not the study's.\n" if m["quick"] else "",
        "n_train": n[0], "n_val": n[1], "n_test": n[2], "rms_raw": f"{math.sqrt(msq_raw):.2f}",
        "pred_raw": f"{math.log(10) + 0.45 * msq_raw:.3f}", "init_mean": f"{np.mean(init):.4f}",
        "init_min": f"{min(init):.4f}", "init_max": f"{max(init):.4f}", "n_candidates": len(f["candidates"]),
        "norm_name": NORMALISATION_NAMES[chosen["normalisation"]],
        "chosen_val_loss": f"{m['normalisation'][chosen['normalisation']]['val_loss']:.4f}",
        "counts_table": table(["class", "train", "validation", "test"], [*counts, ["total", *n]]),
        "normalisation_table": table(["inputs", "best lr", "loss at start", "validation loss",
                                      "validation accuracy"], normalisation),
        "lr_table": table(["method", "lr", "validation loss", "validation accuracy"], lrs),
        "seed_table": table(["seed", "loss at start", "batch GD best epoch", "batch GD val. accuracy",
                             "mini-batch best epoch", "mini-batch val. accuracy"], seeds),
        "comparison_table": table(["method", "lr", "epochs to target", "updates to target",
                                   "train seconds to target", "best epoch (mean ± std)",
                                   "train seconds (all epochs)", "best val. loss", "best val. accuracy"],
                                  comparison),
        "candidates_table": table(["candidate", "last weights: best epoch", "val. accuracy",
                                   "after the last epoch", "epoch average: best epoch", "val. accuracy",
                                   "after the last epoch"], candidates),
        "per_class_table": table(["class", "precision", "recall (= class accuracy)", "F1", "support"],
                                 per_class),
        "confused": "\n".join(f"- true **{t}** predicted as **{p}**: {c} times"
                              for t, p, c in m["most_confused"]),
        "epochs_text": epochs_text(m), "comparison_text": comparison_text(m), "final_text": final_text(m),
        "refit_losses": ", ".join(f"{x:.4f}" for x in f["refit_losses"][:-1]),
        "refit_mean_loss": f"{f['refit_losses'][-1]:.4f}",
        "quick_flag": " --quick" if m["quick"] else "",
    }
# fmt: on


main = study.main_for(__name__)

if __name__ == "__main__":
    main()
