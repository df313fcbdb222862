"""Clothing vs footwear and bags: a binary network, and is it better than binarising a 10-class one?

The lab: group the ten classes into clothing (T-shirt/top, Trouser, Pullover, Dress, Coat, Shirt
-> 0) and footwear and bags (Sandal, Sneaker, Bag, Ankle boot -> 1); train a binary network (one
logit) with a validation set, early stopping and a best-model checkpoint; measure it (accuracy,
precision, recall, F1, ROC curve, AUC). Then: is a dedicated binary network better than a 10-class
network whose predicted class is mapped to its group (arg-max: the lab's way), or whose
probabilities of the four footwear and bag classes are summed (above 1/2: footwear or bag)?

    python -m experiments.binary [--out DIR] [--quick] [--plot-only] [--workers N] [--set seeds=N]
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from experiments import study
from minidl import plots
from minidl.callbacks import EarlyStopping, ModelCheckpoint, ReduceLROnPlateau, read_checkpoint_info
from minidl.layers import Dense, Dropout, ReLU
from minidl.losses import SigmoidBinaryCrossEntropy, SoftmaxCrossEntropy
from minidl.metrics import confusion_matrix, error_rate_difference, paired_exact_test, roc_auc_score
from minidl.model import Sequential, load_npz
from minidl.optim import Adam
from minidl.train import fit, predict

NAME = "binary"
FULL = {
    "hidden": 256,  # 784 -> hidden -> ReLU -> Dropout -> 1 logit (binary) or 10 logits
    "dropout": 0.2,
    "lr": 1e-3,  # Adam's first learning rate
    "batch_size": 128,
    "max_epochs": 50,
    "monitor": "val_accuracy",  # what EarlyStopping and ModelCheckpoint watch
    "patience": 5,  # EarlyStopping
    "lr_patience": 2,  # ReduceLROnPlateau on the validation loss
    "lr_factor": 0.5,
    "n_train": None,  # stratified subsamples of the 50000 / 10000 images (None: all)
    "n_val": None,
    "seeds": 5,  # trainings of each kind, seeds 0 .. seeds - 1
}
QUICK = {**FULL, "max_epochs": 3, "patience": 2, "lr_patience": 1, "n_train": 3000, "n_val": 1000, "seeds": 2}
POSITIVE = [5, 7, 8, 9]  # Sandal, Sneaker, Bag, Ankle boot -> 1; the other six classes -> 0
GROUPS = ("clothing", "footwear & bags")
METHODS = {
    "binarised": "10-class network, arg-max class mapped to its group",
    "summed": "10-class network, group probabilities summed",
    "binary": "binary network",
}
MAX_ERROR_IMAGES = 40  # per error figure
QUICK_NOTE = "\n> **Quick smoke run** (`--quick`): a few epochs on a small subsample, two seeds.\n"
FIGURES = ("binary_curves", "binary_confusion", "roc", "comparison", "errors_binary", "errors_binarised")


def to_group(y: np.ndarray) -> np.ndarray:
    """10-class labels -> 0 (clothing) / 1 (footwear and bags)."""
    return np.isin(y, POSITIVE).astype(np.int64)


def network(kind: str, hidden: int, dropout: float, streams: dict[str, np.random.Generator]) -> Sequential:
    """784 -> hidden -> ReLU -> Dropout -> one logit ("binary") or 10 logits ("multiclass")."""
    layers = [Dense(784, hidden, rng=streams["weights"]), ReLU(), Dropout(dropout, rng=streams["dropout"])]
    return Sequential([*layers, Dense(hidden, 1 if kind == "binary" else 10, rng=streams["weights"])])


def train_one(kind: str, seed: int, settings: dict[str, Any], data_seed: int) -> dict[str, Any]:
    """One network with the three callbacks; the record's arrays are the checkpoint file's content."""
    s = settings
    data = study.load_data("standardise", s["n_train"], s["n_val"], data_seed)
    labels = to_group if kind == "binary" else (lambda y: y)
    streams = study.seed_streams(seed)
    model = network(kind, s["hidden"], s["dropout"], streams)
    optimizer = Adam(model.parameters(), lr=s["lr"])
    slower = ReduceLROnPlateau(optimizer, "val_loss", factor=s["lr_factor"], patience=s["lr_patience"])
    with tempfile.TemporaryDirectory() as folder:  # this worker's own disk
        path = Path(folder) / "best.npz"
        early = EarlyStopping(s["monitor"], patience=s["patience"], restore_best_weights=True)
        checkpoint = ModelCheckpoint(path, monitor=s["monitor"], save_best_only=True)
        started = time.perf_counter()
        history = fit(
            model,
            data.X_train,
            labels(data.y_train),
            loss=SigmoidBinaryCrossEntropy() if kind == "binary" else SoftmaxCrossEntropy(),
            optimizer=optimizer,
            epochs=s["max_epochs"],
            batch_size=s["batch_size"],
            validation_data=(data.X_val, labels(data.y_val)),
            callbacks=[early, checkpoint, slower],
            rng=streams["order"],
            verbose=0,
        )
        seconds = time.perf_counter() - started
        saved = load_npz(path)  # the checkpoint file's content
    reductions = [epoch for epoch, _ in slower.reductions]
    return study.record(history, lr_reductions=reductions, train_seconds=seconds, arrays=saved)


def group_log_odds(logits: np.ndarray) -> np.ndarray:
    """log P(footwear or bag) - log P(clothing) from 10-class logits ``(..., 10)``; > 0 <=> P > 1/2.

    A group's softmax probability is exp(logsumexp(z_group)) / sum_j exp(z_j): the normaliser
    cancels in the ratio of the two groups, and logsumexp (``np.logaddexp.reduce``) never overflows.
    """
    z, pos = logits.astype(np.float64), np.isin(np.arange(10), POSITIVE)
    return np.logaddexp.reduce(z[..., pos], axis=-1) - np.logaddexp.reduce(z[..., ~pos], axis=-1)


def run(st: study.Study, settings: dict) -> dict[str, Any]:
    seeds, task = range(settings["seeds"]), {"settings": settings, "data_seed": st.args.data_seed}
    tasks = {f"{k}-seed{i}": {**task, "kind": k, "seed": i} for i in seeds for k in ("binary", "multiclass")}
    records = st.train(train_one, tasks)
    # The test set, once, for every final model: the weights of its checkpoint file, loaded back.
    data = study.load_data("standardise", settings["n_train"], settings["n_val"], st.args.data_seed)
    X_test, y_test, images = study.test_set(data)
    out, runs = {}, {}
    for key, rec in records.items():
        checkpoint = st.out / "runs" / f"{key}.npz"  # ModelCheckpoint's file, as the kit saved it
        model = network(tasks[key]["kind"], settings["hidden"], settings["dropout"], study.seed_streams(0))
        model.load(checkpoint)
        out[key] = predict(model, X_test)
        runs[key] = {k: rec[k] for k in ("history", "stop_reason", "lr_reductions", "train_seconds")}
        runs[key]["best_epoch"] = read_checkpoint_info(checkpoint)["best_epoch"]
    g = to_group(y_test)
    logits10 = np.stack([out[f"multiclass-seed{i}"] for i in seeds])  # (seeds, N, 10)
    pred10 = logits10.argmax(axis=-1)
    scores = {"binarised": np.where(np.isin(pred10, POSITIVE), 1.0, -1.0), "summed": group_log_odds(logits10)}
    scores["binary"] = np.stack([out[f"binary-seed{i}"][:, 0] for i in seeds])  # (seeds, N) logits
    wrong = {m: (score > 0) != g for m, score in scores.items()}  # (seeds, N) each
    errors = np.flatnonzero(np.any([w.any(axis=0) for w in wrong.values()], axis=0))
    arrays = dict(y=y_test, binary_logit=scores["binary"], group_log_odds=scores["summed"], pred10=pred10)
    st.save_arrays("test", {**arrays, "error_index": errors, "error_images": images[errors]})
    return {
        "n_test": len(y_test),
        "n_positive": int(g.sum()),
        "wrong": {m: [np.flatnonzero(row).tolist() for row in w] for m, w in wrong.items()},
        "true_class": {str(i): int(y_test[i]) for i in errors},
        "auc": {m: [roc_auc_score(g, row) for row in scores[m]] for m in ("summed", "binary")},
        "confusion_10": [confusion_matrix(y_test, p, 10).tolist() for p in pred10],
        "sizes": [len(data.y_train), len(data.y_val)],  # training and validation images
        "runs": runs,
    }


def paired(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """b = A right and B wrong, c = the reverse, and McNemar's exact test (b ~ Binomial(b + c, 1/2))."""
    return {"b": int((a & ~b).sum()), "c": int((~a & b).sum()), "p": paired_exact_test(a, b)}


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    n, seeds, runs = results["n_test"], results["settings"]["seeds"], results["runs"]
    correct = {m: np.ones((seeds, n), bool) for m in METHODS}  # (seeds, N): image right?
    for m, rows in results["wrong"].items():
        for i, row in enumerate(rows):
            correct[m][i, row] = False
    B = correct["binary"]
    true_class = {int(i): k for i, k in results["true_class"].items()}
    wrong0 = results["wrong"]["binary"][0]  # part 1 is the binary network of seed 0
    fp = sum(true_class[i] not in POSITIVE for i in wrong0)  # clothing called footwear/bag
    fn, tp = len(wrong0) - fp, results["n_positive"] - (len(wrong0) - fp)
    group = to_group(np.arange(10))
    cm10 = np.array(results["confusion_10"])  # (seeds, 10, 10)
    d, low, high = error_rate_difference(correct["binarised"], B)  # error rate: binarised - binary
    kinds = {k: [runs[f"{k}-seed{i}"] for i in range(seeds)] for k in ("binary", "multiclass")}

    def by_class(m: str) -> dict[str, int]:
        counts = np.bincount([true_class[i] for i in results["wrong"][m][0]], minlength=10)
        return {study.CLASS_NAMES[k]: int(counts[k]) for k in np.argsort(-counts, kind="stable") if counts[k]}

    return {
        "test_accuracy": float(B[0].mean()),
        **{k: results[k] for k in ("quick", "settings", "seconds", "sizes", "n_test", "auc")},
        "confusion": [[n - results["n_positive"] - fp, fp], [fn, tp]],
        "precision": tp / max(tp + fp, 1),
        "recall": tp / max(tp + fn, 1),
        "f1": 2 * tp / max(2 * tp + fp + fn, 1),
        "binary_run": runs["binary-seed0"],
        "accuracy": {m: c.mean(axis=1).tolist() for m, c in correct.items()},
        "errors": {m: (~c).sum(axis=1).tolist() for m, c in correct.items()},
        "per_seed": {m: [paired(B[i], correct[m][i]) for i in range(seeds)] for m in ("binarised", "summed")},
        "pooled_p": {m: paired_exact_test(B, correct[m]) for m in ("binarised", "summed")},
        "difference": [d, low, high],
        "errors_10": (n - np.trace(cm10, axis1=1, axis2=2)).tolist(),
        "crossing_10": cm10[:, group[:, None] != group[None, :]].sum(axis=1).tolist(),
        "train_seconds": {k: [r["train_seconds"] for r in rs] for k, rs in kinds.items()},
        "epochs": {k: [len(r["history"]["loss"]) - 1 for r in rs] for k, rs in kinds.items()},
        "shared_errors": int((~B[0] & ~correct["binarised"][0]).sum()),
        "by_class": {m: by_class(m) for m in ("binary", "binarised")},
        "wrong0": {m: results["wrong"][m][0] for m in ("binary", "binarised")},
    }


def figures(m: dict[str, Any], out: Path) -> None:
    run, monitor = m["binary_run"], m["settings"]["monitor"]
    title = "Binary network (clothing vs footwear & bags), seed 0: learning curves"
    marks = {f"best {monitor}: its weights are kept": run["best_epoch"]}
    plots.epoch_curves(run["history"], out / "binary_curves.png", title, marks, run["lr_reductions"])
    cm = np.array(m["confusion"])
    recall = np.diag(cm) / cm.sum(axis=1)
    title = (
        f"Binary network (seed 0), test set\nrecall: clothing {recall[0]:.2%}, {GROUPS[1]} {recall[1]:.2%}"
    )
    plots.confusion_matrix_plot(cm, GROUPS, path=out / "binary_confusion.png", title=title)
    test = study.load_arrays(out, "test")
    binary, summed = test["binary_logit"][0], test["group_log_odds"][0]  # seed 0's scores
    scores = {"binary network": binary, "10-class network, summed probability of the 4 classes": summed}
    points = {  # the usual thresholds, and the arg-max answer: one point, no threshold to move
        "its threshold: logit 0 (probability 0.5)": binary > 0,
        "its threshold: sum 0.5": summed > 0,
        f"{METHODS['binarised']} (one point: no threshold)": np.isin(test["pred10"][0], POSITIVE),
    }
    axes = {
        "xlabel": "false positive rate (clothing called footwear/bag)",
        "ylabel": "true positive rate (footwear/bags found)",
        "title": "ROC on the test set (seed 0)",
    }
    plots.roc_curves(to_group(test["y"]), scores, points, zoom=True, path=out / "roc.png", **axes)
    comparison_figure(m, out / "comparison.png")
    for method, other in (("binary", "binarised"), ("binarised", "binary")):
        errors_figure(m["wrong0"][method], m["wrong0"][other], method, test, out / f"errors_{method}.png")


def comparison_figure(m: dict[str, Any], path: Path) -> None:
    """Test accuracy per seed of the three ways (lines join a seed), mean +- std, the scale said."""
    fig = plots.new_figure(10.5, 6.0)
    ax = fig.add_subplot()
    A, n = np.array([m["accuracy"][k] for k in METHODS]), m["n_test"]  # (methods, seeds)
    x, seeds = np.arange(len(METHODS)), A.shape[1]
    for j in range(seeds):
        ax.plot(x + 0.03 * (j - (seeds - 1) / 2), A[:, j], "o-", ms=5, lw=0.8, alpha=0.7, label=f"seed {j}")
    mean, std = A.mean(axis=1), A.std(axis=1)
    ax.errorbar(x + 0.22, mean, yerr=std, fmt="D", color="k", ms=7, capsize=6, label="mean ± std over seeds")
    for i in range(len(METHODS)):
        text = f"{mean[i]:.3%}\n{(1 - mean[i]) * n:.1f} ± {std[i] * n:.1f}\nerrors"
        ax.annotate(text, (x[i] + 0.22, mean[i]), xytext=(10, 0), textcoords="offset points", va="center")
    ax.set_xticks(x, labels=[METHODS[k].replace(", ", ",\n") for k in METHODS])
    ax.set(xlim=(-0.4, len(METHODS) - 0.2), ylabel="test accuracy, clothing vs footwear & bags")
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:.2%}")
    errors_axis = ax.secondary_yaxis("right", functions=(lambda a: (1 - a) * n, lambda e: 1 - e / n))
    errors_axis.set_ylabel(f"test errors (of {n})")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8.5, ncols=2)
    low, high = ax.get_ylim()
    d, lo, hi = (v * n for v in m["difference"])
    ax.set_title(
        f"Binarised 10-class network vs binary network, {seeds} seeds (y axis {low:.2%} to {high:.2%}: "
        f"{(high - low) * n:.0f} test images)\nbinarised minus binary, all seeds pooled: {d:+.1f} errors "
        f"in {n}, 95% CI {lo:+.1f} to {hi:+.1f}",
        fontsize=10,
    )
    plots.save_figure(fig, path)


def errors_figure(wrong: list[int], other: list[int], method: str, test: dict, path: Path) -> None:
    """Seed 0's test errors of ``method`` as images; 'both' marks those the other method gets wrong too."""
    shown, y = wrong[:MAX_ERROR_IMAGES], test["y"]
    if method == "binary":  # wrong about the group: the prediction is the other group
        predicted = [("footwear/bag", "clothing")[int(to_group(y[i]))] for i in shown]
    else:
        predicted = [study.CLASS_NAMES[test["pred10"][0][i]] for i in shown]
    titles = [
        f"true: {study.CLASS_NAMES[y[i]]} / pred: {p}" + "\nboth" * (i in other)
        for i, p in zip(shown, predicted, strict=True)
    ]
    images = test["error_images"][np.searchsorted(test["error_index"], shown)]
    title = f"Test errors of the {METHODS[method]} (seed 0): {len(wrong)}, {len(set(wrong) & set(other))} "
    title += f"of them also wrong for the {METHODS['binarised' if method == 'binary' else 'binary']} ('both')"
    title += f"; the first {len(shown)} shown" if len(shown) < len(wrong) else ""
    plots.image_grid(images, titles=titles, ncols=10, path=path, title=title)


def answer_text(m: dict[str, Any]) -> str:
    """Answer 2: what the pooled interval says, and no more."""
    d, low, high = m["difference"]  # error rate of the binarised network minus the binary network's
    n, p = m["n_test"], m["pooled_p"]["binarised"]
    ci = (
        f"{100 * d:+.3f} percentage points, 95% confidence interval {100 * low:+.3f} to {100 * high:+.3f} "
        f"({n * low:+.1f} to {n * high:+.1f} errors in {n} test images); exact paired test p = {p:.2g}"
    )
    if low > 0 or high < 0:
        better, worse = ("binary network", "binarised 10-class network")[:: 1 if d > 0 else -1]
        return f"The {better} makes fewer test errors than the {worse}: binarised minus binary {ci}."
    return (
        f"No difference detected at this sample size. Pooled over the {len(m['errors']['binary'])} seeds, "
        f"the binarised 10-class network's error rate minus the binary network's is {ci}. Any "
        "difference inside that interval, zero included, fits the data; larger ones do not."
    )


def report(m: dict[str, Any]) -> dict[str, Any]:
    run, n, (d, low, high) = m["binary_run"], m["n_test"], m["difference"]
    e, tests = m["errors"], zip(m["per_seed"]["binarised"], m["per_seed"]["summed"], strict=True)
    seed_rows = [
        [i, e["binarised"][i], e["binary"][i], t["b"], t["c"], t["p"], e["summed"][i], u["p"]]
        for i, (t, u) in enumerate(tests)
    ]
    mean = {k: np.mean(m[k]) for k in ("errors_10", "crossing_10")}
    return {
        "quick_note": QUICK_NOTE if m["quick"] else "",
        "answer": answer_text(m),
        "minutes": f"{m['seconds'] / 60:.1f}",
        "train_minutes": f"{sum(map(sum, m['train_seconds'].values())) / 60:.1f}",
        "stop": run["stop_reason"] or f"the last of its {m['settings']['max_epochs']} epochs",
        "val_accuracy_best": f"{run['history']['val_accuracy'][run['best_epoch']]:.2%}",
        "mean_table": study.md_table(
            ["method", "test accuracy, mean ± std", "test errors, mean"],
            [[METHODS[k], study.pm(m["accuracy"][k]), f"{np.mean(m['errors'][k]):.1f}"] for k in METHODS],
        ),
        **{f"auc_{k}": f"{np.mean(m['auc'][k]):.5f}" for k in ("binary", "summed")},
        "seed_table": study.md_table(
            ["seed", "arg-max errors", "binary errors", "b", "c", "p (exact)", "summed errors", "p (summed)"],
            seed_rows,
        ),
        "difference": f"{100 * d:+.3f} percentage points (95% confidence interval {100 * low:+.3f} "
        f"to {100 * high:+.3f}), that is {n * d:+.1f} test errors in {n} (from {n * low:+.1f} "
        f"to {n * high:+.1f})",
        **{f"mean_{k}": f"{v:.0f}" for k, v in mean.items()},
        "forgiven_10": f"{mean['errors_10'] - mean['crossing_10']:.0f}",
        "errors_binary_mean": f"{np.mean(m['errors']['binary']):.0f}",
        **{f"seconds_{k}": f"{np.mean(m['train_seconds'][k]):.0f}" for k in ("binary", "multiclass")},
        **{f"epochs_{k}": f"{np.mean(m['epochs'][k]):.1f}" for k in ("binary", "multiclass")},
        "accuracy_10": study.pm(1 - np.array(m["errors_10"]) / m["n_test"]),
        **{f"by_class_{k}": ", ".join(f"{c} {v}" for c, v in by.items()) for k, by in m["by_class"].items()},
        "quick_flag": " --quick" if m["quick"] else "",
    }


main = study.main_for(__name__)

if __name__ == "__main__":
    main()
