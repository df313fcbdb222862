"""MLP vs CNN on Fashion-MNIST: does a small convolutional network beat a dense one of the same size?

Two models with about the same number of weights, trained the same way (``build_model``):

    MLP  Dense(784, 512) ReLU Dropout(0.3) Dense(512, 10)                             407,050 weights
    CNN  Conv2D(1, 32, 3, padding=1) ReLU MaxPool2D(2) Conv2D(32, 64, 3, padding=1) ReLU MaxPool2D(2)
         Flatten Dense(3136, 128) ReLU Dropout(0.3) Dense(128, 10)                     421,642 weights

Both: softmax cross-entropy, Adam (lr 1e-3, times 0.85 after every epoch), mini-batches of 128.

1. Validation: every model trains on 50000 images with early stopping on the 10000 validation
   images (the MLP with 5 seeds, the CNN, 20x dearer per epoch, with one); the validation scores
   compare them and choose each one's seed and number of epochs.
2. The final models: each refit on all 60000 training images for its chosen number of epochs,
   then scored once on the 10000 test images (``run``, the one place that reads them).

    python -m experiments.cnn [--out DIR] [--quick] [--plot-only] [--workers N] [--epochs E]
"""

from __future__ import annotations

import os

import numpy as np

from experiments import study
from minidl import Adam, Dense, Dropout, Flatten, ReLU, Sequential, SoftmaxCrossEntropy, fit, metrics, plots
from minidl.callbacks import EarlyStopping, EpochClock, ExponentialDecay
from minidl.conv import Conv2D, MaxPool2D
from minidl.train import predict

NAME = "cnn"
FIGURES = ("curves", "confusion", "per_class", "filters", "feature_maps")
MODELS = ("mlp", "cnn")
FULL = {
    "n_train": None,  # all 50000 training images of the split (then all 60000 for the refit)
    "n_val": None,  # all 10000 validation images
    "seeds": {"mlp": 5, "cnn": 1},
    "hidden": 512,  # MLP hidden units: 407,050 weights, about the CNN's 421,642
    "dropout": 0.3,
    "lr": 1e-3,
    "lr_decay": 0.85,  # lr of epoch e = lr * lr_decay ** (e - 1)
    "batch_size": 128,
    "max_epochs": 15,
    "patience": 3,
}
QUICK = {**FULL, "n_train": 2000, "n_val": 500, "seeds": {"mlp": 2, "cnn": 1}, "max_epochs": 2, "patience": 2}
EVAL_CHUNK = 128  # images per forward pass when scoring: a CNN feature map of 2048 images is 200 MB
EXAMPLE = 0  # the test image whose first-layer feature maps are drawn (an ankle boot)


def add_arguments(parser) -> None:
    parser.add_argument("--epochs", type=study.positive_int, help="at most this many epochs per training")


def apply_arguments(settings: dict, args) -> dict:
    return {**settings, "max_epochs": args.epochs} if args.epochs else settings


def build_model(kind: str, seed: int, hidden: int = 512, dropout: float = 0.3) -> Sequential:
    """The MLP or the CNN of the module docstring; weights and dropout masks from ``seed``'s streams."""
    rng = study.seed_streams(seed)
    w, d = rng["weights"], rng["dropout"]
    if kind == "mlp":
        return Sequential(
            [Dense(784, hidden, rng=w), ReLU(), Dropout(dropout, rng=d), Dense(hidden, 10, rng=w)]
        )
    if kind != "cnn":
        raise ValueError(f"unknown model {kind!r}; expected one of {MODELS}")
    return Sequential([
        Conv2D(1, 32, 3, padding=1, rng=w), ReLU(), MaxPool2D(2),   # (N, 32, 28, 28) -> (N, 32, 14, 14)
        Conv2D(32, 64, 3, padding=1, rng=w), ReLU(), MaxPool2D(2),  # (N, 64, 14, 14) -> (N, 64, 7, 7)
        Flatten(), Dense(64 * 7 * 7, 128, rng=w), ReLU(), Dropout(dropout, rng=d), Dense(128, 10, rng=w),
    ])  # fmt: skip


def model_input(kind: str) -> tuple[int, ...]:
    return (784,) if kind == "mlp" else (1, 28, 28)  # one example, without the batch axis


def prepared(kind: str, n_train: int | None, n_val: int | None, data_seed: int):
    """The split with pixels standardised by ONE mean and ONE std of the training images.

    Not per pixel: a convolution applies the same filter at every position, so every position
    should be on the same scale, and per-pixel statistics would blow up the almost always black
    border. One affine map keeps an image an image, centred with unit variance."""
    data = study.load_data("raw", n_train, n_val, data_seed)
    mean, std = float(data.X_train.mean(dtype=np.float64)), float(data.X_train.std(dtype=np.float64))
    shape = (-1, *model_input(kind))

    def standardise(X: np.ndarray) -> np.ndarray:
        return ((X - np.float32(mean)) / np.float32(std)).reshape(shape)

    return data, standardise, {"mean": mean, "std": std}


def refit_n(s: dict) -> int | None:
    """How many images the refit trains on: the split's train and validation parts together."""
    return s["n_train"] and s["n_train"] + (s["n_val"] or 10_000)  # None: all 60000


def train_one(kind: str, seed: int, settings: dict, data_seed: int, epochs: int | None = None) -> dict:
    """One training. ``epochs=None``: on the split with early stopping on the validation loss (best
    weights restored); else the refit on all 60000 images for exactly ``epochs`` epochs, returning
    its weights."""
    s = settings
    refit = epochs is not None
    data, standardise, norm = prepared(
        kind, *((refit_n(s), 0) if refit else (s["n_train"], s["n_val"])), data_seed
    )
    model = build_model(kind, seed, s["hidden"], s["dropout"])
    optimizer = Adam(model.parameters(), lr=s["lr"])
    decay, clock = ExponentialDecay(optimizer, s["lr_decay"]), EpochClock()
    callbacks = [decay, clock]
    if not refit:
        callbacks.insert(1, EarlyStopping("val_loss", patience=s["patience"], restore_best_weights=True))
    history = fit(
        model, standardise(data.X_train), data.y_train, loss=SoftmaxCrossEntropy(), optimizer=optimizer,
        epochs=epochs or s["max_epochs"], batch_size=s["batch_size"], callbacks=callbacks, verbose=0,
        validation_data=None if refit else (standardise(data.X_val), data.y_val),
        rng=study.seed_streams(seed)["order"], eval_batch_size=EVAL_CHUNK,
        train_metrics="running" if refit else "exact",  # no curve is drawn of the refit: skip re-scoring
    )  # fmt: skip
    extra = {"lr": decay.lrs, "epoch_wall": clock.wall, "epoch_cpu": clock.cpu, "normalisation": norm,
             "n_parameters": model.n_parameters(), "summary": model.summary(model_input(kind))}  # fmt: skip
    if refit:
        extra["arrays"] = model.state_dict()
    return study.record(history, **extra)


def run(st: study.Study, s: dict) -> dict:
    seed_of = {m: range(s["seeds"][m]) for m in MODELS}
    tasks = {
        f"{m}-seed{i}": {"kind": m, "seed": i, "settings": s, "data_seed": st.args.data_seed}
        for m in ("cnn", "mlp")
        for i in seed_of[m]
    }  # the CNN first: it takes longest
    study.log(f"{NAME}: {len(tasks)} trainings with early stopping on the validation set")
    runs = st.train(train_one, tasks)
    chosen = {m: min(seed_of[m], key=lambda i: _best(runs[f"{m}-seed{i}"], "val_loss")) for m in MODELS}
    epochs = {m: max(1, runs[f"{m}-seed{chosen[m]}"]["best_epoch"]) for m in MODELS}
    study.log(f"{NAME}: refit on train + validation for the best epochs of the chosen seeds: {epochs}")
    refit_tasks = {f"refit-{m}": {**tasks[f"{m}-seed{chosen[m]}"], "epochs": epochs[m]} for m in MODELS}
    refits = st.train(train_one, refit_tasks)
    # The test set, once, for the two final models.
    data, _, _ = prepared("cnn", None, 0, st.args.data_seed)
    X_test, y_test, images = study.test_set(data)
    pred = {}
    for m in MODELS:
        _, standardise, _ = prepared(m, None, 0, st.args.data_seed)
        model = build_model(m, 0, s["hidden"], s["dropout"])
        model.load_state_dict(refits[f"refit-{m}"].pop("arrays"))
        pred[m] = predict(model, standardise(X_test), labels=True, batch_size=EVAL_CHUNK)
        if m == "cnn":
            st.save_arrays("final_cnn", {**model.state_dict(), "example": images[EXAMPLE]})
            filters = model.state_dict()["0.W"].tolist()
    split = study.load_data("raw", s["n_train"], s["n_val"], st.args.data_seed)
    counts = [np.bincount(y, minlength=10).tolist() for y in (split.y_train, split.y_val, y_test)]
    return {
        "runs": runs, "refits": refits, "chosen_seed": chosen, "y_test": y_test, "pred": pred,
        "example_label": int(y_test[EXAMPLE]), "filters": filters, "class_counts": counts,
        "workers": st.args.workers or os.cpu_count(), "cores": os.cpu_count(), "load": os.getloadavg()[0],
        "train_seconds": st.train_seconds, "n_refit": len(prepared("mlp", refit_n(s), 0, 0)[0].y_train),
    }  # fmt: skip


# ---- summarise: plain numbers -------------------------------------------------------------------------
def _best(run: dict, key: str) -> float:
    return run["history"][key][run["best_epoch"]]


SOBEL = {  # 3x3 edge detectors; as cross-correlation kernels, positive where the top (left) is bright
    "horizontal": np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]], dtype=float),
    "vertical": np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], dtype=float),
}


def edge_filters(W: np.ndarray) -> dict:
    """For each Sobel direction, the learned first-layer filter most like it (or its negative)."""
    F = np.asarray(W, dtype=float)[:, 0].reshape(len(W), -1)
    F /= np.maximum(np.linalg.norm(F, axis=1, keepdims=True), 1e-12)  # a dead (all-zero) filter: cosine 0
    found = {}
    for name, K in SOBEL.items():
        cos = F @ (K.ravel() / np.linalg.norm(K))
        k = int(np.argmax(np.abs(cos)))
        sides = ("top", "bottom") if name == "horizontal" else ("left", "right")
        bright, dark = sides if cos[k] > 0 else sides[::-1]
        found[name] = {"filter": k + 1, "cosine": float(abs(cos[k])), "bright": bright, "dark": dark}
    return found


def summarise(R: dict) -> dict:
    y = np.asarray(R["y_test"])
    pred = {m: np.asarray(R["pred"][m]) for m in MODELS}
    models = {}
    for m in MODELS:
        runs = [r for k, r in R["runs"].items() if k.startswith(m)]
        chosen, refit = R["runs"][f"{m}-seed{R['chosen_seed'][m]}"], R["refits"][f"refit-{m}"]
        scores = {k: {"chosen": _best(chosen, k), "mean": float(np.mean([_best(r, k) for r in runs])),
                      "std": float(np.std([_best(r, k) for r in runs]))}
                  for k in ("loss", "accuracy", "val_loss", "val_accuracy")}  # fmt: skip
        models[m] = {
            "seeds": len(runs), "chosen_seed": R["chosen_seed"][m], "n_parameters": chosen["n_parameters"],
            "summary": chosen["summary"], "epochs_run": [len(r["history"]["loss"]) - 1 for r in runs],
            "best_epoch": [r["best_epoch"] for r in runs], "refit_epochs": len(refit["history"]["loss"]) - 1,
            "initial_loss": [r["history"]["loss"][0] for r in runs], **scores,
            "test_accuracy": float(np.mean(pred[m] == y)),
            "epoch_wall": float(np.mean([t for r in runs for t in r["epoch_wall"]])),
            "epoch_cpu": float(np.mean([t for r in runs for t in r["epoch_cpu"]])),
            "cpu_seconds": float(sum(sum(r["epoch_cpu"]) for r in [*runs, refit])),
            "histories": [r["history"] for r in runs],
        }  # fmt: skip
    cms = {m: metrics.confusion_matrix(y, pred[m], 10) for m in MODELS}
    stat, p, b, c = metrics.mcnemar(pred["mlp"] == y, pred["cnn"] == y)
    return {
        "test_accuracy": models["cnn"]["test_accuracy"],
        "final_model": "CNN refit on 60000 images",
        "models": models,
        "confusion_matrix": cms,
        "recall": {m: metrics.per_class_accuracy(y, pred[m], 10).tolist() for m in MODELS},
        "most_confused": metrics.most_confused_pairs(cms["cnn"], k=5, class_names=list(study.CLASS_NAMES)),
        "mcnemar": {"statistic": stat, "p_value": p, "only_mlp_right": b, "only_cnn_right": c},
        **{
            k: R[k]
            for k in ("class_counts", "example_label", "settings", "quick", "seconds", "train_seconds")
        },
        **{k: R[k] for k in ("workers", "cores", "load", "n_refit")},
        "normalisation": R["refits"]["refit-cnn"]["normalisation"],
        "n_test": len(y),
        "edge_filters": edge_filters(R["filters"]),
    }


# ---- figures ------------------------------------------------------------------------------------------
def figures(M: dict, out) -> None:
    names = study.CLASS_NAMES
    fig = plots.new_figure(13, 4.8)
    for ax, metric in zip(fig.subplots(1, 2), ("loss", "accuracy"), strict=True):
        for i, m in enumerate(MODELS):
            runs, n = M["models"][m]["histories"], M["models"][m]["seeds"]
            for key, style, split in ((metric, "--", "train"), (f"val_{metric}", "-", "validation")):
                mean, std, _ = plots.mean_std(runs, key)
                x = np.arange(1, len(mean))
                label = f"{m.upper()} {split}" + (f" (mean ± std, {n} seeds)" if n > 1 else " (1 seed)")
                ax.plot(x, mean[1:], style, color=f"C{i}", lw=2, label=label)
                ax.fill_between(x, (mean - std)[1:], (mean + std)[1:], color=f"C{i}", alpha=0.25, lw=0)
            best = M["models"][m]["best_epoch"][M["models"][m]["chosen_seed"]]
            at = (best, runs[M["models"][m]["chosen_seed"]][f"val_{metric}"][best])
            ax.plot(*at, "*", color=f"C{i}", ms=14, mec="black", label=f"{m.upper()}: refit epochs ({best})")
        ax.set(
            xlabel="epoch", ylabel=metric, title=f"{metric.capitalize()} on the training and validation sets"
        )
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
    handles, labels = fig.axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize=9, frameon=False)
    fig.suptitle("MLP vs CNN: learning curves on the validation split (scored in eval mode after each epoch)")
    plots.save_figure(fig, out / "curves.png")

    fig = plots.new_figure(21, 6.6)
    axes = fig.subplots(1, 3)
    cms = {m: np.asarray(M["confusion_matrix"][m]) for m in MODELS}
    for ax, m in zip(axes, MODELS, strict=False):
        title = f"{m.upper()} (refit), test accuracy {M['models'][m]['test_accuracy']:.4f}"
        plots.confusion_matrix_plot(cms[m], names, normalize="true", ax=ax, title=title)
    fractions = {m: cms[m] / np.maximum(cms[m].sum(axis=1, keepdims=True), 1) for m in MODELS}
    title = "CNN minus MLP (diagonal red = CNN better,\noff-diagonal blue = CNN confuses less)"
    plots.difference_matrix(fractions["cnn"] - fractions["mlp"], names, ax=axes[2], title=title)
    fig.suptitle("Test-set confusion matrices, row-normalised (diagonal = recall)")
    plots.save_figure(fig, out / "confusion.png")

    recall = {f"{m.upper()} (refit)": M["recall"][m] for m in MODELS}
    title = "Per-class test accuracy (recall), MLP vs CNN"
    ylabel = "fraction of the class classified correctly"
    plots.bar_compare(list(names), recall, ylabel=ylabel, title=title, path=out / "per_class.png")

    weights = study.load_arrays(out, "final_cnn")
    W = weights["0.W"]
    title = "CNN first layer: the 32 learned 3x3 filters (red > 0, blue < 0; one scale for all)"
    filters = [f"filter {k + 1}" for k in range(len(W))]
    plots.weight_images(
        W.reshape(len(W), -1).T, filters, shape=(3, 3), ncols=8, path=out / "filters.png", title=title
    )
    conv = Conv2D(1, len(W), 3, padding=1, rng=0)
    conv.W.value[...], conv.b.value[...] = W, weights["0.b"]
    norm = M["normalisation"]
    x = (weights["example"].astype(np.float32) / 255 - norm["mean"]) / norm["std"]
    maps = np.maximum(conv.forward(x.reshape(1, 1, 28, 28).astype(np.float32))[0], 0)
    title = "What the first layer sees: the 32 feature maps of one image (one colour scale)"
    source = f"input: test image {EXAMPLE}\n({names[M['example_label']]})"
    path = out / "feature_maps.png"
    plots.feature_maps(weights["example"], maps, path=path, label="filter", input_title=source, title=title)


# ---- the report: reports/cnn.md, and the sentences that depend on the results -------------------------
def answer(M: dict) -> str:
    t = {m: M["models"][m]["test_accuracy"] for m in MODELS}
    gap = t["cnn"] - t["mlp"]
    better = "CNN" if gap > 0 else "MLP"
    return (
        f"the {better} is better. Test accuracy {t['cnn']:.4f} for the CNN vs {t['mlp']:.4f} for the MLP, "
        f"{abs(gap) * 100:.1f} points {'more' if gap > 0 else 'less'} for the CNN"
    )


def significance(M: dict) -> str:
    mc = M["mcnemar"]
    n = mc["only_cnn_right"] + mc["only_mlp_right"]
    form = "exact binomial test" if n < 25 else "chi-square test with continuity correction"
    verdict = (
        " — far too lopsided to be luck."
        if mc["p_value"] < 1e-3
        else " (a small p means the gap is not luck)."
    )
    return (
        f"McNemar's test ({form} on the {n} images the two disagree on): {mc['only_cnn_right']} test images "
        f"only the CNN gets right, {mc['only_mlp_right']} only the MLP, p = {mc['p_value']:.2g}{verdict}"
    )


def seed_spread(M: dict) -> str:
    mlp = M["models"]["mlp"]
    if mlp["seeds"] < 2:
        return ""
    std = mlp["val_accuracy"]["std"]
    gap = abs(M["models"]["cnn"]["test_accuracy"] - mlp["test_accuracy"])
    verdict = "so a gap of this size is not a lucky seed" if gap > 3 * std else "about as large as the gap"
    spread = f"±{std:.4f} ({mlp['seeds']} seeds)"
    return f" From seed to seed the MLP's validation accuracy varies by {spread}, {verdict}."


def generalisation(M: dict) -> str:
    gap = {m: mm["accuracy"]["chosen"] - mm["val_accuracy"]["chosen"] for m, mm in M["models"].items()}
    text = (
        f"At the best epoch, training accuracy is {gap['mlp'] * 100:.1f} points above validation accuracy "
        f"for the MLP and {gap['cnn'] * 100:.1f} points for the CNN."
    )
    if M["models"]["cnn"]["val_accuracy"]["chosen"] <= M["models"]["mlp"]["val_accuracy"]["chosen"]:
        return text
    if gap["cnn"] < gap["mlp"]:
        text += (
            " The CNN loses less of its training accuracy on new images: its advantage is not memorisation."
        )
    else:
        text += " The CNN's gap is not smaller: part of its advantage is a closer fit."
    return text + (
        " Its built-in assumptions (a pattern means the same anywhere, nearby pixels belong together) "
        "are a prior the MLP would have to learn from the data."
    )


def budget(M: dict) -> str:
    s, parts = M["settings"], []
    for m in MODELS:
        mm = M["models"][m]
        hit = sum(b == s["max_epochs"] for b in mm["best_epoch"])
        if hit:
            parts.append(
                f"The {m.upper()} had its best validation loss at the {s['max_epochs']}-epoch limit in "
                f"{hit} of {mm['seeds']} runs: more epochs might still help it a little."
            )
    return " ".join(parts) or "Every run had its best validation loss before the epoch limit."


def edges(M: dict) -> str:
    h, v = M["edge_filters"]["horizontal"], M["edge_filters"]["vertical"]
    return (
        f"Against the classic Sobel edge detectors, filter {h['filter']} is the closest to a "
        f"horizontal-edge detector (cosine {h['cosine']:.2f}: bright {h['bright']}, dark {h['dark']}), "
        f"filter {v['filter']} to "
        f"a vertical one (cosine {v['cosine']:.2f}: bright {v['bright']}, dark {v['dark']})."
    )


def pm(d: dict) -> str:
    return f"{d['mean']:.4f} ± {d['std']:.4f}"


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} minutes"


PER_SEED = ("epochs_run", "best_epoch")
SCORE_HEADERS = "model|train loss|train accuracy|val. loss|val. accuracy|test accuracy (refit)"
COST_HEADERS = "model|parameters|epochs run (per seed)|best epoch (per seed)|refit epochs|epoch s (wall)|"
COST_HEADERS += "epoch s (CPU)|CPU s in all"


def report(M: dict) -> dict:
    mlp, cnn = M["models"]["mlp"], M["models"]["cnn"]
    names = study.CLASS_NAMES
    keys = ("loss", "accuracy", "val_loss", "val_accuracy")
    rows = []
    for m, mm in M["models"].items():
        if mm["seeds"] > 1:
            rows.append(
                [f"{m.upper()}, mean ± std over {mm['seeds']} seeds", *(pm(mm[k]) for k in keys), "-"]
            )
        best = f"{m.upper()}, seed {mm['chosen_seed']} (lowest validation loss) -> refit"
        rows.append([best, *(mm[k]["chosen"] for k in keys), mm["test_accuracy"]])
    score_table = study.md_table(SCORE_HEADERS.split("|"), rows)
    cost_rows = [[m.upper(), f"{mm['n_parameters']:,}", *(", ".join(map(str, mm[k])) for k in PER_SEED),
                  *(mm[k] for k in ("refit_epochs", "epoch_wall", "epoch_cpu", "cpu_seconds"))]
                 for m, mm in M["models"].items()]  # fmt: skip
    cost_table = study.md_table(COST_HEADERS.split("|"), cost_rows, digits=1)
    counts = M["class_counts"]
    class_rows = [[names[k], *(c[k] for c in counts)] for k in range(10)] + [["total", *map(sum, counts)]]
    gains = sorted(range(10), key=lambda k: M["recall"]["cnn"][k] - M["recall"]["mlp"][k], reverse=True)
    worst = min(range(10), key=lambda k: M["recall"]["cnn"][k])
    init = mlp["initial_loss"] + cnn["initial_loss"]
    recall, confused = M["recall"], M["most_confused"]
    return {
        "quick_note": QUICK_NOTE if M["quick"] else "", "answer": answer(M), "significance": significance(M),
        "seed_spread": seed_spread(M), "generalisation": generalisation(M), "budget": budget(M),
        "edges": edges(M), "init_range": f"{min(init):.3f}-{max(init):.3f}",
        "cost_ratio": f"{cnn['epoch_cpu'] / mlp['epoch_cpu']:.0f}", "score_table": score_table,
        "class_table": study.md_table(["class", "train", "validation", "test"], class_rows),
        "n_train": sum(counts[0]), "n_val": sum(counts[1]), "cost_table": cost_table,
        "gains": ", ".join(f"{names[k]} {recall['mlp'][k]:.3f} -> {recall['cnn'][k]:.3f}" for k in gains[:3]),
        "worst": names[worst], "worst_recall": f"{recall['cnn'][worst]:.3f}",
        "confused": "\n".join(f"- true **{t}** predicted as **{p}**: {n} times" for t, p, n in confused),
        "black": -M["normalisation"]["mean"] / M["normalisation"]["std"], "duration": _duration(M["seconds"]),
        "cpu": _duration(mlp["cpu_seconds"] + cnn["cpu_seconds"]),
        "command": "python -m experiments.cnn" + (" --quick" if M["quick"] else ""),
    }  # fmt: skip


QUICK_NOTE = "\n> **Quick smoke run** (`--quick`): a small subset and two epochs; not the study's numbers.\n"


main = study.main_for(__name__)

if __name__ == "__main__":
    main()
