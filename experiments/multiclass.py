"""A 10-class network trained with a validation set, early stopping and a best-model checkpoint.

The lab: train 784 -> 256 ReLU -> Dropout -> 10 on Fashion-MNIST with Adam for at most 50
epochs, watching a validation set: ReduceLROnPlateau lowers the learning rate when the
validation loss stalls, EarlyStopping ends training when the validation accuracy stops improving
(and restores the best weights), ModelCheckpoint keeps the best model in a file. Then read the
learning curves, the test accuracy and the confusion matrix: which classes does it mix up, and
what do those images look like?

    python -m experiments.multiclass [--out DIR] [--quick] [--plot-only] [--set seed=S]

The training runs in a worker process, its checkpoint in a temporary folder; the file comes back
as the run's arrays, is saved as DIR/best.npz, and the final model is loaded from it.
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
from minidl.losses import SoftmaxCrossEntropy
from minidl.metrics import classification_report, confusion_matrix, most_confused_pairs
from minidl.model import Sequential, load_npz
from minidl.optim import Adam
from minidl.train import fit, predict

NAME = "multiclass"
FULL = {
    "hidden": 256,  # units of the hidden layer
    "dropout": 0.2,  # probability of zeroing a hidden unit during training
    "lr": 1e-3,  # Adam's first learning rate
    "batch_size": 128,
    "max_epochs": 50,
    "monitor": "val_accuracy",  # what EarlyStopping and ModelCheckpoint watch
    "patience": 5,  # EarlyStopping: epochs without a better `monitor` before stopping
    "lr_patience": 2,  # ReduceLROnPlateau: epochs without a lower validation loss ...
    "lr_factor": 0.5,  # ... before the learning rate is multiplied by this
    "n_train": None,  # stratified subsample of the 50000 training images (None: all)
    "n_val": None,  # stratified subsample of the 10000 validation images (None: all)
    "seed": 0,  # the network's seed: weights, dropout masks, example order
}
QUICK = {**FULL, "max_epochs": 3, "patience": 2, "lr_patience": 1, "n_train": 3000, "n_val": 1000}
HANDOUT = (0.85, 0.90)  # the lab handout expects "about 85-90%" test accuracy
TORSO = [0, 2, 3, 4, 6]  # T-shirt/top, Pullover, Dress, Coat, Shirt
FOOTWEAR = [5, 7, 9]  # Sandal, Sneaker, Ankle boot
N_PAIRS, N_EXAMPLES = 4, 8  # most-confused pairs shown as images, images per pair
FIGURES = ("curves", "confusion", "confused_pairs")


def network(hidden: int, dropout: float, streams: dict[str, np.random.Generator]) -> Sequential:
    """784 -> hidden -> ReLU -> Dropout -> 10 logits."""
    layers = [Dense(784, hidden, rng=streams["weights"]), ReLU(), Dropout(dropout, rng=streams["dropout"])]
    return Sequential([*layers, Dense(hidden, 10, rng=streams["weights"])])


def train_one(settings: dict[str, Any], data_seed: int) -> dict[str, Any]:
    """One training with the three callbacks; the record's arrays are the checkpoint file's content."""
    s = settings
    data = study.load_data("standardise", s["n_train"], s["n_val"], data_seed)
    streams = study.seed_streams(s["seed"])
    model = network(s["hidden"], s["dropout"], streams)
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
            data.y_train,
            loss=SoftmaxCrossEntropy(),
            optimizer=optimizer,
            epochs=s["max_epochs"],
            batch_size=s["batch_size"],
            validation_data=(data.X_val, data.y_val),
            callbacks=[early, checkpoint, slower],
            rng=streams["order"],
            verbose=2,
        )
        seconds = time.perf_counter() - started
        saved = load_npz(path)  # the checkpoint file's content
    sizes = {"n_train": len(data.y_train), "n_val": len(data.y_val), "summary": model.summary()}
    return study.record(
        history, lr_reductions=slower.reductions, train_seconds=seconds, arrays=saved, **sizes
    )


def run(st: study.Study, settings: dict) -> dict[str, Any]:
    key = f"seed{settings['seed']}"
    rec = st.train(train_one, {key: {"settings": settings, "data_seed": st.args.data_seed}})[key]
    st.save_arrays("best", rec.pop("arrays"))  # ModelCheckpoint's file, as the worker wrote it
    checkpoint = read_checkpoint_info(st.out / "best.npz")  # the best epoch and score are in the file
    # The test set, once: scored by the weights of the checkpoint file, loaded back from disk.
    model = network(settings["hidden"], settings["dropout"], study.seed_streams(settings["seed"]))
    model.load(st.out / "best.npz")
    data = study.load_data("standardise", settings["n_train"], settings["n_val"], st.args.data_seed)
    X_test, y_test, images = study.test_set(data)
    logits = predict(model, X_test)
    pred = logits.argmax(axis=1)
    wrong = np.flatnonzero(pred != y_test)
    st.save_arrays("test_errors", {"true": y_test[wrong], "predicted": pred[wrong], "images": images[wrong]})
    return {
        **rec,
        "checkpoint": checkpoint,
        "data_seed": st.args.data_seed,
        "test_loss": SoftmaxCrossEntropy().forward(logits.astype(np.float64), y_test),
        "confusion_matrix": confusion_matrix(y_test, pred, 10).tolist(),
        "classification_report": classification_report(
            y_test, pred, target_names=list(study.CLASS_NAMES), digits=3
        ),
    }


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    h, cm = results["history"], np.array(results["confusion_matrix"])
    last = len(h["loss"]) - 1
    lowest = 1 + int(np.argmin(h["val_loss"][1:]))
    reductions = [epoch for epoch, _ in results["lr_reductions"]]
    off = cm - np.diag(np.diag(cm))
    shoes = int(off[np.ix_(FOOTWEAR, FOOTWEAR)].sum())  # errors among the three kinds of footwear
    pairs = most_confused_pairs(cm, k=N_PAIRS)
    names = study.CLASS_NAMES
    best = results["checkpoint"]["best_epoch"]
    copied = "test_loss stop_reason train_seconds n_train n_val summary quick data_seed".split()
    return {
        "test_accuracy": float(np.trace(cm) / cm.sum()),
        **{k: results[k] for k in copied},
        "best_epoch": best,
        "best_score": results["checkpoint"]["best_score"],
        "at_best": {k: v[best] for k, v in h.items()},  # the history at the best epoch
        "epochs_trained": last,
        "lowest_val_loss_epoch": lowest,
        "lowest_val_loss": h["val_loss"][lowest],
        "history": h,
        "lr_reductions": reductions,
        "final_lr": results["lr_reductions"][-1][1] if reductions else results["settings"]["lr"],
        "run_seconds": results["seconds"],
        "per_class_recall": dict(zip(names, (np.diag(cm) / cm.sum(axis=1)).tolist(), strict=True)),
        "confusion_matrix": cm.tolist(),
        "most_confused_pairs": [  # true, predicted, count, share of the true class, count the other way
            [names[t], names[p], c, c / int(cm[t].sum()), int(cm[p, t])] for t, p, c in pairs
        ],
        "confused_classes": [[int(t), int(p)] for t, p, _ in pairs],
        "errors": int(off.sum()),
        "torso_errors": int(off[np.ix_(TORSO, TORSO)].sum()),
        "footwear_errors": shoes,
        "footwear_other_errors": int(off[FOOTWEAR].sum() + off[:, FOOTWEAR].sum()) - 2 * shoes,
        "classification_report": results["classification_report"].rstrip(),
        "settings": results["settings"],
    }


def figures(m: dict[str, Any], out: Path) -> None:
    best, lowest = m["best_epoch"], m["lowest_val_loss_epoch"]
    marks = {f"best {m['settings']['monitor']}: its weights are kept": best}
    if lowest != best:
        marks["lowest validation loss"] = lowest
    title = "Multiclass network (10 classes): learning curves"
    plots.epoch_curves(m["history"], out / "curves.png", title, marks, m["lr_reductions"])
    title = f"Test set, best weights (epoch {best}): confusion matrix"
    plots.confusion_matrices(
        m["confusion_matrix"], study.CLASS_NAMES, path=out / "confusion.png", title=title
    )
    errors = study.load_arrays(out, "test_errors")
    pairs = m["confused_classes"]
    rows = [np.flatnonzero((errors["true"] == t) & (errors["predicted"] == p)) for t, p in pairs]
    n = min([N_EXAMPLES, *(len(r) for r in rows)])  # every row shows as many images
    chosen = np.concatenate([r[:n] for r in rows]).astype(np.int64)  # the first ones, in test-set order
    titles = [
        f"true: {study.CLASS_NAMES[t]} / pred: {study.CLASS_NAMES[p]}" for t, p in pairs for _ in range(n)
    ]
    title = f"The {len(pairs)} most frequent confusions on the test set (one row per pair)"
    path = out / "confused_pairs.png"
    plots.image_grid(errors["images"][chosen], titles=titles, ncols=max(n, 1), path=path, title=title)


def handout_text(accuracy: float) -> str:
    low, high = HANDOUT
    where = "within" if low <= accuracy <= high else ("above" if accuracy > high else "below")
    return f'The lab handout expects "about 85-90%"; this run\'s {accuracy:.2%} is {where} that range.'


def stop_text(m: dict[str, Any]) -> str:
    if m["stop_reason"]:
        return f"Training ended after epoch {m['epochs_trained']}: {m['stop_reason']}."
    return f"Training ran all {m['settings']['max_epochs']} epochs without early stopping triggering."


def schedule_text(m: dict[str, Any]) -> str:
    """What ReduceLROnPlateau did to the learning rate."""
    at, lr, last = m["lr_reductions"], m["settings"]["lr"], m["epochs_trained"]
    if not at:
        return f"The learning rate stayed at {lr:g}: the validation loss never stalled long enough."
    used = lr * m["settings"]["lr_factor"] ** sum(e < last for e in at)  # in the last epoch
    return (
        f"ReduceLROnPlateau lowered the learning rate after epoch{'s' * (len(at) > 1)} "
        f"{', '.join(map(str, at))} (green triangles): the last epoch took steps of {used:.2g}, "
        f"{lr / used:.0f} times smaller than the first ones ({lr:g})."
    )


def late_text(m: dict[str, Any]) -> str:
    """What the end of the validation curve shows, and no more."""
    h, low, last = m["history"], m["lowest_val_loss_epoch"], m["epochs_trained"]
    if low == last:
        return "The validation loss was still at its lowest in the last epoch: more epochs might help."
    v0, v1 = h["val_loss"][low], h["val_loss"][last]
    gap = h["accuracy"][last] - h["val_accuracy"][last]
    smaller = ", at the smaller learning rates," if m["lr_reductions"] else ""
    return (
        f"After epoch {low} the training loss went on falling ({h['loss'][low]:.4f} -> "
        f"{h['loss'][last]:.4f}) while the validation loss changed by {v1 - v0:+.4f} ({v0:.4f} -> "
        f"{v1:.4f} at epoch {last}). So the later epochs{smaller} no longer lowered the validation loss; "
        "the curve does not show what more epochs at another learning rate would do. The gap between "
        f"train and validation accuracy ({100 * gap:.1f} points at the end) is how much better the "
        "network does on its own training images than on new ones: that part of what it learned does "
        "not carry over (over-fitting)."
    )


def report(m: dict[str, Any]) -> dict[str, Any]:
    recall, pairs = m["per_class_recall"], m["most_confused_pairs"]
    order = sorted(recall, key=recall.get)
    mistake = " The most frequent mistake: {} predicted as {} ({} test images)."
    return {
        "quick_note": "\n> **Quick smoke run** (`--quick`): a few epochs on a small subsample; the numbers "
        "only show that the code works.\n"
        if m["quick"]
        else "",
        "handout": handout_text(m["test_accuracy"]),
        "seconds_per_epoch": f"{m['train_seconds'] / max(m['epochs_trained'], 1):.2f}",
        "top_confusion": mistake.format(*pairs[0][:3]) if pairs else "",
        "stop": stop_text(m),
        "schedule": schedule_text(m),
        "late": late_text(m),
        "best_classes": ", ".join(f"{k} ({recall[k]:.1%})" for k in order[::-1][:3]),
        "worst_classes": ", ".join(f"{k} ({recall[k]:.1%})" for k in order[:3]),
        "pairs_table": study.md_table(
            ["true class", "predicted as", "test images", "share of the true class", "reverse"],
            [[t, p, c, f"{share:.1%}", r] for t, p, c, share, r in pairs],
        ),
        "torso_share": f"{m['torso_errors'] / max(m['errors'], 1):.0%}",
        "torso_names": ", ".join(study.CLASS_NAMES[k] for k in TORSO),
        "quick_flag": " --quick" if m["quick"] else "",
    }


main = study.main_for(__name__)

if __name__ == "__main__":
    main()
