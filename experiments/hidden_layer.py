"""One hidden layer on Fashion-MNIST: how many hidden units, batch or mini-batch, and a final model.

The lab's questions, answered in ``report.md`` with the run's own numbers:
1. Softmax on one hidden layer of n ReLU units, n = 10 ... 500: validation accuracy (mean ± std
   over seeds) against n; which n is best? 2. Mini-batch against full-batch gradient descent, per
   epoch and per second. 3. The final model, its settings chosen on the validation split only (n,
   dropout, weight decay, learning-rate decay, epochs from early stopping), trained again with three
   seeds on all 60000 training images, scored once on the test set: confusion matrix, per-class and
   overall accuracy, precision, recall, F1. 4. What the hidden layer adds over the softmax-only
   model. 5. What the hidden units look at: their input weights as 28x28 images.
    python -m experiments.hidden_layer [--out DIR] [--quick] [--plot-only] [--workers N]

The softmax-only model: ``test_accuracy`` and, if there, ``per_class[<class>]["f1"]`` of
``<out>/../softmax_only/metrics.json``; without that file, ``Dense(784, 10)`` trained here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from experiments import study
from minidl import plots
from minidl.callbacks import EarlyStopping, ExponentialDecay
from minidl.data import scale_pixels
from minidl.layers import Dense, Dropout, ReLU
from minidl.losses import SoftmaxCrossEntropy
from minidl.metrics import confusion_matrix, most_confused_pairs
from minidl.model import Sequential
from minidl.optim import Adam
from minidl.sweep import default_workers
from minidl.train import fit, predict

NAME = "hidden_layer"
FULL = {
    "hidden": [10, 20, 50, 100, 200, 500],  # hidden units n compared on validation ...
    "seeds": [0, 1, 2],  # ... each with these seeds, this recipe (Adam, its step decayed per epoch) ...
    "recipe": {"batch_size": 128, "lr": 1e-3, "lr_decay": 0.9, "dropout": 0.3, "weight_decay": 0.0},
    "epochs": 15,  # ... and this many epochs
    "gd_hidden": 100,  # this n (one of "hidden") also with full batches and a constant step ...
    "gd_recipe": {"batch_size": None, "lr": 1e-2, "lr_decay": 1.0},
    "gd_epochs": 60,  # ... stopped here, converged or not
    "recipes": {  # the final model's candidates: changes to "recipe" with n the best on validation
        "as above": {},
        "weight decay 1e-4": {"weight_decay": 1e-4},
        "1000 units, dropout 0.4": {"hidden": 1000, "dropout": 0.4},
    },
    "max_epochs": 30,  # a candidate trains at most this long, and stops early ...
    "patience": 6,  # ... after this many epochs without a better validation accuracy
    "refit_seeds": [0, 1, 2],  # the final model: the chosen candidate trained on every training image
    "data": {"n_train": None, "n_val": None},  # None: all 50000 train and 10000 validation images
    "refit_n_train": None,  # None: all 60000
    "n_weight_images": 20,
}
QUICK = {**FULL, "hidden": [10, 50], "seeds": [0, 1], "epochs": 3, "gd_hidden": 10, "gd_epochs": 4,
         "max_epochs": 4, "patience": 2, "refit_seeds": [0, 1], "data": {"n_train": 2000, "n_val": 1000},
         "refit_n_train": 3000, "n_weight_images": 10}  # fmt: skip


def build(hidden: int, dropout: float, streams: dict[str, np.random.Generator]) -> Sequential:
    """``Dense(784, n) -> ReLU -> Dropout -> Dense(n, 10)`` (logits); ``hidden=0``: ``Dense(784, 10)``."""
    w, d = streams["weights"], streams["dropout"]
    if hidden == 0:
        return Sequential([Dense(784, 10, rng=w)])
    return Sequential([Dense(784, hidden, rng=w), ReLU(), Dropout(dropout, rng=d), Dense(hidden, 10, rng=w)])


def train_one(
    seed: int, recipe: dict, data: dict, epochs: int, patience: int = 0, keep: bool = False
) -> dict[str, Any]:
    """One training with Adam: ``recipe`` holds the hidden units and the optimiser's settings, ``data``
    ``load_data``'s ``n_train, n_val, data_seed`` (``n_val=0``: all training images, no validation).
    ``patience`` stops early on validation accuracy, keeping the best epoch; ``keep`` returns the weights."""
    split = study.load_data("standardise", **data)
    streams = study.seed_streams(seed)
    model = build(recipe["hidden"], recipe["dropout"], streams)
    W_start = model.layers[0].W.value.copy()
    optimizer = Adam(model.parameters(), lr=recipe["lr"], weight_decay=recipe["weight_decay"])
    callbacks = [ExponentialDecay(optimizer, recipe["lr_decay"])]
    if patience:
        callbacks.append(EarlyStopping("val_accuracy", patience=patience))
    validation = (split.X_val, split.y_val) if data["n_val"] != 0 else None
    history = fit(model, split.X_train, split.y_train, loss=SoftmaxCrossEntropy(), optimizer=optimizer,
                  epochs=epochs, batch_size=recipe["batch_size"], validation_data=validation,
                  callbacks=callbacks, rng=streams["order"], verbose=0)  # fmt: skip
    W = model.layers[0].W.value  # how far training moved each unit's weights, relative to their start
    moved = float(np.mean(np.linalg.norm(W - W_start, axis=0) / np.linalg.norm(W_start, axis=0)))
    keep_arrays = {"arrays": model.state_dict()} if keep else {}
    return study.record(history, n_parameters=model.n_parameters(), moved=moved, **keep_arrays)


def best_val(rec: dict[str, Any]) -> tuple[float, float]:
    """Validation and train accuracy at the best validation epoch (what early stopping keeps)."""
    i, h = 1 + int(np.argmax(rec["history"]["val_accuracy"][1:])), rec["history"]
    return h["val_accuracy"][i], h["accuracy"][i]


def read_softmax(path: Path) -> dict[str, Any] | None:
    """The softmax-only experiment's ``test_accuracy`` and per-class F1 (None: no such file)."""
    if not path.is_file():
        return None
    saved = json.loads(path.read_text(encoding="utf-8"))
    if "test_accuracy" not in saved:
        raise study.StudyError(f"{path} has no test_accuracy: run experiments.softmax_only again, or move it")
    per_class = saved.get("per_class") or {}
    f1 = [per_class[c]["f1"] for c in study.CLASS_NAMES] if len(per_class) == 10 else None
    return {"source": str(path), "test_accuracy": float(saved["test_accuracy"]), "f1": f1}


def run(st: study.Study, s: dict[str, Any]) -> dict[str, Any]:
    load, data = os.getloadavg()[0], {**s["data"], "data_seed": st.args.data_seed}
    # 1 and 2: every n x seed with mini-batches, one n with full batches, softmax only if not saved
    part1, r = {"data": data, "epochs": s["epochs"]}, s["recipe"]
    tasks = {f"n{n}-seed{i}": {**part1, "recipe": {**r, "hidden": n}, "seed": i}
             for n in s["hidden"] for i in s["seeds"]}  # fmt: skip
    gd = {"recipe": {**r, **s["gd_recipe"], "hidden": s["gd_hidden"]}, "epochs": s["gd_epochs"]}
    tasks |= {f"fullbatch-seed{i}": {**part1, **gd, "seed": i} for i in s["seeds"]}
    final = {"data": data, "epochs": s["max_epochs"], "patience": s["patience"], "keep": True}
    softmax = read_softmax(st.out.parent / "softmax_only" / "metrics.json")
    if softmax is None:
        tasks["softmax-only"] = {**final, "recipe": {**r, "hidden": 0, "dropout": 0.0}, "seed": 0}
    runs = st.train(train_one, tasks)
    val = {n: np.mean([best_val(runs[f"n{n}-seed{i}"])[0] for i in s["seeds"]]) for n in s["hidden"]}
    best_n = max(s["hidden"], key=lambda n: (val[n], -n))  # a tie goes to the smaller layer
    study.log(f"best on validation: n = {best_n} ({val[best_n]:.4f}); now the final model's candidates")

    # 3. the recipe and its epoch count, chosen on validation (seed 0); then the refit on all images
    names, recipes = list(s["recipes"]), [{**r, "hidden": best_n, **c} for c in s["recipes"].values()]
    tasks = {f"recipe{j}": {**final, "recipe": c, "seed": 0} for j, c in enumerate(recipes)}
    cand = st.train(train_one, tasks)
    chosen = int(np.argmax([best_val(cand[f"recipe{j}"])[0] for j in range(len(names))]))  # ties: the first
    epochs = cand[f"recipe{chosen}"]["best_epoch"]
    study.log(f"chosen: {names[chosen]}, {epochs} epochs; refitting on every training image")
    refit_data = {"n_train": s["refit_n_train"], "n_val": 0, "data_seed": data["data_seed"]}
    task = {"recipe": recipes[chosen], "data": refit_data, "epochs": epochs, "keep": True}
    refit = st.train(train_one, {f"refit-seed{i}": {**task, "seed": i} for i in s["refit_seeds"]})

    # The official test set, once: the refits; for comparison only (nothing is chosen by it) the
    # recipe of part 1 trained on the split with early stopping (the procedure without a refit)
    # and the softmax-only model, both normalised with the statistics of their own training data.
    X_test, y_test, images = study.test_set(study.load_data("standardise", **refit_data))
    X_split = study.load_data("standardise", **data).scaler.transform(scale_pixels(images))

    def logits(rec: dict[str, Any], hidden: int, X: np.ndarray) -> np.ndarray:
        model = build(hidden, 0.0, study.seed_streams(0))
        model.load_state_dict(rec["arrays"])
        return predict(model, X)

    def scored(rec: dict[str, Any], Z: np.ndarray | None = None) -> dict[str, Any]:
        """The run's record without its arrays, with its test accuracy and confusion matrix."""
        rec = {k: v for k, v in rec.items() if k != "arrays"}
        if Z is None:
            return rec
        cm = confusion_matrix(y_test, Z.argmax(axis=1), 10)
        return {**rec, "test_accuracy": float(np.trace(cm) / len(y_test)), "confusion_matrix": cm.tolist()}

    Z = {i: logits(refit[f"refit-seed{i}"], recipes[chosen]["hidden"], X_test) for i in s["refit_seeds"]}
    if softmax is None:
        rec = runs["softmax-only"]
        softmax = {"source": "trained here", **scored(rec, logits(rec, 0, X_split))}
    weights = refit[f"refit-seed{s['refit_seeds'][0]}"]["arrays"]
    st.save_arrays("final_weights", {"W1": weights["0.W"], "W2": weights["3.W"]})
    return {
        "sweep": {str(n): [runs[f"n{n}-seed{i}"] for i in s["seeds"]] for n in s["hidden"]},
        "fullbatch": [runs[f"fullbatch-seed{i}"] for i in s["seeds"]],
        "best_hidden": best_n,
        "recipes": {k: scored(cand[f"recipe{j}"]) for j, k in enumerate(names)},
        "chosen_recipe": names[chosen],
        "refit": {str(i): scored(refit[f"refit-seed{i}"], Z[i]) for i in s["refit_seeds"]},
        "no_refit": scored(cand["recipe0"], logits(cand["recipe0"], best_n, X_split)),
        "softmax": softmax,
        "run": {"data_seed": data["data_seed"], "load": [load, os.getloadavg()[0]],
                "train_seconds": st.train_seconds, "workers": st.args.workers or default_workers()},
    }  # fmt: skip


def prf(cm: np.ndarray) -> np.ndarray:
    """Per-class precision, recall and F1 (the rows) of a confusion matrix; 0/0 counts as 0."""
    tp = np.diag(cm).astype(float)
    P, R = tp / np.maximum(cm.sum(axis=0), 1), tp / np.maximum(cm.sum(axis=1), 1)
    return np.array([P, R, np.divide(2 * P * R, P + R, out=np.zeros(len(tp)), where=P + R > 0)])


def curve(runs: list[dict[str, Any]], key: str, x: Any = None) -> list[list[float]]:
    """``[x, mean, std]`` over runs of a history key, epoch by epoch (x: the epochs by default)."""
    mean, std, _ = plots.mean_std([r["history"] for r in runs], key)
    return [list(range(len(mean))) if x is None else list(x), mean.tolist(), std.tolist()]


def batch_numbers(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """What the mini-batch and full-batch runs are compared by (means over seeds)."""
    val, epochs = np.array([r["history"]["val_accuracy"] for r in runs]), len(runs[0]["epoch_time"])
    seconds = np.mean([np.cumsum([0.0, *r["epoch_time"]]) for r in runs], axis=0)
    return {
        "epochs": epochs, "updates": epochs * runs[0]["steps_per_epoch"], "seconds": seconds[-1],
        "epoch1": val[:, 1].mean(), "final": val[:, -1].mean(), "s_per_epoch": seconds[-1] / epochs,
        "final_loss": np.mean([r["history"]["loss"][-1] for r in runs]),
        "per_epoch": curve(runs, "val_accuracy"), "per_second": curve(runs, "val_accuracy", seconds),
    }  # fmt: skip


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    s, sweep, refit, sm = results["settings"], results["sweep"], results["refit"], results["softmax"]
    hidden, chosen = [int(n) for n in sweep], results["recipes"][results["chosen_recipe"]]
    final = {**s["recipe"], "hidden": results["best_hidden"], **s["recipes"][results["chosen_recipe"]]}
    scores = np.array([[best_val(r) for r in sweep[str(n)]] for n in hidden])  # (n, seed, val / train)
    acc, old = np.array([r["test_accuracy"] for r in refit.values()]), results["no_refit"]["test_accuracy"]
    cm = np.sum([r["confusion_matrix"] for r in refit.values()], axis=0)  # the refits' predictions pooled
    P, R, F = prf(cm)
    return {
        "test_accuracy": float(acc.mean()), "test_accuracy_std": float(acc.std()),
        "final_model": f"the mean test accuracy of {len(acc)} refits (seeds {', '.join(refit)})",
        "test_accuracy_per_seed": dict(zip(refit, acc.tolist(), strict=True)),
        "no_refit_test_accuracy": old, "gain": acc.mean() - old, "validation_accuracy": best_val(chosen)[0],
        "chosen_hidden": results["best_hidden"], "chosen_recipe": results["chosen_recipe"],
        **{f"final_{k}": v for k, v in final.items()}, "refit_epochs": chosen["best_epoch"], "hidden": hidden,
        "val_accuracy": scores[..., 0].tolist(), "train_acc": scores[..., 1].tolist(),
        "n_parameters": [sweep[str(n)][0]["n_parameters"] for n in hidden],
        "s_per_epoch": [float(np.mean([r["epoch_time"] for r in sweep[str(n)]])) for n in hidden],
        "recipes": {k: {"val": best_val(r)[0], "best_epoch": r["best_epoch"], "ran": len(r["epoch_time"]),
                        "curve": curve([r], "val_accuracy")} for k, r in results["recipes"].items()},
        "mb": batch_numbers(sweep[str(s["gd_hidden"])]), "gd": batch_numbers(results["fullbatch"]),
        "confusion_matrix": cm.tolist(),
        "per_class": {c: {"accuracy": R[k], "precision": P[k], "recall": R[k], "f1": F[k]}
                      for k, c in enumerate(study.CLASS_NAMES)},
        "macro_avg": {"precision": P.mean(), "recall": R.mean(), "f1": F.mean()},
        "softmax": {"source": sm["source"], "test_accuracy": sm["test_accuracy"],
                    "f1": sm["f1"] if "f1" in sm else prf(np.array(sm["confusion_matrix"]))[2].tolist()},
        "hidden_weights_moved": next(iter(refit.values()))["moved"],
        "curves": {k: {n: curve(r, k) for n, r in sweep.items()} for k in ("val_loss", "val_accuracy",
                                                                           "accuracy")},
        "refit_loss": curve(list(refit.values()), "loss"),
        "settings": s, "quick": results["quick"], "seconds": results["seconds"], **results["run"],
    }  # fmt: skip


FIGURES = ("val_curves", "curves_per_n", "accuracy_vs_hidden", "batch_vs_minibatch", "final_curves")
FIGURES += ("confusion_matrix", "compare_softmax", "hidden_weights")


def figures(m: dict[str, Any], out: Path) -> None:
    s, n, cv, r = m["settings"], m["chosen_hidden"], m["curves"], m["settings"]["recipe"]
    sd = f"mean ± std over {len(s['seeds'])} seeds"

    def panels(name: str, title: str, draw: list[tuple], ncols: int = 2) -> None:
        """A figure of curve panels ``(title, {label: [x, mean, std]}, ylabel[, xlabel])``; without
        an xlabel, x is the epoch from 1 (epoch 0, the untrained model, would squash the curves)."""
        rows = -(-len(draw) // ncols)
        fig = plots.new_figure(6.5 * ncols, 4.4 * rows)
        axes = fig.subplots(rows, ncols, squeeze=False).ravel()
        for ax, (sub, series, ylabel, *xlabel) in zip(axes, draw, strict=False):
            cut = {k: c if xlabel else [c[0][1:], c[1][1:], c[2][1:]] for k, c in series.items()}
            plots.compare_curves(cut, xlabel=(xlabel or ["epoch"])[0], ylabel=ylabel, title=sub, ax=ax)
        for ax in axes[len(draw) :]:
            ax.set_axis_off()
        fig.suptitle(title)
        plots.save_figure(fig, out / f"{name}.png")

    by_n = {k: {f"n = {h}": c for h, c in cv[k].items()} for k in cv}
    draw = [(None, by_n["val_loss"], "validation loss"), (None, by_n["val_accuracy"], "validation accuracy")]
    panels("val_curves", f"One hidden layer of n ReLU units, batches of {r['batch_size']} (Adam), {sd}", draw)
    draw = [(f"n = {h}", {"train": c, "validation": cv["val_accuracy"][h]}, "accuracy")
            for h, c in cv["accuracy"].items()]  # fmt: skip
    panels("curves_per_n", f"Train (dropout off) and validation accuracy for each n, {sd}", draw, ncols=3)
    series = {"validation": np.transpose(m["val_accuracy"]), "train": np.transpose(m["train_acc"])}
    plots.line_plot(m["hidden"], series, xlabel="hidden units n (log scale)", logx=True,
                    ylabel="accuracy at the best validation epoch", path=out / "accuracy_vs_hidden.png",
                    title=f"Accuracy vs hidden units, {sd}; best on validation: n = {n}")  # fmt: skip
    n = m["final_hidden"]  # from here on, the final model's
    runs = {f"{w}, n = {s['gd_hidden']}": m[k] for k, w in (("mb", "mini-batch"), ("gd", "full batch"))}
    draw = [("Per epoch", {k: v["per_epoch"] for k, v in runs.items()}, "validation accuracy", "epoch"),
            ("Per second of training", {k: v["per_second"] for k, v in runs.items()}, "validation accuracy",
             "training time (s, mean over seeds)")]  # fmt: skip
    title = f"Full batch (1 update/epoch, lr {s['gd_recipe']['lr']:g}, stopped after {s['gd_epochs']} epochs)"
    title += f" vs mini-batches of {r['batch_size']} (lr {r['lr']:g} x {r['lr_decay']:g} per epoch), {sd}"
    panels("batch_vs_minibatch", title, draw)
    cands = {f"{k} (best epoch {v['best_epoch']})": v["curve"] for k, v in m["recipes"].items()}
    refit = {f"{m['chosen_recipe']}, {m['refit_epochs']} epochs": m["refit_loss"]}
    draw = [("Candidates, early stopping on validation, seed 0", cands, "validation accuracy"),
            (f"Refit on all images, {len(s['refit_seeds'])} seeds", refit, "train loss")]  # fmt: skip
    panels("final_curves", "The final model: candidate and epochs chosen on validation, then the refit", draw)
    title = f"The refits (n = {n}) on the test images, predictions pooled: accuracy {m['test_accuracy']:.4f}"
    plots.confusion_matrices(m["confusion_matrix"], study.CLASS_NAMES, out / "confusion_matrix.png", title)
    sm, f1 = m["softmax"], [v["f1"] for v in m["per_class"].values()]
    names, mine, theirs = ["accuracy"], [m["test_accuracy"]], [sm["test_accuracy"]]
    if sm["f1"] is not None:  # the F1 of each class, their mean, and the accuracy
        names, mine, theirs = [*study.CLASS_NAMES, "macro F1", *names], [*f1, np.mean(f1), *mine], \
            [*sm["f1"], np.mean(sm["f1"]), *theirs]  # fmt: skip
    series, path = {"softmax only": theirs, f"one hidden layer, n = {n}": mine}, out / "compare_softmax.png"
    plots.bar_compare(names, series, ylabel="test score", title="Softmax only vs one hidden layer", path=path)
    W, k = study.load_arrays(out, "final_weights"), min(s["n_weight_images"], n)
    units = np.sort(np.argsort(-np.linalg.norm(W["W2"], axis=1), kind="stable")[:k])  # the loudest units
    title = f"Input weights of the {k} of {n} hidden units with the largest outgoing weights (first refit)"
    labels, path = [f"unit {u}" for u in units], out / "hidden_weights.png"
    plots.weight_images(W["W1"][:, units], labels, ncols=min(10, k), title=title, path=path)


def tie_sentence(val: np.ndarray, hidden: list[int], best_n: int) -> str:
    """Whether the best n leads the runner-up by more than the spread between seeds."""
    others = [j for j in np.argsort(-val.mean(axis=1), kind="stable") if hidden[j] != best_n]
    best, second, runner_up = val[hidden.index(best_n)], val[others[0]], hidden[others[0]]
    margin, spread = best.mean() - second.mean(), max(best.std(), second.std())
    verdict = "less than" if margin < spread else "more than"
    tie = ", a tie within noise" if margin < spread else ""
    return f"Its lead over n = {runner_up} is {margin:+.4f}, {verdict} the seeds' spread ({spread:.4f}){tie}."


def capacity_sentence(best_n: int, hidden: list[int]) -> str:
    if best_n == max(hidden):
        return "Dropout and the decaying step keep that in check: the biggest layer still generalises best."
    return f"Beyond n = {best_n} the extra capacity goes into memorising and no longer pays on validation."


def reach_sentence(m: dict[str, Any]) -> str:
    """After how many epochs the mini-batch runs passed the full-batch runs' final accuracy."""
    hits = np.flatnonzero(np.array(m["mb"]["per_epoch"][1]) >= m["gd"]["final"])
    return f" The mini-batch runs passed that after {hits[0]} of their epochs." if hits.size else ""


def target_sentence(mean: float, std: float) -> str:
    """How the mean test accuracy of the refits stands against 0.900."""
    side = "above" if mean >= 0.900 else "below"
    noise = "more than" if abs(mean - 0.900) > 2 * std else "within"
    return f"{side} 0.900 by {abs(mean - 0.900):.4f}, {noise} twice the spread between seeds"


def softmax_sentence(m: dict[str, Any]) -> str:
    sm, acc, names = m["softmax"], m["test_accuracy"], study.CLASS_NAMES
    where = "trained here on the same split: no `softmax_only/metrics.json` was found" if sm["source"] == \
        "trained here" else f"read from `{sm['source']}`"  # fmt: skip
    text = f"The softmax-only model ({where}) scores {sm['test_accuracy']:.4f} on the test set, the hidden " \
        f"layer {acc:.4f} ({acc - sm['test_accuracy']:+.4f})."  # fmt: skip
    if sm["f1"] is None:
        return text + " Its saved metrics hold no per-class F1, so only the accuracy is compared."
    gain = np.array([v["f1"] for v in m["per_class"].values()]) - np.array(sm["f1"])
    hi, lo = int(np.argmax(gain)), int(np.argmin(gain))
    return text + f" The largest F1 gain is for {names[hi]} ({gain[hi]:+.3f}), the smallest for " \
        f"{names[lo]} ({gain[lo]:+.3f})."  # fmt: skip


def report(m: dict[str, Any]) -> dict[str, Any]:
    s, hidden, n, sm, pc = m["settings"], m["hidden"], m["chosen_hidden"], m["softmax"], m["per_class"]
    val, train = np.array(m["val_accuracy"]), np.array(m["train_acc"])  # (n, seeds)
    rows = [[h, m["n_parameters"][j], study.pm(val[j]), study.pm(train[j]), f"{m['s_per_epoch'][j]:.1f}"]
            for j, h in enumerate(hidden)]  # fmt: skip
    batch = [[f"n = {s['gd_hidden']}, {w}", m[k]["epochs"], m[k]["updates"], m[k]["epoch1"], m[k]["final"],
              f"{m[k]['seconds']:.1f}"] for k, w in (("mb", "mini-batch"), ("gd", "full batch"))]  # fmt: skip
    recipes = {k: {**s["recipe"], "hidden": n, **s["recipes"][k]} for k in m["recipes"]}
    cands = [[k, *(f"{recipes[k][x]:g}" for x in ("hidden", "dropout", "weight_decay", "lr_decay")),
              v["val"], v["best_epoch"], v["ran"]] for k, v in m["recipes"].items()]  # fmt: skip
    smf1 = sm["f1"] or [None] * 10
    classes = [[c, v["recall"], v["precision"], v["f1"], smf1[k]] for k, (c, v) in enumerate(pc.items())]
    classes.append(["**macro avg**", *(m["macro_avg"][k] for k in ("recall", "precision", "f1")),
                    sm["f1"] and float(np.mean(sm["f1"]))])  # fmt: skip
    recall = np.array([v["recall"] for v in pc.values()])
    by_recall = [f"{study.CLASS_NAMES[k]} ({recall[k]:.3f})" for k in np.argsort(recall, kind="stable")]
    confused = most_confused_pairs(np.array(m["confusion_matrix"]), 3, list(study.CLASS_NAMES))
    gap = (train - val).mean(axis=1)
    class_table = study.md_table(["class", "accuracy (recall)", "precision", "F1", "softmax F1"], classes, 3)
    values = {k: study.fmt(v) for k, v in m.items() if isinstance(v, int | float | str)}
    values |= {f"{b}_{k}": study.fmt(v, 2 if "s_" in k else 4) for b in ("mb", "gd") for k, v in m[b].items()}
    values |= {k: v for k, v in {**s, **s["recipe"]}.items() if isinstance(v, int | float)}
    values |= {f"gd_{k}": v for k, v in s["gd_recipe"].items()}
    return {
        **values, "quick_note": " (QUICK smoke run: tiny data, few epochs: no conclusions)" * m["quick"],
        "minutes": f"{m['seconds'] / 60:.1f}", "seconds": f"{m['seconds']:.0f}", "n_seeds": len(s["seeds"]),
        "train_seconds": f"{m['train_seconds']:.0f}", "load": f"{m['load'][0]:.1f} and {m['load'][1]:.1f}",
        "n_train": s["data"]["n_train"] or 50000, "n_val": s["data"]["n_val"] or 10000,
        "refit_n": s["refit_n_train"] or 60000, "n_first": hidden[0], "n_last": hidden[-1],
        "hidden_table": study.md_table(["n", "parameters", "validation accuracy",
                                        "train accuracy (same epoch)", "s per epoch"], rows),
        "best_val_pm": study.pm(val[hidden.index(n)]), "tie_sentence": tie_sentence(val, hidden, n),
        "ranking": ", ".join(str(hidden[j]) for j in np.argsort(-val.mean(axis=1), kind="stable")),
        "gap_first": f"{gap[0]:+.4f}", "gap_last": f"{gap[-1]:+.4f}", "class_table": class_table,
        "capacity_sentence": capacity_sentence(n, hidden), "reach_sentence": reach_sentence(m),
        "batch_table": study.md_table(["run", "epochs", "updates", "val. accuracy after epoch 1",
                                       "final val. accuracy", "training s"], batch),
        "recipes_table": study.md_table(["candidate", "n", "dropout", "weight decay", "lr decay per epoch",
                                         "best val. accuracy", "best epoch", "epochs run"], cands),
        "n_refits": len(m["test_accuracy_per_seed"]), "mb_steps": m["mb"]["updates"] // m["mb"]["epochs"],
        "refit_table": study.md_table(["seed", "test accuracy"], [*m["test_accuracy_per_seed"].items()]),
        "test_pm": study.pm(list(m["test_accuracy_per_seed"].values())), "gain": f"{m['gain']:+.4f}",
        "target_sentence": target_sentence(m["test_accuracy"], m["test_accuracy_std"]),
        **{f"macro_{k}": f"{v:.4f}" for k, v in m["macro_avg"].items()},
        "softmax_accuracy": f"{sm['test_accuracy']:.4f}", "softmax_sentence": softmax_sentence(m),
        "confused": "; ".join(f"{t} taken for {p} ({c} times)" for t, p, c in confused),
        "hardest": ", ".join(by_recall[:3]), "easiest": ", ".join(by_recall[::-1][:3]),
        "n_images": min(s["n_weight_images"], m["final_hidden"]), "moved": f"{m['hidden_weights_moved']:.2f}",
        "moved_sentence": ", so the random start still shows" * (m["hidden_weights_moved"] < 2),
    }  # fmt: skip


main = study.main_for(__name__)

if __name__ == "__main__":
    main()
