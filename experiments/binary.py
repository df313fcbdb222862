"""Clothing vs footwear and bags: a binary network, and is it better than binarising a multiclass one?

The lab: group the ten Fashion-MNIST classes into clothing (T-shirt/top, Trouser, Pullover, Dress,
Coat, Shirt -> 0) and footwear and bags (Sandal, Sneaker, Bag, Ankle boot -> 1); train a binary
network (one logit, sigmoid binary cross-entropy) with a validation set, early stopping and a
best-model checkpoint, and measure it with binary metrics (accuracy, precision, recall, F1, ROC
curve and AUC). Then answer: to tell the two groups apart, is it better to train a dedicated binary
network, or to take a 10-class network and map its predicted class to its group?

    python -m experiments.binary [--out DIR] [--quick] [--plot-only] [--workers N] [--seeds N]

``run`` trains, for every seed, one binary network and one 10-class network (the one of
experiments.multiclass, same hidden layer and training), in parallel with ``run_sweep`` (one JSON
per training in DIR/runs, so an interrupted run resumes), each with EarlyStopping, ModelCheckpoint
(DIR/checkpoints/<kind>-seed<s>.npz), HistoryCheckpoint and ReduceLROnPlateau. It then saves:
    results.npz     for every seed, the test outputs of both networks; the 10-class test labels;
                    the images of every test error
    runs.json       settings, seeds, histories, checkpoint information, timings
``plot`` reads only those two files and draws binary_curves.png, binary_confusion.png, roc.png,
comparison.png, errors_binary.png and errors_binarised.png, then writes metrics.json and report.md.

Two ways to binarise the 10-class network are compared; both cost nothing once it is trained:
  * arg-max (the main one): predict the class with the largest logit, then map it to its group;
  * summed probabilities: P(footwear or bag) = sum of the softmax probabilities of the 4 classes,
    predicted positive when it is above 1/2.
The evidence: mean +- std of the test accuracy over the seeds, McNemar's test for each seed's pair
of networks, and ``pooled_sign_flip_test``, an exact paired test that uses all seeds at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from experiments._common import (
    CLASS_NAMES,
    log,
    make_parser,
    md_table,
    read_json,
    run_and_plot,
    write_json,
    write_text,
)
from experiments.multiclass import (
    FULL,
    QUICK,
    EpochLog,
    Settings,
    build_model,
    curves_figure,
    image_rel,
    load_best,
    load_data,
    require,
    seeds,
    train,
)
from minidl import plots
from minidl.callbacks import sigterm_as_interrupt
from minidl.datasets import load_fashion_mnist
from minidl.losses import SigmoidBinaryCrossEntropy, SoftmaxCrossEntropy
from minidl.metrics import confusion_matrix, mcnemar, precision_recall_f1, roc_auc_score, roc_curve
from minidl.model import load_npz, save_npz
from minidl.sweep import default_workers, run_sweep
from minidl.train import predict

NAME = "binary"
DESCRIPTION = (
    "Clothing vs footwear and bags on Fashion-MNIST: a binary network with early stopping and a "
    "checkpoint, its binary metrics and ROC curve; then, over several seeds, a binarised 10-class "
    "network vs the binary network (mean +- std, McNemar tests)."
)

POSITIVE_CLASSES = (5, 7, 8, 9)  # Sandal, Sneaker, Bag, Ankle boot -> 1; the other six -> 0
GROUP_NAMES = ("clothing", "footwear & bags")
GROUP_SHORT = ("clothing", "footwear/bag")  # for small image titles
SEEDS = 5  # trainings of each kind (seeds 0 .. SEEDS-1)
QUICK_SEEDS = 2
TARGET_ACCURACY = 0.995  # the lab's goal for the binary network
ALPHA = 0.05  # significance level of the McNemar tests
MAX_ERROR_IMAGES = 40  # per error figure
METHODS = ("binarised", "summed", "binary")  # result keys, in the order of the figures and tables
METHOD_NAMES = {
    "binarised": "10-class network, arg-max class mapped to its group",
    "summed": "10-class network, group probabilities summed",
    "binary": "binary network",
}


def to_group(y: np.ndarray) -> np.ndarray:
    """10-class labels -> 0 (clothing) / 1 (footwear and bags)."""
    return np.isin(y, POSITIVE_CLASSES).astype(np.int64)


def group_log_odds(logits: np.ndarray) -> np.ndarray:
    """log P(footwear or bag) - log P(clothing) from 10-class logits, computed stably.

    With softmax probabilities p_k = exp(z_k) / sum_j exp(z_j), the sum over a group G is
    exp(logsumexp(z_G)) / sum_j exp(z_j), so the ratio of the two groups' sums is
    exp(logsumexp(z_pos) - logsumexp(z_neg)): the normaliser cancels. Positive <=> P > 1/2.
    """
    z = logits.astype(np.float64)
    pos = np.isin(np.arange(z.shape[1]), POSITIVE_CLASSES)

    def logsumexp(a: np.ndarray) -> np.ndarray:
        top = a.max(axis=1, keepdims=True)
        return (top + np.log(np.exp(a - top).sum(axis=1, keepdims=True)))[:, 0]

    return logsumexp(z[:, pos]) - logsumexp(z[:, ~pos])


def pooled_sign_flip_test(correct_a: np.ndarray, correct_b: np.ndarray) -> dict[str, float | int]:
    """Exact paired test of two methods over several seeds, image by image.

    ``correct_a``, ``correct_b``: booleans ``(seeds, N)``, was test image i right for seed s.
    Per image, k_i = (seeds getting it right with A) - (seeds getting it right with B), an integer
    in [-S, S]; their sum is the difference in total errors, summed over the seeds. If A and B were
    equally good, each k_i would be as likely to come out positive as negative: the test flips the
    sign of every nonzero k_i in all 2**n ways (computed exactly, by convolving the distribution
    one image at a time) and p is the share of flips giving a sum at least as far from 0 as the
    observed one. With one seed this is exactly McNemar's exact test; with several it uses them all
    at once, without pretending that seeds sharing the same test images are independent.
    """
    k = correct_a.sum(axis=0).astype(np.int64) - correct_b.sum(axis=0).astype(np.int64)
    k = np.abs(k[k != 0])
    observed = int(correct_a.sum() - correct_b.sum())
    total = int(k.sum())
    dist = np.zeros(2 * total + 1)  # dist[total + v] = P(sum == v) under the null hypothesis
    dist[total] = 1.0
    for ki in k:  # np.roll never wraps around: the sum stays within [-total, total]
        dist = 0.5 * (np.roll(dist, ki) + np.roll(dist, -ki))
    values = np.arange(-total, total + 1)
    p = float(min(1.0, dist[np.abs(values) >= abs(observed)].sum())) if total else 1.0
    return {"p_value": p, "difference": observed, "images": int(len(k))}


# ---------------------------------------------------------------------------------------------
# Compute
# ---------------------------------------------------------------------------------------------


def train_one(kind: str, seed: int, settings: dict, data_seed: int, checkpoint_dir: str) -> dict:
    """One training of a sweep (runs in a worker process): ``kind`` "binary" (one logit, group
    labels) or "multiclass" (10 logits, class labels). Returns its epoch-level history, checkpoint
    information, time and test outputs of the best weights, reloaded from the checkpoint file."""
    s = Settings(**settings)
    data = load_data(s, data_seed)  # split_data inside is cached per process
    binary = kind == "binary"
    labels = to_group if binary else (lambda y: y)
    model_rng, fit_rng = seeds(seed)
    model = build_model(1 if binary else 10, s, model_rng)
    folder = Path(checkpoint_dir)
    folder.mkdir(parents=True, exist_ok=True)
    checkpoint = folder / f"{kind}-seed{seed}.npz"
    history, reductions, seconds = train(
        model,
        SigmoidBinaryCrossEntropy() if binary else SoftmaxCrossEntropy(),
        data.X_train,
        labels(data.y_train),
        (data.X_val, labels(data.y_val)),
        s,
        checkpoint,
        folder / f"{kind}-seed{seed}.history.json",
        fit_rng,
        callbacks=[EpochLog(f"{kind} seed {seed}")],
        verbose=0,
    )
    info = load_best(model, checkpoint)
    out = predict(model, data.X_test)
    record = history.to_dict()
    del record["step_loss"]  # per-update losses: not used here, and long
    result = {
        "kind": kind,
        "seed": seed,
        "history": record,
        "checkpoint": info,
        "lr_reductions": reductions,
        "train_seconds": seconds,
    }
    if binary:
        result["test_logit"] = out.reshape(-1).astype(float).tolist()
    else:
        result["test_pred"] = out.argmax(axis=1).tolist()
        result["test_group_log_odds"] = group_log_odds(out).tolist()
    return result


def run(args: argparse.Namespace) -> None:
    """Train both kinds of network for every seed (in parallel) and save their test outputs."""
    settings = QUICK if args.quick else FULL
    n_seeds = args.seeds if args.seeds is not None else (QUICK_SEEDS if args.quick else SEEDS)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("results.npz", "runs.json"):  # from an earlier run: must not outlive this one
        (out / stale).unlink(missing_ok=True)
    started = time.perf_counter()
    config = dataclasses.asdict(settings)
    tasks = [
        {"kind": kind, "seed": seed, "settings": config, "data_seed": args.data_seed}
        for seed in range(n_seeds)
        for kind in ("binary", "multiclass")
    ]
    fn = functools.partial(train_one, checkpoint_dir=str((out / "checkpoints").resolve()))
    log(f"{NAME}: {len(tasks)} trainings ({n_seeds} seeds x binary/multiclass)")
    # Every training runs in a spawned worker with one BLAS thread, even with --workers 1, so the
    # results are identical whatever the number of workers.
    workers = min(args.workers or default_workers(), len(tasks))
    with sigterm_as_interrupt():
        sweep = run_sweep(fn, tasks, out / "runs", max_workers=workers)
    sweep.raise_if_failed()
    runs = list(sweep.results.values())  # in task order
    by_kind = {kind: [r for r in runs if r["kind"] == kind] for kind in ("binary", "multiclass")}

    (_, _), (images_test, y_test) = load_fashion_mnist()
    y_test = y_test.astype(np.int64)
    g = to_group(y_test)
    binary_logit = np.array([r["test_logit"] for r in by_kind["binary"]], dtype=np.float64)
    pred10 = np.array([r["test_pred"] for r in by_kind["multiclass"]], dtype=np.int64)
    log_odds = np.array([r["test_group_log_odds"] for r in by_kind["multiclass"]], dtype=np.float64)
    wrong = (binary_logit > 0) != g
    wrong |= to_group(pred10) != g
    wrong |= (log_odds > 0) != g
    error_index = np.flatnonzero(wrong.any(axis=0))
    save_npz(
        out / "results.npz",
        {
            "y_test": y_test,
            "seeds": np.arange(n_seeds),
            "binary_logit": binary_logit,
            "multiclass_pred": pred10,
            "group_log_odds": log_odds,
            "error_index": error_index,
            "error_images": images_test[error_index],
        },
    )
    for r in runs:  # the big per-example lists now live in results.npz
        for key in ("test_logit", "test_pred", "test_group_log_odds"):
            r.pop(key, None)
    write_json(
        out / "runs.json",
        {
            "quick": args.quick,
            "data_seed": args.data_seed,
            "settings": config,
            "seeds": list(range(n_seeds)),
            "workers": workers,
            "runs": runs,
            "sweep_seconds": time.perf_counter() - started,
        },
    )
    log(f"{NAME}: results in {out}")


# ---------------------------------------------------------------------------------------------
# Plot and report
# ---------------------------------------------------------------------------------------------


def scores(res: dict) -> dict[str, np.ndarray]:
    """Per method, the (seeds, N) real-valued score whose sign is the group prediction."""
    return {
        "binarised": np.where(np.isin(res["multiclass_pred"], POSITIVE_CLASSES), 1.0, -1.0),
        "summed": res["group_log_odds"],
        "binary": res["binary_logit"],
    }


def plot(out_dir: Path) -> dict[str, Any]:
    """Draw every figure and write metrics.json and report.md from results.npz and runs.json."""
    out_dir = Path(out_dir)
    require(out_dir, ("results.npz", "runs.json"), NAME)
    info = read_json(out_dir / "runs.json")
    res = load_npz(out_dir / "results.npz")
    y10 = res["y_test"]
    g = to_group(y10)
    seed_list = [int(s) for s in res["seeds"]]
    score = scores(res)
    correct = {m: (score[m] > 0) == g for m in METHODS}  # (seeds, N) booleans
    acc = {m: correct[m].mean(axis=1) for m in METHODS}
    runs = {(r["kind"], r["seed"]): r for r in info["runs"]}

    # The first seed's binary network is "the" binary network of part 1.
    s0 = seed_list[0]
    logit0 = res["binary_logit"][0]
    pred0 = (logit0 > 0).astype(np.int64)
    cm = confusion_matrix(g, pred0, 2)
    precision, recall, f1 = precision_recall_f1(g, pred0, average="binary")
    auc = {m: [roc_auc_score(g, s) for s in score[m]] for m in ("summed", "binary")}
    binary_run = runs[("binary", s0)]

    figures = {
        "curves": out_dir / "binary_curves.png",
        "confusion": out_dir / "binary_confusion.png",
        "roc": out_dir / "roc.png",
        "comparison": out_dir / "comparison.png",
        "errors_binary": out_dir / "errors_binary.png",
        "errors_binarised": out_dir / "errors_binarised.png",
    }
    history = dict(
        binary_run["history"], monitor=info["settings"]["monitor"], lr_factor=info["settings"]["lr_factor"]
    )
    curves_figure(
        history,
        figures["curves"],
        f"Binary network (clothing vs footwear & bags), seed {s0}",
        binary_run["lr_reductions"],
    )
    recall_by_group = np.diag(cm) / cm.sum(axis=1)
    plots.confusion_matrix_plot(
        cm,
        GROUP_NAMES,
        path=figures["confusion"],
        title=f"Binary network (seed {s0}), test set\nrecall: clothing {recall_by_group[0]:.2%}, "
        f"footwear & bags {recall_by_group[1]:.2%}",
    )
    roc_figure(g, logit0, res["group_log_odds"][0], s0, figures["roc"])
    errors_figure(res, correct, "binary", figures["errors_binary"])
    errors_figure(res, correct, "binarised", figures["errors_binarised"])

    tests = []
    for i, seed in enumerate(seed_list):
        row = {"seed": seed}
        for other in ("binarised", "summed"):
            statistic, p, b, c = mcnemar(correct[other][i], correct["binary"][i])
            row[other] = {"statistic": statistic, "p_value": p, "b": b, "c": c}
        tests.append(row)

    pooled = {
        other: pooled_sign_flip_test(correct["binary"], correct[other]) for other in ("binarised", "summed")
    }
    comparison_figure(acc, seed_list, len(g), pooled["binarised"]["p_value"], figures["comparison"])
    mc_acc10 = [float(np.mean(res["multiclass_pred"][i] == y10)) for i in range(len(seed_list))]
    metrics = {
        "test_accuracy": float(acc["binary"][0]),
        "binary": {
            "seed": s0,
            "accuracy": float(acc["binary"][0]),
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "auc": auc["binary"][0],
            "confusion_matrix": cm.tolist(),
            "best_epoch": binary_run["checkpoint"]["best_epoch"],
            "epochs_trained": binary_run["history"]["epoch"][-1],
            "train_seconds": binary_run["train_seconds"],
            "positive_class": GROUP_NAMES[1],
        },
        "comparison": {
            "seeds": seed_list,
            **{
                m: {
                    "accuracy": acc[m].tolist(),
                    "mean": float(acc[m].mean()),
                    "std": float(acc[m].std()),
                    "errors": (len(g) - correct[m].sum(axis=1)).tolist(),
                }
                for m in METHODS
            },
            "auc_binary": auc["binary"],
            "auc_summed": auc["summed"],
            "multiclass_10_class_accuracy": mc_acc10,
            "mcnemar": tests,
            "pooled_test": pooled,
            "alpha": ALPHA,
        },
        "errors_first_seed": {
            m: {
                "count": int((~correct[m][0]).sum()),
                "shared_with_binary": int((~correct[m][0] & ~correct["binary"][0]).sum()),
                "by_true_class": {
                    CLASS_NAMES[k]: int(v)
                    for k, v in sorted(
                        enumerate(np.bincount(y10[~correct[m][0]], minlength=10)), key=lambda kv: -kv[1]
                    )
                    if v
                },
            }
            for m in ("binary", "binarised")
        },
        "best_epochs": {
            kind: [runs[(kind, s)]["checkpoint"]["best_epoch"] for s in seed_list]
            for kind in ("binary", "multiclass")
        },
        "train_seconds": {
            kind: [runs[(kind, s)]["train_seconds"] for s in seed_list] for kind in ("binary", "multiclass")
        },
        "sweep_seconds": info["sweep_seconds"],
        "quick": info["quick"],
    }
    write_json(out_dir / "metrics.json", metrics)
    write_text(out_dir / "report.md", report_md(info, metrics, figures))
    return metrics


def roc_figure(g: np.ndarray, logit: np.ndarray, log_odds: np.ndarray, seed: int, path: Path) -> None:
    """ROC curves of the binary network and of the 10-class network's summed group probability:
    the whole curve, and the top-left corner where the two differ, with the 0.5 threshold marked."""
    fig = plots.new_figure(12.0, 5.0)
    axes = fig.subplots(1, 2)
    curves = (
        ("binary network", logit, "C0"),
        ("10-class network, summed group probability", log_odds, "C1"),
    )
    for ax, zoom in zip(axes, (False, True), strict=True):
        for label, s, color in curves:
            fpr, tpr, _ = roc_curve(g, s)
            auc = roc_auc_score(g, s)
            ax.plot(fpr, tpr, color=color, lw=1.8, drawstyle="steps-post", label=f"{label} (AUC {auc:.5f})")
            pred = s > 0
            point = (np.mean(pred[g == 0]), np.mean(pred[g == 1]))
            ax.plot(*point, "o", color=color, mec="k", ms=7, zorder=5)
        ax.plot([], [], "o", color="0.6", mec="k", label="threshold: probability 0.5 (logit 0)")
        if zoom:
            ax.set_xlim(0, 0.03)
            ax.set_ylim(0.95, 1.001)
            ax.set_title("Zoom on the top-left corner")
        else:
            ax.plot([0, 1], [0, 1], color="0.6", ls="--", lw=1, label="chance (AUC 0.5)")
            ax.set_xlim(-0.01, 1)
            ax.set_ylim(0, 1.01)
            ax.set_title("ROC curve")
        ax.set_xlabel("false positive rate (clothing called footwear/bag)")
        ax.set_ylabel("true positive rate (footwear/bags found)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8.5, loc="lower right")
    fig.suptitle(f"ROC on the test set, positive class = footwear & bags (seed {seed})")
    plots.save_figure(fig, path)


def comparison_figure(
    acc: dict[str, np.ndarray], seed_list: list[int], n_test: int, p_value: float, path: Path
) -> None:
    """Test accuracy of the three methods: one dot per seed (lines join the same seed), mean +- std,
    and a note saying how small the y range is and whether the difference is significant."""
    fig = plots.new_figure(8.5, 5.6)
    ax = fig.add_subplot()
    x = np.arange(len(METHODS))
    A = np.array([acc[m] for m in METHODS])  # (methods, seeds)
    for j, seed in enumerate(seed_list):
        jitter = (j - (len(seed_list) - 1) / 2) * 0.03
        ax.plot(x + jitter, A[:, j], "o-", color=f"C{j % 10}", ms=5, lw=0.8, alpha=0.7, label=f"seed {seed}")
    mean, std = A.mean(axis=1), A.std(axis=1)
    ax.errorbar(
        x + 0.22, mean, yerr=std, fmt="D", color="k", ms=7, capsize=6, lw=1.5, label="mean ± std over seeds"
    )
    errors, errors_std = (1 - mean) * n_test, std * n_test
    for i in range(len(METHODS)):
        ax.annotate(
            f"{mean[i]:.3%}\n{errors[i]:.1f} ± {errors_std[i]:.1f}\nerrors",
            (x[i] + 0.22, mean[i]),
            xytext=(10, 0),
            textcoords="offset points",
            va="center",
            fontsize=9,
        )
    labels = [
        "10-class network\narg-max class → group",
        "10-class network\ngroup probabilities summed",
        "binary network\n(one logit)",
    ]
    ax.set_xticks(x, labels=labels)
    ax.set_xlim(-0.4, len(METHODS) - 0.3)
    ax.set_ylabel("test accuracy, clothing vs footwear & bags")
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:.2%}")
    right = ax.secondary_yaxis("right", functions=(lambda a: (1 - a) * n_test, lambda e: 1 - e / n_test))
    right.set_ylabel(f"test errors (of {n_test})")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8.5, ncols=2, loc="best")
    ax.set_title(f"Binarised 10-class network vs binary network, {len(seed_list)} seeds")
    low, high = ax.get_ylim()
    verdict = "significant" if p_value < ALPHA else "not significant"
    fig.text(
        0.5,
        0.0,
        f"Note the scale: the whole y axis spans {(high - low) * n_test:.0f} test images out of {n_test}. "
        f"Binary network vs arg-max, all seeds pooled: paired test p = {p_value:.2g} ({verdict} at {ALPHA}).",
        ha="center",
        va="top",
        fontsize=9,
        wrap=True,
    )
    plots.save_figure(fig, path)


def errors_figure(res: dict, correct: dict[str, np.ndarray], method: str, path: Path) -> None:
    """The first seed's test errors of ``method`` as images; titles say what the other network did."""
    y10, index, images = res["y_test"], res["error_index"], res["error_images"]
    other = "binarised" if method == "binary" else "binary"
    wrong = np.flatnonzero(~correct[method][0])
    position = np.searchsorted(index, wrong)  # where each error's image is stored
    both = ~correct[other][0][wrong]
    if method == "binary":
        predicted = [GROUP_SHORT[int(res["binary_logit"][0][i] > 0)] for i in wrong]
        who, other_name = "binary network", "binarised 10-class network"
    else:
        predicted = [CLASS_NAMES[res["multiclass_pred"][0][i]] for i in wrong]
        who, other_name = "10-class network, arg-max class mapped to its group", "binary network"
    seed = int(res["seeds"][0])
    title = (
        f"Test errors of the {who} (seed {seed}): {len(wrong)} images, {int(both.sum())} of them "
        f"also wrong for the {other_name} (marked 'both')"
    )
    if len(wrong) > MAX_ERROR_IMAGES:
        title += f"; the first {MAX_ERROR_IMAGES} shown"
    shown = slice(0, MAX_ERROR_IMAGES)
    if len(wrong) == 0:
        fig = plots.new_figure(7, 1.5)
        fig.text(0.5, 0.5, f"The {who} (seed {seed}) makes no error on the test set", ha="center")
        plots.save_figure(fig, path)
        return
    titles = [
        f"true: {CLASS_NAMES[y10[i]]} / pred: {p}" + ("\nboth" if b else "")
        for i, p, b in zip(wrong, predicted, both, strict=True)
    ]
    plots.image_grid(images[position][shown], titles=titles[shown], ncols=10, path=path, title=_wrap(title))


def _wrap(text: str, width: int = 110) -> str:
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return "\n".join([*lines, line])


def verdict(m: dict) -> tuple[str, str]:
    """The answer to the lab's question, (one-sentence answer, how sure it is), from the per-seed
    accuracies, the per-seed McNemar tests and the test pooling all seeds."""
    c = m["comparison"]
    n = len(c["seeds"])
    diff = np.array(c["binary"]["accuracy"]) - np.array(c["binarised"]["accuracy"])
    p_values = [t["binarised"]["p_value"] for t in c["mcnemar"]]
    significant = sum(p < ALPHA for p in p_values)
    ahead, behind = int((diff > 0).sum()), int((diff < 0).sum())
    pooled = c["pooled_test"]["binarised"]
    fewer = pooled["difference"] / n  # errors per seed the binary network avoids (negative: makes more)
    better, worse = ("binary network", "binarised 10-class network")[:: 1 if fewer >= 0 else -1]
    summary = (
        f"Over {n} seeds the binary network makes on average {abs(fewer):.1f} "
        f"{'fewer' if fewer >= 0 else 'more'} test errors (of 10000) than the binarised 10-class "
        f"network ({c['binary']['mean']:.2%} ± {c['binary']['std']:.2%} vs {c['binarised']['mean']:.2%} "
        f"± {c['binarised']['std']:.2%}); it is ahead in {ahead} of {n} seeds and behind in {behind}."
    )
    tests = (
        f"McNemar's test, seed by seed, on the test images where the two networks disagree: p = "
        f"{', '.join(f'{p:.3g}' for p in p_values)} ({significant} of {n} below {ALPHA}). The paired "
        f"test pooling all {n} seeds image by image: p = {pooled['p_value']:.3g}."
    )
    if pooled["p_value"] < ALPHA:
        answer = (
            f"The {better} is more accurate than the {worse}, by {abs(fewer):.1f} test errors in "
            "10000, and the difference is significant when all seeds are pooled."
        )
        sure = (
            f"The pooled test says a difference this large would arise by chance with probability "
            f"{pooled['p_value']:.2g} if the two were equally good; it is a small difference all the same."
        )
    else:
        answer = (
            "On this evidence the two are equally good: the difference is not significant. "
            f"The {better} is slightly ahead on average ({abs(fewer):.1f} fewer errors in 10000), but "
            "that is within what the luck of the test images explains."
        )
        sure = (
            f"If the two were equally good, a difference at least this large would still turn up "
            f"with probability {pooled['p_value']:.2g}. "
            + (
                f"That the {better} is ahead in {max(ahead, behind)} of {n} seeds does not add much: "
                "all seeds are scored on the same test images, so the same few images can tip every "
                "seed the same way; the pooled test accounts for that."
                if max(ahead, behind) == n and n > 1
                else ""
            )
        )
    return answer, f"{summary} {tests} {sure}"


def report_md(info: dict, m: dict, figures: dict[str, Path]) -> str:
    s = info["settings"]
    b = m["binary"]
    c = m["comparison"]
    n = len(c["seeds"])
    cm = np.array(b["confusion_matrix"])
    met = "meets" if b["accuracy"] >= TARGET_ACCURACY else "does **not** meet"
    answer, sureness = verdict(m)
    quick = (
        "\n> **Quick smoke run** (`--quick`): a few epochs on a small subsample and only "
        f"{n} seeds. The numbers below only show that the code works; run without `--quick` for "
        "the real ones.\n"
        if info["quick"]
        else ""
    )
    positive = ", ".join(CLASS_NAMES[k] for k in POSITIVE_CLASSES)
    negative = ", ".join(CLASS_NAMES[k] for k in range(10) if k not in POSITIVE_CLASSES)
    history = None
    for r in info["runs"]:
        if r["kind"] == "binary" and r["seed"] == b["seed"]:
            history = r["history"]
    h = history["history"]
    stop = history["stop_reason"] or f"ran all {s['max_epochs']} epochs"

    rows = []
    for t, acc_bin, acc_mc, acc_sum, err_bin, err_mc in zip(
        c["mcnemar"],
        c["binary"]["accuracy"],
        c["binarised"]["accuracy"],
        c["summed"]["accuracy"],
        c["binary"]["errors"],
        c["binarised"]["errors"],
        strict=True,
    ):
        rows.append(
            [
                t["seed"],
                f"{acc_mc:.4f} ({err_mc})",
                f"{acc_bin:.4f} ({err_bin})",
                t["binarised"]["b"],
                t["binarised"]["c"],
                f"{t['binarised']['p_value']:.3g}",
                f"{acc_sum:.4f}",
                f"{t['summed']['p_value']:.3g}",
            ]
        )
    mean_rows = [
        [METHOD_NAMES[k], f"{c[k]['mean']:.4f} ± {c[k]['std']:.4f}", f"{np.mean(c[k]['errors']):.1f}"]
        for k in METHODS
    ]
    acc10 = c["multiclass_10_class_accuracy"]
    e = m["errors_first_seed"]

    def by_class(errors: dict) -> str:
        return ", ".join(f"{name} {count}" for name, count in errors["by_true_class"].items())

    pooled, pooled_summed = c["pooled_test"]["binarised"], c["pooled_test"]["summed"]
    sig_summed = sum(t["summed"]["p_value"] < ALPHA for t in c["mcnemar"])
    minutes = m["sweep_seconds"] / 60

    lines = [
        "# Clothing vs footwear and bags: binary network, and binarised 10-class network",
        quick,
        "**Questions.** (1) Train a network that only tells clothing from footwear and bags, with a "
        "validation set, early stopping and a best-model checkpoint; how good is it? (2) Is it better "
        "to train such a dedicated binary network, or to train the usual 10-class network and map "
        "its predicted class to its group?",
        "",
        f"**Answers (this run).** (1) The binary network (seed {b['seed']}) classifies "
        f"**{b['accuracy']:.2%}** of the 10000 test images into the right group, with an AUC of "
        f"**{b['auc']:.5f}**; that {met} the lab's target of {TARGET_ACCURACY:.1%}. "
        f"(2) **{answer}**",
        "",
        sureness,
        "",
        "## Set-up",
        "",
        f"- **Groups**: clothing (label 0) = {negative}; footwear and bags (label 1, the positive "
        f"class) = {positive}. In the test set: {int((cm.sum(axis=1))[0])} clothing and "
        f"{int(cm.sum(axis=1)[1])} footwear and bags images.",
        "- **Data**: the same stratified split as experiments.multiclass (50000 training images, "
        "10000 validation, the 10000 official test images used only at the end), pixels "
        "standardised with the training statistics."
        + (
            f" Quick run: {s['n_train']} training and {s['n_val']} validation images."
            if info["quick"]
            else ""
        ),
        f"- **Networks**: 784 -> {s['hidden']} ReLU -> Dropout(p={s['dropout']}) -> one logit "
        "(sigmoid binary cross-entropy, `SigmoidBinaryCrossEntropy`) for the binary network, 10 logits "
        "(softmax cross-entropy) for the 10-class network: the same hidden layer, only the output "
        "differs.",
        f"- **Training** (both): Adam (learning rate {s['lr']:g}), mini-batches of {s['batch_size']}, "
        f'at most {s["max_epochs"]} epochs, `EarlyStopping(monitor="{s["monitor"]}", '
        f"patience={s['patience']}, restore_best_weights=True)`, `ModelCheckpoint` (best only, "
        "`checkpoints/<kind>-seed<s>.npz`), `HistoryCheckpoint` and `ReduceLROnPlateau(monitor="
        f'"{s["lr_monitor"]}", factor={s["lr_factor"]}, patience={s["lr_patience"]})`, exactly as in '
        "experiments.multiclass. The test outputs come from the weights reloaded from the checkpoint "
        "file.",
        f"- **Seeds**: {n} per kind of network ({', '.join(map(str, c['seeds']))}): the seed sets the "
        "initial weights, the dropout masks and the order of the examples. The "
        f"{2 * n} trainings ran in parallel with `minidl.sweep.run_sweep`; they took "
        f"{minutes:.1f} min in all.",
        "",
        f"## 1. The binary network (seed {b['seed']})",
        "",
        image_rel(figures["curves"], "Binary network: loss and accuracy per epoch, best epoch marked"),
        "",
        f"Before training the loss was {h['loss'][0]:.3f} (ln 2 = {math.log(2):.3f} for a coin "
        f"flip). The best epoch by `{s['monitor']}` was **{b['best_epoch']}** of "
        f"{b['epochs_trained']} trained ({stop}); at that epoch the validation accuracy was "
        f"{h['val_accuracy'][history['epoch'].index(b['best_epoch'])]:.2%}. Training took "
        f"{b['train_seconds']:.0f} s. After the first epoch the validation accuracy was already "
        f"{h['val_accuracy'][1]:.2%}: the two groups have very different shapes, and what is left to "
        "learn afterwards are a few ambiguous images.",
        "",
        md_table(
            ["test metric (positive class: footwear & bags)", "value"],
            [
                ["accuracy", f"{b['accuracy']:.4f}"],
                ["precision (of the images called footwear/bag, share that are)", f"{b['precision']:.4f}"],
                ["recall (of the footwear and bags, share found)", f"{b['recall']:.4f}"],
                ["F1 (harmonic mean of precision and recall)", f"{b['f1']:.4f}"],
                ["AUC (area under the ROC curve)", f"{b['auc']:.5f}"],
                ["errors", f"{int(cm[0, 1] + cm[1, 0])} of {int(cm.sum())}"],
            ],
        ),
        "",
        image_rel(figures["confusion"], "Binary network: confusion matrix on the test set"),
        "",
        f"{int(cm[0, 1])} clothing images were called footwear/bag (false positives) and "
        f"{int(cm[1, 0])} footwear or bag images were called clothing (false negatives).",
        "",
        image_rel(figures["roc"], "ROC curves on the test set"),
        "",
        "The ROC curve shows every trade-off between false and true positive rate that moving the "
        "decision threshold allows; the dot is the usual threshold (probability 0.5). The AUC is the "
        "probability that a random footwear/bag image gets a higher score than a random clothing "
        "image. The 10-class network's summed probability of the four footwear and bag classes is "
        "drawn too: it is also a score for the same question.",
        "",
        "## 2. Binarise a 10-class network, or train a binary one?",
        "",
        "The 10-class network can answer the binary question in two ways, both free once it is "
        "trained: **arg-max** (the main method here, the lab's: take the predicted class, map it to "
        "its group) or **summed probabilities** (add the softmax probabilities of the four footwear "
        "and bag classes, answer 1 if the sum is above 1/2). They differ only on images where the "
        "probability is spread over several classes.",
        "",
        md_table(["method", "test accuracy, mean ± std", "test errors, mean"], mean_rows),
        "",
        f"(std: population standard deviation over the {n} seeds. Mean AUC over seeds: binary network "
        f"{np.mean(c['auc_binary']):.5f}, summed probabilities {np.mean(c['auc_summed']):.5f}. "
        "The 10-class networks' own 10-class test accuracy: "
        f"{np.mean(acc10):.2%} ± {np.std(acc10):.2%}.)",
        "",
        image_rel(figures["comparison"], "Test accuracy per seed of the three methods"),
        "",
        "**Paired test, seed by seed.** Both networks of a seed classify the same 10000 test "
        "images, so they are compared image by image with McNemar's test: b = images the binarised "
        "network gets right and the binary network wrong, c = the reverse. If both had the same "
        "error rate, each disagreement would go either way with probability 1/2; p is the "
        "probability of a split at least as lopsided as b : c under that hypothesis (exact binomial "
        "test when b + c < 25, else the chi-square test with continuity correction).",
        "",
        md_table(
            [
                "seed",
                "arg-max binarised: accuracy (errors)",
                "binary network: accuracy (errors)",
                "b",
                "c",
                "p (McNemar)",
                "summed probabilities: accuracy",
                "p (summed vs binary)",
            ],
            rows,
        ),
        "",
        f"The summed-probability variant against the binary network: {sig_summed} of {n} tests "
        f"significant at {ALPHA}.",
        "",
        "**How sure is the answer?** Each McNemar test covers the luck of the test images for one "
        "pair of trained networks. The tests of different seeds are not independent (they score the "
        "same test images), so they cannot simply be multiplied or counted. The pooled test uses "
        "every seed at once: for each test image it counts how many of the "
        f"{n} binary networks and how many of the {n} binarised networks got it right, and asks "
        "whether the per-image differences lean to one side more than random signs would "
        "(an exact sign-flip test; with a single seed it is McNemar's exact test). It gives "
        f"p = {pooled['p_value']:.3g} for arg-max vs the binary network ({pooled['difference']:+d} "
        f"correct answers in total for the binary network over the {n} seeds, from "
        f"{pooled['images']} images where the two disagree at least once) and "
        f"p = {pooled_summed['p_value']:.3g} for summed probabilities vs the binary network.",
        "",
        "### The errors, as images",
        "",
        image_rel(figures["errors_binary"], "Test errors of the binary network"),
        "",
        image_rel(figures["errors_binarised"], "Test errors of the binarised 10-class network"),
        "",
        "Titles give the true class and the prediction (for the 10-class network, the predicted "
        "class, whose group is the prediction); 'both' marks an image the other network gets wrong "
        f"too. For seed {b['seed']} the binary network makes {e['binary']['count']} errors and the "
        f"binarised network {e['binarised']['count']}; {e['binarised']['shared_with_binary']} of "
        "them are the same images. By true class, binary network: "
        f"{by_class(e['binary'])}; binarised network: {by_class(e['binarised'])}. Most shared errors "
        "are hard to call even for a person (bags without a visible handle look like tops); the rest "
        "is what one network happens to get right and the other not.",
        "",
        "## Files and reproduction",
        "",
        f"`python -m experiments.{NAME} --out DIR{' --quick' if info['quick'] else ''}` trains and writes "
        "everything here (add `--workers N` to choose the number of parallel processes); "
        "`--plot-only` redraws the figures and this report from `results.npz` and `runs.json`. "
        "`runs/` holds one JSON per training (an interrupted run resumes from them), `checkpoints/` the "
        "best weights and the history of every training, `metrics.json` every number quoted here.",
        "",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------


def summary_table(m: dict) -> str:
    c = m["comparison"]
    rows = [
        [METHOD_NAMES[k], f"{c[k]['mean']:.4f} ± {c[k]['std']:.4f}", f"{np.mean(c[k]['errors']):.1f}"]
        for k in METHODS
    ]
    p = ", ".join(f"{t['binarised']['p_value']:.3g}" for t in c["mcnemar"])
    p += f"; all seeds pooled: {c['pooled_test']['binarised']['p_value']:.3g}"
    b = m["binary"]
    head = md_table(
        ["binary network", "test accuracy", "precision", "recall", "F1", "AUC", "best epoch"],
        [
            [
                f"seed {b['seed']}",
                b["accuracy"],
                b["precision"],
                b["recall"],
                b["f1"],
                f"{b['auc']:.5f}",
                b["best_epoch"],
            ]
        ],
    )
    table = md_table(["method", f"test accuracy over {len(c['seeds'])} seeds", "errors (mean)"], rows)
    return f"{head}\n\n{table}\n\nMcNemar p (arg-max binarised vs binary), per seed: {p}"


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = make_parser(NAME, DESCRIPTION)
    parser.add_argument(
        "--seeds",
        type=int,
        default=None,
        help=f"seeds per kind of network (default {SEEDS}, {QUICK_SEEDS} with --quick)",
    )
    args = parser.parse_args(argv)
    return run_and_plot(
        args,
        run,
        plot,
        summary_table,
        name=NAME,
        resume_hint=f"the finished trainings are saved in {args.out / 'runs'}, and the same command resumes from them",
    )


if __name__ == "__main__":
    main()
