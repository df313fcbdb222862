"""Hyper-parameter studies of small multi-layer perceptrons, in five parts that can run alone.

a. Architecture: (10,), (25,), (50,), (25, 10), (50, 25, 10) hidden units, on a 500-image
   training set (every class at least 10 times), scored by 5-fold stratified cross-validation
   with ``grid_search`` (a ``cv_results_`` table with mean, std and rank).
b. Batch size: 1 (stochastic), 32, 50 and the full batch (gradient descent) for the best
   architecture: loss per epoch, per update and per second, accuracy, time; a run that has not
   converged is shown as such.
c. Learning rate: 0.0004, 0.004, 0.04, 0.4 with plain SGD (and a larger one that diverges):
   loss curves on one plot; divergence is reported (``history.diverged``), never a crash.
d. More data: the same network on 500, 2000, 20000 and all 50000 training images: train and
   test error against size, test images the small-data model gets wrong and the big-data model
   right, and the first-layer weights of both.
e. An outside reference: a kernel SVM (scikit-learn's ``SVC``, RBF kernel, C=10, gamma=0.01) on
   the same 500 images against the network; skipped with a note without scikit-learn.

    python -m experiments.hyperparams [--part a|b|c|d|e|all] [--out DIR] [--quick] [--plot-only]

Each part writes ``results_<part>.json`` (its runs go through ``minidl.sweep.run_sweep`` into
``DIR/runs/``, so an interrupted study resumes); ``plot`` draws the figures of whichever parts
are present and writes ``report.md`` and ``metrics.json``. Parts b to e use the architecture that
part a chose when its results are there, else ``DEFAULT_ARCH``, and say which. The whole study
(67 trainings and the SVM) took 3 min of wall time and 90 s of CPU time on a shared 2-core machine;
``--quick`` takes about 15 s.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
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
    split_data,
    write_json,
    write_text,
)
from experiments.hidden_layer import (
    build_mlp,
    history_record,
    load_test_set,
    make_optimizer,
    mean_pm,
    new_figure,
    overlay_curves,
    plain_log_ticks,
    run_key,
    save_figure,
    sweep_executor,
)
from minidl import plots
from minidl.data import scale_pixels
from minidl.losses import SoftmaxCrossEntropy
from minidl.model_selection import StratifiedKFold, grid_search, stratified_subsample
from minidl.sweep import run_sweep
from minidl.train import evaluate, fit, predict

NAME = "hyperparams"
PARTS = ("a", "b", "c", "d", "e")
DEFAULT_ARCH = (50,)  # parts b-e when part a has not been run
LOSS = SoftmaxCrossEntropy()


@dataclass(frozen=True)
class Settings:
    """Everything that defines a study; ``None`` as a size means all 50000 training images."""

    seeds: tuple[int, ...] = (0, 1, 2)
    n_small: int = 500  # the small training set of parts a, b, c, e ...
    min_per_class: int = 10  # ... with every class at least this often
    subset_seed: int = 0  # draws the small set and the folds
    n_val: int | None = None  # validation images that score parts b and c (None: all 10000)
    # the recipe of parts a, d and e (scikit-learn's MLPClassifier defaults: Adam, step 0.001)
    lr: float = 1e-3
    batch_size: int = 32
    epochs: int = 100  # on the small set
    # a. architectures, k-fold cross-validation
    archs: tuple[tuple[int, ...], ...] = ((10,), (25,), (50,), (25, 10), (50, 25, 10))
    n_folds: int = 5
    # b. batch sizes (None = full batch) with plain SGD
    batch_sizes: tuple[int | None, ...] = (1, 32, 50, None)
    b_lr: float = 0.01
    b_epochs: int = 100
    target_loss: float = 0.3  # "converged" = training loss at or below this
    # c. learning rates with plain SGD; the last one is there to show divergence
    lrs: tuple[float, ...] = (0.0004, 0.004, 0.04, 0.4, 4.0)
    c_batch_size: int = 32
    c_epochs: int = 100
    # d. training set sizes: each trained for about d_updates updates, within [d_min, d_max] epochs
    sizes: tuple[int | None, ...] = (500, 2000, 20000, None)
    d_updates: int = 5000
    d_min_epochs: int = 10
    d_max_epochs: int = 200
    n_weight_images: int = 20
    # e. the outside reference
    svm_C: float = 10.0
    svm_gamma: float = 0.01


FULL = Settings()
QUICK = Settings(
    seeds=(0, 1),
    n_small=200,
    n_val=1000,
    epochs=8,
    archs=((10,), (25,)),
    n_folds=3,
    batch_sizes=(1, 32, None),
    b_epochs=4,
    lrs=(0.004, 0.4, 10.0),
    c_epochs=4,
    sizes=(200, 2000),
    d_updates=200,
    d_min_epochs=2,
    d_max_epochs=4,
    n_weight_images=10,
)


def arch_name(arch: Sequence[int]) -> str:
    """``(50, 25)`` -> ``"(50, 25)"``; ``(10,)`` -> ``"(10,)"`` as Python writes tuples."""
    return str(tuple(arch))


def arch_slug(arch: Sequence[int]) -> str:
    """``(50, 25)`` -> ``"50-25"``, for file names."""
    return "-".join(str(n) for n in arch)


def batch_name(batch_size: int | None) -> str:
    if batch_size is None:
        return "full batch"
    return "1 (stochastic)" if batch_size == 1 else str(batch_size)


def size_name(size: int | None) -> str:
    return "all (50000)" if size is None else str(size)


# ---------------------------------------------------------------------------------------------
# One training run (a sweep task)
# ---------------------------------------------------------------------------------------------


def training_data(
    n_train: int | None, subset_seed: int, min_per_class: int, n_val: int | None, data_seed: int
):
    """``X, y`` (a stratified subset of ``n_train`` training images, or all of them),
    ``X_val, y_val`` (all, or a stratified subset of ``n_val``) and ``X_test, y_test``."""
    split = split_data(seed=data_seed)
    X, y = split.X_train, split.y_train
    if n_train is not None:
        idx = stratified_subsample(y, n_train, rng=subset_seed, min_per_class=min_per_class)
        X, y = X[idx], y[idx]
    Xv, yv = split.X_val, split.y_val
    if n_val is not None:
        idx = stratified_subsample(yv, n_val, rng=data_seed)
        Xv, yv = Xv[idx], yv[idx]
    return X, y, Xv, yv, split.X_test, split.y_test


def folds_of(y: np.ndarray, n_folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The cross-validation folds of part a: stratified, shuffled with ``seed``."""
    return list(StratifiedKFold(n_folds, shuffle=True, rng=seed).split(np.zeros(len(y)), y))


def train_mlp(
    arch: list[int],
    seed: int,
    optimizer: str,
    lr: float,
    batch_size: int | None,
    epochs: int,
    n_train: int | None,
    subset_seed: int,
    min_per_class: int,
    n_val: int | None,
    data_seed: int,
    fold: int | None = None,
    n_folds: int = 5,
    test: bool = False,
    weights_file: str | None = None,
) -> dict[str, Any]:
    """Train one MLP and return its curves and scores (a sweep task, JSON-able).

    With ``fold=k`` it trains on the other folds of the subset and is validated on fold k (part
    a); otherwise it trains on the whole subset and is validated on the validation split. With
    ``test``, the train and test accuracy and the test predictions are returned too; with
    ``weights_file``, the weights are saved there.
    """
    X, y, Xv, yv, Xt, yt = training_data(n_train, subset_seed, min_per_class, n_val, data_seed)
    result: dict[str, Any] = {}
    if fold is not None:
        train_idx, val_idx = folds_of(y, n_folds, subset_seed)[fold]
        X, y, Xv, yv = X[train_idx], y[train_idx], X[val_idx], y[val_idx]
        result["val_positions"] = val_idx.tolist()
    model = build_mlp(arch, seed)
    start = time.perf_counter()
    with np.errstate(over="ignore", invalid="ignore"):  # a too large step overflows; fit reports it
        history = fit(
            model,
            X,
            y,
            loss=LOSS,
            optimizer=make_optimizer(optimizer, model, lr),
            epochs=epochs,
            batch_size=batch_size,
            validation_data=(Xv, yv),
            rng=seed,
            verbose=0,
        )
    result.update(history_record(history))
    result["train_seconds"] = time.perf_counter() - start
    result["n_train"] = len(X)
    if not history.diverged:
        result["val_accuracy"] = evaluate(model, Xv, yv, LOSS)["accuracy"]
        if test:
            result["train_accuracy"] = evaluate(model, X, y, LOSS)["accuracy"]
            result["test_pred"] = predict(model, Xt, labels=True).tolist()
            result["test_accuracy"] = float(np.mean(np.asarray(result["test_pred"]) == yt))
    if weights_file:
        model.save(weights_file)
    return result


def train_svm(
    C: float, gamma: float, n_train: int, subset_seed: int, min_per_class: int, data_seed: int
) -> dict[str, Any]:
    """scikit-learn's RBF-kernel SVM on the small set, on raw pixels in [0, 1] (a sweep task)."""
    from sklearn.svm import SVC

    split = split_data(seed=data_seed)  # the same images as the network's, before standardising
    idx = stratified_subsample(split.y_train, n_train, rng=subset_seed, min_per_class=min_per_class)
    X, y = scale_pixels(split.images_train[idx]), split.y_train[idx]
    start = time.perf_counter()
    svm = SVC(kernel="rbf", C=C, gamma=gamma).fit(X, y)
    seconds = time.perf_counter() - start
    sq = (X * X).sum(axis=1)
    D2 = sq[:, None] + sq[None, :] - 2 * X @ X.T  # squared distances between the training images
    return {
        "median_sq_distance": float(np.median(D2[np.triu_indices(len(X), k=1)])),
        "train_accuracy": float(np.mean(svm.predict(X) == y)),
        "test_accuracy": float(np.mean(svm.predict(scale_pixels(split.images_test)) == split.y_test)),
        "train_seconds": seconds,
        "n_support_vectors": int(svm.n_support_.sum()),
    }


# ---------------------------------------------------------------------------------------------
# The five parts: each builds its tasks, runs them and saves results_<part>.json
# ---------------------------------------------------------------------------------------------


class Study:
    """What every part needs: the settings, the output folder, the shared worker pool."""

    def __init__(self, args, executor) -> None:
        self.s: Settings = QUICK if args.quick else FULL
        self.quick = bool(args.quick)
        self.out = Path(args.out)
        self.data_seed = args.data_seed
        self.executor = executor

    def task(self, arch: Sequence[int], seed: int, **changes: Any) -> dict[str, Any]:
        s = self.s
        base = {
            "arch": list(arch),
            "seed": seed,
            "optimizer": "adam",
            "lr": s.lr,
            "batch_size": s.batch_size,
            "epochs": s.epochs,
            "n_train": s.n_small,
            "subset_seed": s.subset_seed,
            "min_per_class": s.min_per_class,
            "n_val": s.n_val,
            "data_seed": self.data_seed,
        }
        return {**base, **changes}

    def sweep(self, fn, tasks: dict[str, dict]) -> dict[str, Any]:
        """``run_sweep`` on the shared pool into ``DIR/runs``; a failed run stops the study."""
        sweep = run_sweep(fn, tasks, self.out / "runs", executor=self.executor)
        sweep.raise_if_failed()
        return sweep.results

    def arch(self) -> tuple[tuple[int, ...], str]:
        """Part a's choice if it has been run, else the default; and where it came from."""
        path = self.out / "results_a.json"
        if path.is_file():
            return tuple(read_json(path)["best_arch"]), "chosen by part a's cross-validation"
        return DEFAULT_ARCH, "the default: part a has not been run in this folder"

    def save(self, part: str, results: dict[str, Any], seconds: float) -> None:
        meta = {"part": part, "quick": self.quick, "settings": asdict(self.s), "data_seed": self.data_seed}
        write_json(self.out / f"results_{part}.json", {**results, **meta, "seconds": seconds})

    def refit_tasks(self, arch: Sequence[int]) -> dict[str, dict]:
        """The chosen architecture trained on the whole small set, per seed, scored on the test set
        (shared by parts a and e: the same task has the same key, so it runs once)."""
        return {
            run_key(f"small_{arch_slug(arch)}_seed{sd}", t): t
            for sd in self.s.seeds
            for t in [self.task(arch, sd, test=True)]
        }

    # a. ------------------------------------------------------------------------------------
    def part_a(self) -> dict[str, Any]:
        s = self.s
        log(f"part a: {len(s.archs)} architectures x {s.n_folds} folds on {s.n_small} images")
        tasks = {}
        for arch in s.archs:
            for k in range(s.n_folds):
                t = self.task(arch, s.subset_seed, fold=k, n_folds=s.n_folds)
                tasks[run_key(f"cv_{arch_slug(arch)}_fold{k}", t)] = t
        runs = self.sweep(train_mlp, tasks)
        by = {(tuple(t["arch"]), t["fold"]): runs[key] for key, t in tasks.items()}

        # grid_search ranks the candidates from the scores the sweep measured, on the same folds
        n = s.n_small
        folds = []
        for k in range(s.n_folds):
            val = np.asarray(by[(tuple(s.archs[0]), k)]["val_positions"])
            folds.append((np.setdiff1d(np.arange(n), val), val))
        fold_of = {int(val[0]): k for k, (_, val) in enumerate(folds)}

        def measured_score(params, X_train, y_train, X_val, y_val) -> float:
            return by[(tuple(params["hidden"]), fold_of[int(X_val[0])])]["val_accuracy"]

        positions = np.arange(n)
        gs = grid_search(
            measured_score, {"hidden": [tuple(a) for a in s.archs]}, positions, positions, cv=folds
        )
        cv = gs.to_dict()["cv_results_"]
        seconds = np.array([[by[(tuple(a), k)]["train_seconds"] for k in range(s.n_folds)] for a in s.archs])
        cv["mean_fit_time"], cv["std_fit_time"] = seconds.mean(axis=1).tolist(), seconds.std(axis=1).tolist()
        best = tuple(gs.best_params_["hidden"])
        log(f"part a: best architecture {arch_name(best)}, mean CV accuracy {gs.best_score_:.4f}")

        # refit: the best architecture on all the small set, scored once on the test set
        refit = self.sweep(train_mlp, self.refit_tasks(best))
        return {
            "cv_results": cv,
            "best_arch": list(best),
            "best_score": gs.best_score_,
            "folds": {arch_name(a): [by[(tuple(a), k)] for k in range(s.n_folds)] for a in s.archs},
            "refit": list(refit.values()),
        }

    # b. ------------------------------------------------------------------------------------
    def part_b(self) -> dict[str, Any]:
        s = self.s
        arch, source = self.arch()
        log(f"part b: batch sizes {[batch_name(b) for b in s.batch_sizes]} for {arch_name(arch)} ({source})")
        tasks, index = {}, {}
        for bs in s.batch_sizes:
            for sd in s.seeds:
                t = self.task(
                    arch, sd, optimizer="sgd", lr=s.b_lr, batch_size=bs, epochs=s.b_epochs, test=True
                )
                key = run_key(f"batch_{bs}_seed{sd}", t)
                tasks[key] = t
                index.setdefault(batch_name(bs), []).append(key)
        runs = self.sweep(train_mlp, tasks)
        results = {b: [runs[k] for k in keys] for b, keys in index.items()}
        for rs in results.values():
            for r in rs:
                r.pop("test_pred", None)
        return {"arch": list(arch), "arch_source": source, "runs": results}

    # c. ------------------------------------------------------------------------------------
    def part_c(self) -> dict[str, Any]:
        s = self.s
        arch, source = self.arch()
        log(f"part c: learning rates {list(s.lrs)} (plain SGD) for {arch_name(arch)} ({source})")
        tasks, index = {}, {}
        for lr in s.lrs:
            for sd in s.seeds:
                t = self.task(
                    arch, sd, optimizer="sgd", lr=lr, batch_size=s.c_batch_size, epochs=s.c_epochs, test=True
                )
                key = run_key(f"lr_{lr:g}_seed{sd}", t)
                tasks[key] = t
                index.setdefault(f"{lr:g}", []).append(key)
        runs = self.sweep(train_mlp, tasks)
        results = {lr: [runs[k] for k in keys] for lr, keys in index.items()}
        for lr, rs in results.items():
            for sd, r in zip(s.seeds, rs, strict=True):
                if r["diverged"]:
                    log(f"part c: lr {lr}, seed {sd} diverged: {r['stop_reason']}")
            for r in rs:
                r.pop("test_pred", None)
        return {"arch": list(arch), "arch_source": source, "runs": results}

    # d. ------------------------------------------------------------------------------------
    def part_d(self) -> dict[str, Any]:
        s = self.s
        arch, source = self.arch()
        log(f"part d: training sizes {[size_name(n) for n in s.sizes]} for {arch_name(arch)} ({source})")
        models = self.out / "models"
        models.mkdir(parents=True, exist_ok=True)
        tasks, index = {}, {}
        for size in s.sizes:
            n = 50_000 if size is None else size
            steps = -(-n // s.batch_size)
            epochs = int(np.clip(round(s.d_updates / steps), s.d_min_epochs, s.d_max_epochs))
            for sd in s.seeds:
                t = self.task(arch, sd, n_train=size, subset_seed=sd, epochs=epochs, test=True)
                if sd == s.seeds[0]:
                    t["weights_file"] = str((models / f"d_{size_name(size).split()[0]}.npz").resolve())
                key = run_key(f"size_{size_name(size).split()[0]}_seed{sd}", t)
                tasks[key] = t
                index.setdefault(size_name(size), []).append(key)
        runs = self.sweep(train_mlp, tasks)
        results = {}
        for name, keys in index.items():
            results[name] = [runs[k] for k in keys]
            for r in results[name][1:]:
                r.pop("test_pred", None)  # seed 0's predictions are enough for the figures
        return {"arch": list(arch), "arch_source": source, "runs": results}

    # e. ------------------------------------------------------------------------------------
    def part_e(self) -> dict[str, Any]:
        s = self.s
        arch, source = self.arch()
        log(f"part e: SVM (RBF, C={s.svm_C:g}, gamma={s.svm_gamma:g}) vs the network {arch_name(arch)}")
        net = list(self.sweep(train_mlp, self.refit_tasks(arch)).values())
        svm, skipped = None, None
        try:
            import sklearn  # noqa: F401
        except ImportError:
            skipped = (
                "scikit-learn is not installed, so the SVM reference was skipped "
                "(install it with `pip install scikit-learn` or the extra `minidl[baselines]`)"
            )
            log(f"part e: {skipped}")
        else:
            t = {
                "C": s.svm_C,
                "gamma": s.svm_gamma,
                "n_train": s.n_small,
                "subset_seed": s.subset_seed,
                "min_per_class": s.min_per_class,
                "data_seed": self.data_seed,
            }
            svm = next(iter(self.sweep(train_svm, {run_key("svm", t): t}).values()))
        for r in net:
            r.pop("test_pred", None)
        return {"arch": list(arch), "arch_source": source, "network": net, "svm": svm, "skipped": skipped}


def run(args) -> None:
    """Run the parts asked for (``--part``), each saving ``results_<part>.json``."""
    parts = PARTS if args.part == "all" else (args.part,)
    started = time.perf_counter()
    with sweep_executor(args.workers) as executor:
        study = Study(args, executor)
        for part in parts:
            t0 = time.perf_counter()
            results = getattr(study, f"part_{part}")()
            study.save(part, results, time.perf_counter() - t0)
            log(f"part {part} done in {time.perf_counter() - t0:.0f} s")
    log(f"parts {', '.join(parts)} done in {time.perf_counter() - started:.0f} s")


# ---------------------------------------------------------------------------------------------
# Plot and report: every part that has a results file gets its figures and its section
# ---------------------------------------------------------------------------------------------


def settings_of(R: dict[str, Any]) -> Settings:
    def tuples(v: Any) -> Any:
        return tuple(tuples(x) for x in v) if isinstance(v, list) else v

    return Settings(**{k: tuples(v) for k, v in R["settings"].items()})


def first_reaching(curve: np.ndarray, target: float) -> int | None:
    """The first epoch (>= 1) whose value is at or below ``target``, or None."""
    hits = np.flatnonzero(np.asarray(curve[1:], dtype=float) <= target)
    return int(hits[0]) + 1 if hits.size else None


def plot_a(out: Path, R: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    s = settings_of(R)
    cv = R["cv_results"]
    names = [arch_name(p["hidden"]) for p in cv["params"]]
    scores = np.array([cv[f"split{k}_test_score"] for k in range(s.n_folds)]).T  # (candidates, folds)
    best = arch_name(R["best_arch"])

    fig, axes = new_figure(13.0, 4.8, ncols=2)
    ax = axes[0, 0]
    xs = np.arange(len(names))
    for k in range(s.n_folds):
        ax.plot(
            xs + 0.08 * (k - (s.n_folds - 1) / 2),
            scores[:, k],
            "o",
            color="0.6",
            ms=4,
            label="one fold" if k == 0 else None,
        )
    ax.errorbar(
        xs,
        cv["mean_test_score"],
        yerr=cv["std_test_score"],
        fmt="s",
        color="C0",
        ms=8,
        capsize=6,
        lw=2,
        label=f"mean ± std over {s.n_folds} folds",
    )
    ax.set_xticks(xs, labels=names)
    ax.set_xlabel("hidden layer sizes")
    ax.set_ylabel("accuracy on the held-out fold")
    ax.set_title(f"{s.n_folds}-fold cross-validation on {s.n_small} images (best: {best})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8.5)
    groups = {name: R["folds"][name] for name in names}
    overlay_curves(
        axes[0, 1],
        groups,
        "val_accuracy",
        ylabel="accuracy on the held-out fold",
        title=f"During training (mean ± std over the {s.n_folds} folds)",
        legend_title="hidden layer sizes",
    )
    fig.suptitle(f"a. Architecture: Adam (step {s.lr:g}), mini-batches of {s.batch_size}, {s.epochs} epochs")
    save_figure(fig, out / "a_architectures.png")

    order = np.argsort(cv["rank_test_score"], kind="stable")
    rows = [
        [
            cv["rank_test_score"][i],
            names[i],
            cv["mean_test_score"][i],
            cv["std_test_score"][i],
            *scores[i],
            f"{cv['mean_fit_time'][i]:.2f}",
        ]
        for i in order
    ]
    table = md_table(
        [
            "rank",
            "hidden layers",
            "mean_test_score",
            "std_test_score",
            *(f"split{k}" for k in range(s.n_folds)),
            "mean_fit_time (s)",
        ],
        rows,
        digits=3,
    )
    refit = R["refit"]
    test_acc = [r["test_accuracy"] for r in refit]
    train_acc = [r["train_accuracy"] for r in refit]
    spread = np.ptp(cv["mean_test_score"])
    typical_std = float(np.mean(cv["std_test_score"]))
    if spread < typical_std:
        weak = (
            f"The means span only {spread:.3f}, less than the fold-to-fold spread of one architecture "
            f"({typical_std:.3f} std on average): the ranking is weak evidence."
        )
    else:
        weak = (
            f"The means span {spread:.3f}, more than the fold-to-fold spread "
            f"({typical_std:.3f} std on average)."
        )
    mean_of = dict(zip(names, cv["mean_test_score"], strict=True))
    n_fit = s.n_small - s.n_small // s.n_folds  # training images per fold
    single = max(
        (n for n, p in zip(names, cv["params"], strict=True) if len(p["hidden"]) == 1),
        key=mean_of.get,
        default=None,
    )
    deep = max(
        (n for n, p in zip(names, cv["params"], strict=True) if len(p["hidden"]) > 1),
        key=mean_of.get,
        default=None,
    )
    if single and deep:
        depth = (
            f"The best deeper network, {deep} ({mean_of[deep]:.3f}), "
            + (
                "does not beat"
                if mean_of[deep] <= mean_of[single]
                else "only just beats"
                if mean_of[deep] - mean_of[single] < typical_std
                else "beats"
            )
            + f" the best single layer, {single} ({mean_of[single]:.3f}): with {n_fit} "
            "training images every extra layer is one more weight matrix to learn from too few examples."
        )
    else:
        depth = ""
    text = f"""## a. Which architecture? ({s.n_folds}-fold cross-validation)

{s.n_small} training images (drawn stratified from the training split, every class at least
{s.min_per_class} times: {s.n_small // 10} per class here), cut into {s.n_folds} stratified folds. Every
architecture is trained {s.n_folds} times, each time on {s.n_folds - 1} folds
({s.n_small - s.n_small // s.n_folds} images) and scored on the fold it did not see; all
candidates see the same folds. Training: ReLU hidden layers, Adam with step {s.lr:g}, mini-batches of
{s.batch_size}, {s.epochs} epochs, no regularisation. The table has `grid_search`'s `cv_results_`
columns (std over folds is the population std; rank 1 is best, ties share a rank):

{table}

![Cross-validation accuracy per architecture](a_architectures.png)

**Chosen: {best}** (mean {R["best_score"]:.4f}). {weak} With {s.n_small // s.n_folds} validation images
per fold, one image is {100 / (s.n_small // s.n_folds):.1f} points of accuracy. {depth}

Refit on all {s.n_small} images ({len(refit)} seeds), {best} reaches
train accuracy {mean_pm(train_acc)} and **test accuracy {mean_pm(test_acc)}** on the 10000 test images:
the gap between the two is the price of training on {s.n_small} images.
"""
    metrics = {
        "best_arch": R["best_arch"],
        "best_cv_accuracy": R["best_score"],
        "cv": {
            n: {
                "mean": cv["mean_test_score"][i],
                "std": cv["std_test_score"][i],
                "rank": cv["rank_test_score"][i],
            }
            for i, n in enumerate(names)
        },
        "refit_test_accuracy": float(np.mean(test_acc)),
        "refit_train_accuracy": float(np.mean(train_acc)),
    }
    return text, metrics


def plot_b(out: Path, R: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    s = settings_of(R)
    runs = R["runs"]
    arch = arch_name(R["arch"])
    updates = {
        b: np.arange(len(rs[0]["history"]["loss"])) * rs[0]["steps_per_epoch"] for b, rs in runs.items()
    }
    seconds = {
        b: np.concatenate([[0.0], np.mean([np.cumsum(r["epoch_time"]) for r in rs], axis=0)])
        for b, rs in runs.items()
    }
    fig, axes = new_figure(17.0, 4.9, ncols=3)
    common = {
        "ylabel": "training loss (whole training set)",
        "logy": True,
        "legend_title": "batch size",
        "dashed": True,
    }
    overlay_curves(axes[0, 0], runs, "loss", title="Per epoch", **common)
    overlay_curves(
        axes[0, 1],
        runs,
        "loss",
        x=updates,
        logx=True,
        xlabel="updates (log scale)",
        title="Per update",
        **common,
    )
    overlay_curves(
        axes[0, 2],
        runs,
        "loss",
        x=seconds,
        logx=True,
        xlabel="training time (s, mean over seeds, log scale)",
        title="Per second of training",
        **common,
    )
    for ax in axes[0]:
        ax.axhline(s.target_loss, color="0.3", ls="--", lw=1)
        ax.text(
            0.99,
            s.target_loss,
            f"target {s.target_loss:g}",
            transform=ax.get_yaxis_transform(),
            ha="right",
            va="bottom",
            fontsize=8,
            color="0.3",
        )
    fig.suptitle(
        f"b. Batch size: {arch} on {s.n_small} images, plain SGD with step {s.b_lr:g}, {s.b_epochs} epochs; "
        f"mean (line) ± std (band) over {len(s.seeds)} seeds"
    )
    save_figure(fig, out / "b_batch_size.png")

    rows, metrics, not_converged = [], {}, []
    for b, rs in runs.items():
        mean_loss = plots.mean_std([r["history"] for r in rs], "loss")[0]
        e = first_reaching(mean_loss, s.target_loss)
        steps = rs[0]["steps_per_epoch"]
        val = [r["val_accuracy"] for r in rs]
        total = np.mean([sum(r["epoch_time"]) for r in rs])
        if e is None:
            not_converged.append(b)
        rows.append(
            [
                b,
                steps,
                e if e else f"not within {s.b_epochs}",
                e * steps if e else "-",
                f"{seconds[b][e]:.2f}" if e else "-",
                f"{mean_loss[-1]:.3f}",
                mean_pm(val),
                f"{total:.1f}",
            ]
        )
        metrics[b] = {
            "converged": e is not None,
            "epochs_to_target": e,
            "updates_to_target": e * steps if e else None,
            "seconds_to_target": float(seconds[b][e]) if e else None,
            "final_train_loss": float(mean_loss[-1]),
            "val_accuracy": float(np.mean(val)),
            "test_accuracy": float(np.mean([r["test_accuracy"] for r in rs])),
            "train_seconds": float(total),
            "diverged": any(r["diverged"] for r in rs),
        }
    table = md_table(
        [
            "batch size",
            "updates per epoch",
            f"epochs to loss {s.target_loss:g}",
            "updates to it",
            "seconds to it",
            "final train loss",
            "val. accuracy",
            "training s",
        ],
        rows,
    )
    done = {b: m for b, m in metrics.items() if m["converged"]}
    if not_converged:
        losses = "; ".join(f"{b}: {metrics[b]['final_train_loss']:.3f}" for b in not_converged)
        nc = (
            f"**Not converged: {', '.join(not_converged)}.** After {s.b_epochs} epochs the mean training "
            f"loss is still above {s.target_loss:g} ({losses}). The curves are drawn as they are, not cut."
        )
    else:
        nc = "Every batch size reached the target."
    points = [
        f"**Per epoch** the small batches win by far: batch size 1 makes {s.n_small} updates per epoch, "
        "the full batch one."
    ]
    if done:
        by_epochs = min(done, key=lambda b: done[b]["epochs_to_target"])
        by_updates = ", ".join(f"{done[b]['updates_to_target']} with batch size {b}" for b in done)
        by_seconds = min(done, key=lambda b: done[b]["seconds_to_target"])
        points[0] += (
            f" Fastest to the target in epochs: batch size {by_epochs}, "
            f"{done[by_epochs]['epochs_to_target']} epochs."
        )
        points.append(
            f"**Per update** it is the other way round. Updates needed to reach the target: {by_updates}. "
            "A gradient averaged over more examples is less noisy, so each update is worth more; on the "
            "middle panel the curves of the larger batches lie on top of each other."
        )
        points.append(
            "**Per second**, what one pays for: an update on one example costs almost as much Python and "
            "NumPy overhead as an update on 32, so batch size 1 spends "
            + (f"{metrics['1 (stochastic)']['train_seconds']:.1f} s " if "1 (stochastic)" in metrics else "")
            + "on its epochs where a mini-batch run spends a fraction of that, while the full batch spends "
            "a whole epoch of computation on a single step. Fastest to the target in seconds: batch size "
            f"{by_seconds}, {done[by_seconds]['seconds_to_target']:.2f} s. Mini-batches are the compromise "
            "every "
            "framework defaults to."
        )
    bullets = "\n".join(f"- {p}" for p in points)
    text = f"""## b. Batch size: stochastic, mini-batch, full batch

{arch} ({R["arch_source"]}) on the same {s.n_small} images, plain SGD (no momentum) with step
{s.b_lr:g}, {s.b_epochs} epochs, {len(s.seeds)} seeds; the validation accuracy is measured on
{s.n_val or 10000} validation images. "Converged" here means the mean training loss reached {s.target_loss:g}.

{table}

![Loss per epoch, per update and per second for each batch size](b_batch_size.png)

{nc}

{bullets}
"""
    return text, metrics


def plot_c(out: Path, R: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    s = settings_of(R)
    runs = R["runs"]
    arch = arch_name(R["arch"])
    groups = {f"lr {lr}": rs for lr, rs in runs.items()}
    fig, axes = new_figure(18.0, 5.0, ncols=3)
    kw = {"legend_title": "plain SGD step size", "dashed": True}
    overlay_curves(
        axes[0, 0],
        groups,
        "loss",
        ylabel="training loss (log scale)",
        logy=True,
        title="Training loss, full range: divergence",
        **kw,
    )
    overlay_curves(
        axes[0, 1],
        groups,
        "loss",
        ylabel="training loss (log scale)",
        logy=True,
        title="Training loss, zoomed (diverging runs leave at the top)",
        **kw,
    )
    finite = [v for rs in runs.values() for r in rs if not r["diverged"] for v in r["history"]["loss"]]
    if finite:
        axes[0, 1].set_ylim(0.5 * min(finite), 2.0 * max(finite))
        plain_log_ticks(axes[0, 1])
    axes[0, 1].get_legend().remove()  # the same lines as on the left, and no free corner for it
    overlay_curves(axes[0, 2], groups, "val_accuracy", title="Validation accuracy", **kw)
    fig.suptitle(
        f"c. Learning rate: {arch} on {s.n_small} images, plain SGD, mini-batches of {s.c_batch_size}; "
        f"mean (line) ± std (band) over {len(s.seeds)} seeds"
    )
    save_figure(fig, out / "c_learning_rate.png")

    rows, metrics = [], {}
    for lr, rs in runs.items():
        n_div = sum(r["diverged"] for r in rs)
        finals = [r["history"]["loss"][-1] for r in rs if not r["diverged"]]
        vals = [r["val_accuracy"] for r in rs if not r["diverged"]]
        reason = next((r["stop_reason"] for r in rs if r["diverged"]), None)
        rows.append(
            [
                lr,
                f"{n_div} of {len(rs)}",
                mean_pm(finals, 3) if finals else "-",
                mean_pm(vals) if vals else "-",
                reason or "ran all epochs",
            ]
        )
        metrics[lr] = {
            "diverged": n_div > 0,
            "n_diverged": n_div,
            "stop_reason": reason,
            "final_train_loss": float(np.mean(finals)) if finals else None,
            "val_accuracy": float(np.mean(vals)) if vals else None,
            "test_accuracy": float(np.mean([r["test_accuracy"] for r in rs if not r["diverged"]]))
            if vals
            else None,
        }
    table = md_table(
        ["step size", "diverged", "final train loss", "val. accuracy", "why training ended"], rows
    )
    lrs = list(runs)
    diverged = [lr for lr in lrs if metrics[lr]["diverged"]]
    fine = [lr for lr in lrs if not metrics[lr]["diverged"]]
    # a run can also break down without overflowing: every ReLU dead, one class predicted for all
    collapsed = [lr for lr in fine if metrics[lr]["val_accuracy"] < 0.2]
    fine = [lr for lr in fine if lr not in collapsed]
    lab_div = [lr for lr in diverged if float(lr) <= 0.4]
    start = float(np.mean([r["history"]["loss"][0] for rs in runs.values() for r in rs]))
    points = []
    if fine:
        small, best = fine[0], max(fine, key=lambda lr: metrics[lr]["val_accuracy"])
        points.append(
            f"The smallest step, {small}, is slow: after {s.c_epochs} epochs its training loss is still "
            f"{metrics[small]['final_train_loss']:.3f} (it starts at {start:.2f}; a model that knows "
            "nothing, "
            "with equal scores for the ten classes, is at ln 10 = 2.30), and its validation accuracy is "
            "still climbing."
        )
        if len(fine) > 1:
            points.append(
                "Each tenfold larger step gets further in the same number of epochs: final training loss "
                + ", ".join(f"{metrics[lr]['final_train_loss']:.3f} (lr {lr})" for lr in fine)
                + f". The best validation accuracy is at step {best} ({metrics[best]['val_accuracy']:.4f})."
            )
    if "0.4" in runs:
        if metrics["0.4"]["diverged"]:
            epochs = [len(r["history"]["loss"]) - 1 for r in runs["0.4"] if r["diverged"]]
            points.append(
                f"The largest of the lab's rates, 0.4, **diverged** ({metrics['0.4']['n_diverged']} of "
                f"{len(runs['0.4'])} seeds): its loss grew by orders of magnitude from one epoch to the next "
                f"and overflowed after {min(epochs)}-{max(epochs)} epochs."
            )
        else:
            points.append("The largest of the lab's rates, 0.4, **did not diverge** here.")
    if diverged:
        points.append(
            f"Diverged: {', '.join(diverged)}. Too large a step overshoots the minimum, lands where the "
            "gradient is even larger and overshoots again: the loss grows until it overflows (the cross "
            f"marks its last finite value). Training then stops with `{metrics[diverged[-1]]['stop_reason']}`"
            + (" The rates above 0.4 were added to show divergence." if not lab_div else "")
        )
    else:
        points.append("No rate diverged.")
    if collapsed:
        points.append(
            f"Collapsed without diverging: {', '.join(collapsed)}. The loss stayed finite, but the "
            "validation "
            "accuracy is at chance level: a huge step drove every hidden ReLU negative (dead units output 0 "
            "and get no gradient), and the network predicts one class for everything."
        )
    bullets = "\n".join(f"- {p}" for p in points)
    text = f"""## c. Learning rate

{arch} ({R["arch_source"]}) on the same {s.n_small} images, plain SGD (no momentum) with mini-batches
of {s.c_batch_size}, {s.c_epochs} epochs, {len(s.seeds)} seeds. A loss that becomes infinite or NaN
stops the run (`history.diverged`, `history.stop_reason`); the run is reported, not raised.

{table}

![Training loss and validation accuracy for each learning rate](c_learning_rate.png)

{bullets}
"""
    return text, metrics


def plot_d(out: Path, R: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    s = settings_of(R)
    runs = R["runs"]
    arch = arch_name(R["arch"])
    names = list(runs)
    sizes = [r[0]["n_train"] for r in runs.values()]
    train_err = 1 - np.array([[r["train_accuracy"] for r in rs] for rs in runs.values()]).T  # (seeds, sizes)
    test_err = 1 - np.array([[r["test_accuracy"] for r in rs] for rs in runs.values()]).T
    plots.line_plot(
        sizes,
        {"train error": train_err, "test error": test_err},
        xlabel="training images (log scale)",
        ylabel="error (1 - accuracy)",
        logx=True,
        title=f"d. More data: {arch}, Adam, mini-batches of {s.batch_size}",
        path=out / "d_data_size.png",
    )

    images, y_test = load_test_set()
    small, large = runs[names[0]][0], runs[names[-1]][0]
    p_small, p_large = np.asarray(small["test_pred"]), np.asarray(large["test_pred"])
    candidates = np.flatnonzero((p_small != y_test) & (p_large == y_test))
    chosen = np.sort(
        np.random.default_rng(0).choice(candidates, size=min(10, len(candidates)), replace=False)
    )
    if len(chosen):
        plots.image_grid(
            images[chosen],
            titles=[
                f"true: {CLASS_NAMES[y_test[i]]}\n{sizes[0]}: {CLASS_NAMES[p_small[i]]}"
                f"\n{sizes[-1]}: {CLASS_NAMES[p_large[i]]}"
                for i in chosen
            ],
            ncols=5,
            path=out / "d_misclassified.png",
            title=f"Test images the {sizes[0]}-image model gets wrong and the {sizes[-1]}-image model right",
        )
    W_init = build_mlp(R["arch"], s.seeds[0]).layers[0].W.value  # both models start here (same seed)
    moved, smooth = {}, {"start": neighbour_correlation(W_init)}
    for tag, name, n in (("small", names[0], sizes[0]), ("large", names[-1], sizes[-1])):
        model = build_mlp(R["arch"], s.seeds[0])
        model.load(out / "models" / f"d_{name.split()[0]}.npz")
        W1 = model.layers[0].W.value
        moved[tag] = float(np.mean(np.linalg.norm(W1 - W_init, axis=0) / np.linalg.norm(W_init, axis=0)))
        smooth[tag] = neighbour_correlation(W1)
        k = min(s.n_weight_images, W1.shape[1])
        plots.weight_images(
            W1[:, :k],
            [f"unit {u}" for u in range(k)],
            ncols=min(10, k),
            path=out / f"d_weights_{tag}.png",
            title=f"First-layer weights of units 0-{k - 1} after training on {n} images (seed {s.seeds[0]})",
        )

    rows = [
        [
            name,
            len(r[0]["history"]["loss"]) - 1,
            (len(r[0]["history"]["loss"]) - 1) * r[0]["steps_per_epoch"],
            mean_pm(train_err[:, j]),
            mean_pm(test_err[:, j]),
            f"{test_err[:, j].mean() - train_err[:, j].mean():+.4f}",
        ]
        for j, (name, r) in enumerate(runs.items())
    ]
    table = md_table(["training images", "epochs", "updates", "train error", "test error", "gap"], rows)
    j_min, j_max = 0, len(names) - 1
    gaps = test_err.mean(axis=0) - train_err.mean(axis=0)
    falling = bool(np.all(np.diff(test_err.mean(axis=0)) < 0))
    epochs_big = len(runs[names[-1]][0]["history"]["loss"]) - 1
    text = f"""## d. More data

{arch} ({R["arch_source"]}), Adam with step {s.lr:g}, mini-batches of {s.batch_size}, trained for
about {s.d_updates} updates (at least {s.d_min_epochs}, at most {s.d_max_epochs} epochs); each
seed draws its own stratified subset. Errors are 1 - accuracy, mean ± std over {len(s.seeds)} seeds;
the test error is measured on the 10000 test images.

{table}

![Train and test error vs training set size](d_data_size.png)

With {sizes[0]} images the network fits its training set (train error {train_err[:, j_min].mean():.4f})
but is wrong on {test_err[:, j_min].mean():.1%} of the test images: it has memorised the examples rather
than learnt the classes. {"Every" if falling else "Overall, each"} increase of the training set lowers
the test error, to {test_err[:, j_max].mean():.1%} with {sizes[-1]} images, and the gap between test and
train error shrinks from {gaps[j_min]:+.3f} to {gaps[j_max]:+.3f}: with more examples per weight, fitting
the training set and fitting the classes become the same thing. On the large sets the train error is no
longer 0 ({train_err[:, j_max].mean():.3f} after {epochs_big} epochs): the network is now limited by its
size and its training time, not by memorising. The test error is still falling at the largest size.

![Images the small-data model misclassifies and the large-data model gets right](d_misclassified.png)

{len(candidates)} test images are misclassified by the {sizes[0]}-image model (seed {s.seeds[0]}) and
classified correctly by the {sizes[-1]}-image model; {len(chosen)} of them, drawn at random, above.

![First-layer weights, small data](d_weights_small.png)

![First-layer weights, large data](d_weights_large.png)

Both networks start from the same random weights (same seed), so unit k is the same unit before
training (each figure has its own colour scale). Training on {sizes[0]} images moved each unit's weights
by {moved["small"]:.2f} times their initial size, on {sizes[-1]} images by {moved["large"]:.2f} times: the
small-data units are still largely their random start, the large-data ones mostly learnt. The learnt
part is spatially coherent: the weights of neighbouring pixels correlate {smooth["small"]:.2f} (small data)
and {smooth["large"]:.2f} (large data), against {smooth["start"]:.2f} at the start, so the large-data units
respond to regions of the image (blobs and edges of garments) rather than to single pixels.
"""
    by_size = {
        name: {
            "n_train": sizes[j],
            "train_error": float(train_err[:, j].mean()),
            "test_error": float(test_err[:, j].mean()),
            "test_accuracy": float(1 - test_err[:, j].mean()),
        }
        for j, name in enumerate(names)
    }
    metrics = {"by_size": by_size, "weights": {"moved": moved, "neighbour_correlation": smooth}}
    return text, metrics


def neighbour_correlation(W: np.ndarray) -> float:
    """Correlation between the weights of horizontally adjacent pixels, over all units of a first
    layer ``W (784, units)``: about 0 for random weights, higher for smooth, image-like ones."""
    images = W.reshape(28, 28, -1)
    return float(np.corrcoef(images[:, :-1].ravel(), images[:, 1:].ravel())[0, 1])


def plot_e(out: Path, R: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    s = settings_of(R)
    arch = arch_name(R["arch"])
    net = R["network"]
    net_train = 1 - np.array([r["train_accuracy"] for r in net])
    net_test = 1 - np.array([r["test_accuracy"] for r in net])
    svm = R["svm"]
    metrics = {
        "network_train_error": float(net_train.mean()),
        "network_test_error": float(net_test.mean()),
        "skipped": R["skipped"],
    }
    head = f"""## e. Outside reference: a kernel SVM on the same {s.n_small} images

The network: {arch} ({R["arch_source"]}), trained as in part a on all {s.n_small} images,
{len(net)} seeds: train error {mean_pm(net_train)}, test error {mean_pm(net_test)}.
"""
    if svm is None:
        return head + f"\n**The SVM was skipped**: {R['skipped']}.\n", metrics
    metrics.update({"svm_train_error": 1 - svm["train_accuracy"], "svm_test_error": 1 - svm["test_accuracy"]})
    plots.bar_compare(
        ["train error", "test error"],
        {
            "kernel SVM (scikit-learn, outside reference)": [
                1 - svm["train_accuracy"],
                1 - svm["test_accuracy"],
            ],
            f"network {arch} (minidl)": [float(net_train.mean()), float(net_test.mean())],
        },
        ylabel="error (1 - accuracy)",
        fmt="{:.3f}",
        path=out / "e_svm.png",
        title=f"e. The same {s.n_small} training images: SVM (RBF, C={s.svm_C:g}, "
        f"gamma={s.svm_gamma:g}) vs network",
    )
    svm_train, svm_test = 1 - svm["train_accuracy"], 1 - svm["test_accuracy"]
    diff = svm_test - net_test.mean()
    if abs(diff) <= net_test.std():
        verdict = (
            f"the two are level: their test errors differ by {abs(diff):.3f}, within the network's "
            "spread over seeds"
        )
    else:
        verdict = (
            f"{'the SVM' if diff < 0 else 'the network'} has the lower test error, by {abs(diff):.3f} "
            f"({abs(diff) / max(net_test.std(), 1e-12):.0f} times the network's std over seeds)"
        )
    fit = (
        "Both fit their training images (almost) perfectly, so the test error is all about generalising."
        if max(svm_train, net_train.mean()) < 0.02
        else f"Train errors: SVM {svm_train:.3f}, network {net_train.mean():.3f}."
    )
    table = md_table(
        ["model", "train error", "test error"],
        [
            ["kernel SVM, RBF (outside reference)", svm_train, svm_test],
            [f"network {arch} (minidl)", mean_pm(net_train), mean_pm(net_test)],
        ],
    )
    text = (
        head
        + f"""
The reference, not part of minidl: scikit-learn's `SVC(kernel="rbf", C={s.svm_C:g}, gamma={s.svm_gamma:g})`
on the **raw pixels scaled to [0, 1]**, the scaling that gamma = {s.svm_gamma:g} is meant for: the median
squared distance between two of these images is {svm["median_sq_distance"]:.0f}, so the kernel
exp(-gamma d^2) is about {np.exp(-s.svm_gamma * svm["median_sq_distance"]):.2f} for a typical pair, neither
~0 nor ~1. (On standardised pixels a typical squared distance is about 2 x 784 = 1568, and every
kernel value would be ~0.)
The network uses standardised pixels as everywhere else. The SVM took {svm["train_seconds"]:.2f} s to
fit and kept {svm["n_support_vectors"]} of the {s.n_small} images as support vectors.

{table}

![Kernel SVM vs network](e_svm.png)

On these {s.n_small} images {verdict}. {fit} A kernel SVM with a well-chosen kernel is a strong
learner for small data: two hyper-parameters, a convex problem with a single solution, where the
network depends on its seed and its training recipe. Its cost grows at least with the square of the
number of training images, one reason why networks take over on large data sets.
"""
    )
    return text, metrics


PLOTTERS = {"a": plot_a, "b": plot_b, "c": plot_c, "d": plot_d, "e": plot_e}


def plot(out_dir: str | Path) -> dict[str, Any]:
    """Draw the figures of every part present, and write ``report.md`` and ``metrics.json``."""
    out = Path(out_dir)
    present = [p for p in PARTS if (out / f"results_{p}.json").is_file()]
    if not present:
        raise FileNotFoundError(
            f"no results_<part>.json in {out}: run `python -m experiments.{NAME} --out {out}` "
            "(without --plot-only) first"
        )
    results = {p: read_json(out / f"results_{p}.json") for p in present}
    sections, metrics = [], {"parts": present}
    for p in PARTS:
        if p in results:
            text, m = PLOTTERS[p](out, results[p])
            sections.append(text)
            metrics[p] = m
        else:
            sections.append(
                f"## {p}. (not run)\n\nPart {p} has no results in this folder: "
                f"`python -m experiments.{NAME} --part {p} --out {out}`.\n"
            )
    final, acc = final_model(metrics)
    metrics.update(
        {
            "test_accuracy": acc,
            "final_model": final,
            "seconds": {p: r["seconds"] for p, r in results.items()},
            "quick": any(r["quick"] for r in results.values()),
        }
    )
    write_json(out / "metrics.json", metrics)
    write_text(out / "report.md", report_head(results, metrics) + "\n".join(sections))
    return metrics


def final_model(metrics: dict[str, Any]) -> tuple[str, float]:
    """The model whose test accuracy ``metrics.json`` reports, from the most telling part present."""
    if "d" in metrics:
        name, m = list(metrics["d"]["by_size"].items())[-1]
        return f"part d: the network trained on {name} training images (mean over seeds)", m["test_accuracy"]
    if "a" in metrics:
        return "part a: the best architecture refit on the small set (mean over seeds)", metrics["a"][
            "refit_test_accuracy"
        ]
    if "e" in metrics:
        return "part e: the network on the small set (mean over seeds)", 1 - metrics["e"][
            "network_test_error"
        ]
    for p in ("b", "c"):
        if p in metrics:
            ok = {k: m for k, m in metrics[p].items() if m["test_accuracy"] is not None}
            k = max(ok, key=lambda k: ok[k]["val_accuracy"])
            return f"part {p}: the best setting on validation, {k} (mean over seeds)", ok[k]["test_accuracy"]
    raise AssertionError("no part present")


def report_head(results: dict[str, Any], metrics: dict[str, Any]) -> str:
    quick = " (QUICK smoke run: tiny data, few epochs: the numbers mean nothing)" if metrics["quick"] else ""
    total = sum(metrics["seconds"].values())
    times = ", ".join(f"{p}: {t:.0f} s" for p, t in metrics["seconds"].items())
    any_r = next(iter(results.values()))
    return f"""# Hyper-parameters of small networks on Fashion-MNIST{quick}

Five questions about multi-layer perceptrons (ReLU hidden layers, softmax cross-entropy): which
architecture (a), which batch size (b), which learning rate (c), how much data (d), and how a
kernel SVM compares (e). Training images come from a stratified split of the official training set
(seed {any_r["data_seed"]}) into 50000 training and 10000 validation images, standardised per pixel;
the official 10000 test images only score finished models. Parts run: {", ".join(metrics["parts"])}
(time: {times}; {total:.0f} s in all).

**Reported test accuracy: {metrics["test_accuracy"]:.4f}**, {metrics["final_model"]}.

"""


def summary(metrics: dict[str, Any]) -> str:
    """The short table printed on stdout."""
    rows = []
    if "a" in metrics:
        rows.append(
            [
                "a",
                "best architecture",
                f"{arch_name(metrics['a']['best_arch'])}, CV accuracy {metrics['a']['best_cv_accuracy']:.4f}",
            ]
        )
    for b, m in metrics.get("b", {}).items():
        rows.append(
            [
                "b",
                f"batch {b}",
                f"val. acc. {m['val_accuracy']:.4f}, "
                + (
                    f"loss target after {m['epochs_to_target']} epochs" if m["converged"] else "not converged"
                ),
            ]
        )
    for lr, m in metrics.get("c", {}).items():
        rows.append(["c", f"lr {lr}", "diverged" if m["diverged"] else f"val. acc. {m['val_accuracy']:.4f}"])
    for name, m in metrics.get("d", {}).get("by_size", {}).items():
        rows.append(
            ["d", f"{name} images", f"train error {m['train_error']:.4f}, test error {m['test_error']:.4f}"]
        )
    if "e" in metrics:
        e = metrics["e"]
        svm = "skipped" if e["skipped"] else f"test error {e['svm_test_error']:.4f}"
        rows.append(["e", "SVM vs network", f"SVM {svm}; network test error {e['network_test_error']:.4f}"])
    rows.append(["", "test accuracy", f"{metrics['test_accuracy']:.4f} ({metrics['final_model']})"])
    return md_table(["part", "setting", "result"], rows)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = make_parser(
        NAME, "Hyper-parameter studies: architecture, batch size, learning rate, data size, SVM."
    )
    parser.add_argument("--part", choices=[*PARTS, "all"], default="all", help="which part to run")
    args = parser.parse_args(argv)
    return run_and_plot(
        args,
        run,
        plot,
        summary,
        name=NAME,
        resume_hint=f"the finished trainings are saved under {args.out}, and the same command resumes from them",
    )


if __name__ == "__main__":
    main()
