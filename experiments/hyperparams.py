"""Hyper-parameters of small networks: the scikit-learn lab on Fashion-MNIST, done with minidl.

Part A, on 500 images: the architecture (A.1, with A.2's recipe), batch size (A.3) and learning rate
(A.4) by 5-fold cross-validation, then the final network (A.5). Part B: that network on 20000
images (B.1-B.3), training-set size against test error, and an RBF-kernel SVM beside it
(scikit-learn, the extra ``baselines``; skipped without it).

    python -m experiments.hyperparams [--part A] [--quick] [--out DIR] [--plot-only] [--workers N]
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Any

import numpy as np
from numpy.linalg import norm

from experiments import study
from minidl import SGD, Dense, ReLU, Sequential, SoftmaxCrossEntropy, fit, plots
from minidl.callbacks import StopAfterUpdates
from minidl.data import n_batches
from minidl.model_selection import StratifiedKFold, grid_search
from minidl.sweep import task_key
from minidl.train import predict

NAME = "hyperparams"
FIGURES = ("a1_architectures", "a3_batch_size", "a4_learning_rate", "a5_final",
           "b_data_size", "b2_misclassified", "b3_weights", "b_svm")  # fmt: skip
FULL = {
    "part": "all", "n_small": 500, "folds": 5,  # Part A: 500 training images, 5-fold cross-validation
    "archs": [[10], [25], [50], [25, 10], [50, 25, 10]],  # A.1
    "lr": 0.1, "momentum": 0.9, "alpha": 1e-4, "epochs": 250,  # A.2: the lab's recipe (scikit-learn's SGD)
    "batch_size": 200,  # scikit-learn's default, min(200, n), until A.3 chooses
    "batch_sizes": [1, 10, 50, 200, 500], "target_loss": 0.3,  # A.3 (500: full batch); epochs to loss 0.3
    "lrs": [0.0004, 0.004, 0.04, 0.1, 0.4, 4.0],  # A.4
    "seeds": [0, 1, 2], "n_val": 500,  # A.5 and Part B: seeds, validation images of the curves
    "sizes": [500, 2000, 20000, 50000], "b_size": 20000,  # Part B: the first size is A.5's; B.1-B.3
    "longer": 10,  # Part B's second budget: this many times A.5's number of updates
    "units": 10, "svm": {"C": 10.0, "gamma": 0.01},  # B.3: first-layer units drawn; the SVM
}  # fmt: skip
QUICK = {**FULL, "n_small": 200, "folds": 3, "archs": [[10], [10, 10]], "epochs": 10, "batch_size": 50,
         "batch_sizes": [1, 50, 200], "lrs": [0.01, 0.1, 10.0], "seeds": [0, 1], "n_val": 300,
         "sizes": [200, 2000], "b_size": 2000, "longer": 2, "units": 5}  # fmt: skip


def add_arguments(parser) -> None:
    parser.add_argument("--part", choices=["A", "all"], default="all", help="A: Part A alone; all: A, then B")


def apply_arguments(settings: dict, args) -> dict:
    return {**settings, "part": args.part}


# ---- one training -----------------------------------------------------------------------------------
def mlp(arch: list[int], rng: np.random.Generator) -> Sequential:
    """``Dense -> ReLU`` per hidden layer, then ``Dense(.., 10)`` giving the logits."""
    n = [784, *arch]
    hidden = [layer for a, b in pairwise(n) for layer in (Dense(a, b, rng=rng), ReLU())]
    return Sequential([*hidden, Dense(n[-1], 10, rng=rng)])


def train(arch, lr, momentum, alpha, batch_size, epochs, seed, X, y, X_val, y_val, updates=None) -> tuple:
    """One network trained by SGD as scikit-learn's ``MLPClassifier`` does it, ``(model, history)``:
    its L2 penalty ``alpha / (2 n_b) ||W||^2`` on a batch of ``n_b`` is a weight decay ``alpha / n_b``."""
    streams = study.seed_streams(seed)
    model = mlp(arch, streams["weights"])
    optimizer = SGD(model.parameters(), lr, momentum=momentum, weight_decay=alpha / min(batch_size, len(X)))
    with np.errstate(over="ignore", invalid="ignore"):  # a too large step overflows; fit reports it
        history = fit(model, X, y, loss=SoftmaxCrossEntropy(), optimizer=optimizer, epochs=epochs,
                      batch_size=batch_size, validation_data=(X_val, y_val), rng=streams["order"],
                      callbacks=[StopAfterUpdates(updates)] if updates else [], verbose=0)  # fmt: skip
    return model, history


def fit_and_score(params: dict, X_train, y_train, X_val, y_val) -> dict:
    """A.1, A.3, A.4 (``grid_search``'s function): one candidate on one fold, scored by its accuracy
    on the held-out fold (NaN if it diverged)."""
    _, history = train(**params, X=X_train, y=y_train, X_val=X_val, y_val=y_val)
    score = math.nan if history.diverged else history.history["val_accuracy"][-1]
    return study.record(history, score=score, arrays={"step_loss": np.asarray(history.step_loss, np.float32)})


def train_one(n_train, n_val, data_seed, **params) -> dict:
    """A.5 and Part B: one network on ``n_train`` images, validated on ``n_val``; its weights."""
    data = study.load_data("raw", n_train, n_val, data_seed)
    model, history = train(**params, X=data.X_train, y=data.y_train, X_val=data.X_val, y_val=data.y_val)
    return study.record(history, arrays=model.state_dict())


def key(t: dict) -> str:
    """A readable run name plus the hash of the task (a changed setting gets a new file)."""
    name = "-".join(map(str, t["arch"])) + f"_b{t['batch_size']}_lr{t['lr']:g}_n{t['n_train']}"
    return f"{name}_u{t['updates']}_seed{t['seed']}-{task_key(t)[-10:]}"


# ---- the study --------------------------------------------------------------------------------------
def choose(st: study.Study, results: dict, stage: str, base: dict, name: str, values: list) -> Any:
    """A.1, A.3, A.4: ``grid_search`` over one setting, the others as in ``base``, on the same folds
    (one folder for the three: a candidate met in an earlier stage is not trained again)."""
    study.log(f"{stage}: {name} in {values}, {base['folds']}-fold cross-validation")
    data = study.load_data("raw", base["n_train"], base["n_val"], base["data_seed"])
    folds = StratifiedKFold(base["folds"], shuffle=True, rng=base["data_seed"])
    grid = {k: [v] for k, v in base.items() if k not in ("n_train", "n_val", "data_seed", "folds")}
    search = grid_search(fit_and_score, grid | {name: values}, data.X_train, data.y_train, folds,
                         out_dir=st.out / "runs" / "cv", executor=st.executor, progress=True)  # fmt: skip
    runs = search.fold_results  # [candidate][fold]: the run records
    steps = {str(v): rs[0]["arrays"]["step_loss"] for v, rs in zip(values, runs, strict=True)}
    st.save_arrays(f"{stage}_steps", steps)  # fold 0's loss of every update, for A.3's figure
    slim = [[{k: x for k, x in r.items() if k != "arrays"} for r in rs] for rs in runs]
    results[stage] = {"name": name, "values": values, "cv": search.to_dict()["cv_results_"], "runs": slim}
    return search.best_params_[name]


def run(st: study.Study, s: dict) -> dict:
    base = {k: s[k] for k in ("lr", "momentum", "alpha", "batch_size", "epochs", "n_val", "folds")}
    base |= {"n_train": s["n_small"], "data_seed": st.args.data_seed, "arch": None, "seed": s["seeds"][0]}
    results: dict[str, Any] = {}
    base["arch"] = choose(st, results, "a1", base, "arch", s["archs"])
    base["batch_size"] = choose(st, results, "a3", base, "batch_size", s["batch_sizes"])
    base["lr"] = choose(st, results, "a4", base, "lr", s["lrs"])
    # A.5, Part B: every size makes A.5's u updates (and `longer` x u): Part B's 500-image network is A.5's
    u, part_b = s["epochs"] * n_batches(s["n_small"], base["batch_size"]), s["part"] == "all"
    sizes, budgets = (s["sizes"], [u, s["longer"] * u]) if part_b else ([s["n_small"]], [u])
    steps = {n: n_batches(n, base["batch_size"]) for n in sizes}  # updates per epoch
    net = {k: base[k] for k in ("arch", "lr", "momentum", "alpha", "batch_size", "n_val", "data_seed")}
    tasks = {(b, n, sd): {**net, "n_train": n, "seed": sd, "updates": b, "epochs": math.ceil(b / steps[n])}
             for b in budgets for n in sizes for sd in s["seeds"]}  # fmt: skip
    study.log(f"A.5{' and Part B' if part_b else ''}: {len(tasks)} trainings, {budgets} updates")
    done = st.train(train_one, {key(t): t for t in tasks.values()})
    runs = {k: done[key(t)] for k, t in tasks.items()}
    results["choice"] = {k: base[k] for k in ("arch", "batch_size", "lr")} | {"updates": u}
    results["a5"] = [runs[u, s["n_small"], sd]["history"] for sd in s["seeds"]]
    results["final"] = {"sizes": sizes, "budgets": budgets, "part_b": part_b,
                        "epochs": [[b / steps[n] for n in sizes] for b in budgets],
                        "train_error": [[[1 - runs[b, n, sd]["history"]["accuracy"][-1] for sd in s["seeds"]]
                                         for n in sizes] for b in budgets]}  # fmt: skip
    return on_test_set(st, s, results, runs)


def on_test_set(st: study.Study, s: dict, results: dict, runs: dict) -> dict:
    """The one place the official test images are used, once every choice was made on held-out
    folds: each final network (A.5, Part B) and the SVM, scored once."""
    final, seed, arch, pred = results["final"], s["seeds"][0], results["choice"]["arch"], {}
    data = study.load_data("raw", s["n_small"], s["n_val"], st.args.data_seed)  # pixels in [0, 1]
    X, y, images = study.test_set(data)
    for (b, n, sd), r in runs.items():
        model = mlp(arch, study.seed_streams(sd)["weights"])
        model.load_state_dict(r["arrays"])
        pred[b, n, sd] = predict(model, X, labels=True)
    final["test_error"] = [[[float(np.mean(pred[b, n, sd] != y)) for sd in s["seeds"]]
                            for n in final["sizes"]] for b in final["budgets"]]  # fmt: skip
    results["test_accuracy"] = 1 - float(np.mean(final["test_error"][-1][-1]))
    if not final["part_b"]:
        return results
    u = final["budgets"][0]
    small, large = pred[u, s["n_small"], seed], pred[u, s["b_size"], seed]
    wrong, fixed = np.flatnonzero(large != y), np.flatnonzero((small != y) & (large == y))
    pick = np.random.default_rng(0)  # draws the examples shown
    shown = np.concatenate([np.sort(pick.choice(i, min(5, len(i)), replace=False)) for i in (wrong, fixed)])
    st.save_arrays("b2", dict(images=images[shown], y=y[shown], small=small[shown], large=large[shown]))
    results["b2"] = {"wrong": len(wrong), "fixed": len(fixed)}
    W = {k: runs[u, n, seed]["arrays"]["0.W"] for k, n in (("small", s["n_small"]), ("large", s["b_size"]))}
    W0 = W["start"] = mlp(arch, study.seed_streams(seed)["weights"]).layers[0].W.value  # where both began
    st.save_arrays("b3", {k: w[:, : s["units"]] for k, w in W.items()})
    results["b3"] = {f"moved_{k}": np.mean(norm(w - W0, axis=0) / norm(W0, axis=0)) for k, w in W.items()}
    results["b3"] |= {f"smooth_{k}": neighbour_correlation(w) for k, w in W.items()}
    results["svm"] = svm_baseline(s, data, X, y)
    return results


def neighbour_correlation(W: np.ndarray) -> float:
    """Correlation of the weights of horizontally adjacent pixels over all units of a first layer
    ``W (784, units)``: about 0 for random weights, higher for smooth, image-like ones."""
    images = W.reshape(28, 28, -1)
    return float(np.corrcoef(images[:, :-1].ravel(), images[:, 1:].ravel())[0, 1])


def svm_baseline(s: dict, data: study.Data, X_test: np.ndarray, y_test: np.ndarray) -> dict:
    """scikit-learn's RBF-kernel SVM on Part A's images (pixels in [0, 1], the scale gamma suits)."""
    try:
        from sklearn.svm import SVC
    except ImportError:
        return {"skipped": "scikit-learn is not installed (pip install 'minidl[baselines]')"}
    X, y = data.X_train, data.y_train
    svm = SVC(kernel="rbf", **s["svm"]).fit(X, y)
    sq = (X * X).sum(axis=1)
    D2 = sq[:, None] + sq[None, :] - 2 * X @ X.T  # squared distances between the training images
    return {"train_error": float(np.mean(svm.predict(X) != y)), "n_support": int(svm.n_support_.sum()),
            "test_error": float(np.mean(svm.predict(X_test) != y_test)),
            "median_sq_distance": float(np.median(D2[np.triu_indices(len(X), k=1)]))}  # fmt: skip


# ---- numbers ----------------------------------------------------------------------------------------
def label(name: str, value: Any, n_small: int) -> str:
    special = {1: "1 (stochastic)", n_small: f"{n_small} (full batch)"} if name == "batch_size" else {}
    return str(tuple(value)) if name == "arch" else special.get(value, f"{value:g}")


def cv_metrics(stage: dict, s: dict) -> dict:
    """A cross-validation stage: per candidate its fold scores, the paired per-fold difference
    from the chosen one (all share the folds), its curves (mean, std over the folds)."""
    cv, rows = stage["cv"], []
    S = np.array([cv[f"split{k}_test_score"] for k in range(s["folds"])], dtype=float).T
    best = int(np.argmin(cv["rank_test_score"]))
    for c, (value, runs) in enumerate(zip(stage["values"], stage["runs"], strict=True)):
        hs = [{**r["history"], "seconds": np.cumsum([0.0, *r["epoch_time"]])} for r in runs]
        curves = {k: [v.tolist() for v in plots.mean_std(hs, k)[:2]] for k in [*hs[0]]}
        diff, steps = S[best] - S[c], runs[0]["steps_per_epoch"]
        finished = [r["history"]["loss"][-1] for r in runs if not r["diverged"]]
        hit = np.flatnonzero(np.asarray(curves["loss"][0][1:]) <= s["target_loss"])
        e = int(hit[0]) + 1 if hit.size else None
        params = sum((a + 1) * b for a, b in pairwise([784, *value, 10])) if stage["name"] == "arch" else None
        rows.append({"value": value, "label": label(stage["name"], value, s["n_small"]), "curves": curves,
                     "scores": S[c].tolist(), "mean": S[c].mean(), "rank": int(cv["rank_test_score"][c]),
                     "diff": diff.mean(), "diff_std": diff.std(), "worse": int((diff > 0).sum()),
                     "better": int((diff < 0).sum()), "diverged": sum(r["diverged"] for r in runs),
                     "stop_reason": next((r["stop_reason"] for r in runs if r["diverged"]), None),
                     "steps": steps, "final_loss": np.mean(finished) if finished else None,
                     "epochs_to_target": e, "updates_to_target": e and e * steps,
                     "seconds_to_target": e and curves["seconds"][0][e], "seconds": cv["mean_fit_time"][c],
                     "params": params})  # fmt: skip
    return {"name": stage["name"], "best": best, "chosen": rows[best]["label"], "rows": rows}


def summarise(results: dict) -> dict:
    s, f = results["settings"], results["final"]
    keys = ("quick", "seconds", "settings", "choice", "test_accuracy", "final", "b2", "b3", "svm")
    m = {k: results[k] for k in keys if k in results}
    m |= {k: cv_metrics(results[k], s) for k in ("a1", "a3", "a4")}
    curves = m["a1"]["rows"][m["a1"]["best"]]["curves"]
    loss, val = curves["loss"][0], np.asarray(curves["val_accuracy"][0])
    m["a2"] = {"epoch": int(np.nanargmax(val)), "peak": np.nanmax(val), "final": val[-1], "start": loss[0],
               "loss": loss[-1], "fit": curves["accuracy"][0][-1]}  # fmt: skip
    acc, val = (plots.mean_std(results["a5"], k)[0] for k in ("accuracy", "val_accuracy"))
    m["a5"] = {"histories": results["a5"], "train_error": f["train_error"][0][0], "fit": acc.max(),
               "test_error": f["test_error"][0][0], "fit_epoch": int(np.argmax(acc)), "val_final": val[-1],
               "peak_epoch": int(np.argmax(val)), "peak": val.max()}  # fmt: skip
    return m


# ---- figures ----------------------------------------------------------------------------------------
def curves(ax, stage: dict, key: str, ylabel: str, title: str, x: str | None = None) -> None:
    """Mean (line) +- std (band) over the folds of ``key``, one line per candidate; loss on a log axis."""
    series, logy = {}, key == "loss"
    for r in stage["rows"]:
        mean, std = (np.asarray(v, dtype=float) for v in r["curves"][key])
        xs = np.arange(len(mean)) if x is None else np.asarray(r["curves"][x][0])[: len(mean)]
        note = f" (diverged on {r['diverged']} folds)" if r["diverged"] else ""
        series[r["label"] + note] = (xs, mean, np.minimum(std, 0.9 * mean) if logy else std)
    xlabel = "epoch" if x is None else "training time (s, mean over folds, log scale)"
    plots.compare_curves(series, xlabel=xlabel, ylabel=ylabel, title=title, logx=bool(x), logy=logy, ax=ax)


def stage_figure(m: dict, stage: str, xlabel: str, title: str, rows: int = 1, ticks: list | None = None):
    """Held-out accuracy of each candidate on every fold; training loss, held-out accuracy per epoch."""
    fig = plots.new_figure(18.0, 5.0 * rows)
    ax, cands, F = fig.subplots(rows, 3).ravel(), m[stage]["rows"], m["settings"]["folds"]
    xs = np.arange(len(cands))
    for k in range(F):
        ax[0].plot(xs + 0.06 * (k - (F - 1) / 2), [r["scores"][k] for r in cands], "o", color="0.6", ms=4,
                   label="one fold" if k == 0 else None)  # fmt: skip
    ax[0].errorbar(xs, [r["mean"] for r in cands], yerr=[np.std(r["scores"]) for r in cands], fmt="s", ms=7,
                   capsize=5, lw=2, label=f"mean ± std over {F} folds")  # fmt: skip
    ax[0].set_xticks(xs, labels=ticks or [r["label"] + "\n(diverged)" * bool(r["diverged"]) for r in cands])
    ax[0].set(xlabel=xlabel, ylabel="accuracy on the held-out fold", title="Held-out accuracy after training")
    ax[0].legend(fontsize=8.5)
    curves(ax[1], m[stage], "loss", "training loss (log scale)", "Training loss per epoch")
    curves(ax[2], m[stage], "val_accuracy", "accuracy on the held-out fold", "Held-out accuracy per epoch")
    ax[1].set_ylim(top=5 * max(r["curves"]["loss"][0][0] for r in cands))  # a diverging run leaves at the top
    for a in ax[:3]:
        a.grid(alpha=0.3)
    plots.note_narrow_axis(ax[0])
    plots.note_narrow_axis(ax[2])
    fig.suptitle(f"{title}; mean (line) ± std (band) over {F} folds")
    return fig, ax


def figures(m: dict, out) -> None:
    s, c, a5, chosen = m["settings"], m["choice"], m["a5"], m["a1"]["chosen"]
    title = f"A.1. Architecture by cross-validation on {s['n_small']} images; A.2. the lab's recipe: SGD "
    title += f"step {s['lr']:g}, momentum {s['momentum']:g}, alpha {s['alpha']:g}, batch {s['batch_size']}"
    ticks = [f"{r['label']}\n{r['params']}" for r in m["a1"]["rows"]]
    fig, ax = stage_figure(m, "a1", "hidden layer sizes, number of weights and biases", title, ticks=ticks)
    plots.mark_x(ax[2], m["a2"]["epoch"], f"epoch {m['a2']['epoch']}: {chosen} at its best")
    plots.save_figure(fig, out / "a1_architectures.png")

    title = f"A.3. Batch size: {chosen}, SGD step {s['lr']:g}; dashed: training loss {s['target_loss']:g}"
    fig, ax = stage_figure(m, "a3", "batch size", title, rows=2)
    steps = study.load_arrays(out, "a3_steps")
    for i, r in enumerate(m["a3"]["rows"]):
        loss = steps[str(r["value"])]
        ax[3].plot(np.arange(1, len(loss) + 1), loss, color=f"C{i}", lw=0.5, alpha=0.6, label=r["label"])
    ax[3].set(xscale="log", yscale="log", xlabel="update (log scale)", ylabel="loss of its batch (log scale)")
    ax[3].set_title("Per update, fold 0: the loss of every update's batch")
    ax[3].legend(fontsize=8, title="batch size")
    curves(ax[4], m["a3"], "loss", "training loss (log scale)", "Per second of training", x="seconds")
    for a in (ax[1], ax[3], ax[4]):
        a.set_ylim(top=ax[1].get_ylim()[1])
        a.axhline(s["target_loss"], color="0.3", ls="--", lw=1)
        a.grid(alpha=0.3)
    ax[5].set_axis_off()
    plots.save_figure(fig, out / "a3_batch_size.png")

    title = f"A.4. Learning rate: {chosen}, batch {m['a3']['chosen']}, SGD"
    fig, _ = stage_figure(m, "a4", "learning rate (step size)", title)
    plots.save_figure(fig, out / "a4_learning_rate.png")

    net = f"{chosen}, batch {c['batch_size']}, step {c['lr']:g}"
    title = f"A.5. The final {s['n_small']}-image network {net}; validation: {s['n_val']} images"
    fig = plots.learning_curves_grid(a5["histories"], title=title)
    for a in fig.axes:
        plots.mark_x(a, a5["peak_epoch"], f"epoch {a5['peak_epoch']}: validation accuracy at its best")
    plots.note_narrow_axis(fig.axes[1])
    plots.save_figure(fig, out / "a5_final.png")
    if m["final"]["part_b"]:
        figures_b(m, out, net)


def figures_b(m: dict, out, net: str) -> None:
    s, f, a5, k = m["settings"], m["final"], m["a5"], m["settings"]["units"]
    series = {f"{what} error, {u} updates": np.asarray(f[f"{what}_error"][b]).T
              for b, u in enumerate(f["budgets"]) for what in ("test", "train")}  # fmt: skip
    path, title = out / "b_data_size.png", f"Training-set size: {net}"
    plots.line_plot(f["sizes"], series, xlabel="training images (log scale)", ylabel="error (1 - accuracy)",
                    logx=True, title=title, path=path)  # fmt: skip
    b2, names = study.load_arrays(out, "b2"), study.CLASS_NAMES
    titles = [f"true: {names[t]}\n{s['b_size']}: {names[p]}\n{s['n_small']}: {names[q]}"
              for t, p, q in zip(b2["y"], b2["large"], b2["small"], strict=True)]  # fmt: skip
    title = f"B.2. Top: wrong with {s['b_size']} images. Bottom: wrong with {s['n_small']}, right with "
    title += str(s["b_size"])
    plots.image_grid(b2["images"], titles=titles, ncols=5, path=out / "b2_misclassified.png", title=title)
    W, rows = study.load_arrays(out, "b3"), {"start": "start", "small": s["n_small"], "large": s["b_size"]}
    W, names = np.hstack([W[r] for r in rows]), [f"{t}: unit {u}" for t in rows.values() for u in range(k)]
    title = f"B.3. First-layer weights of units 0-{k - 1}: at the start, after {f['budgets'][0]} updates on "
    title += f"{s['n_small']} and on {s['b_size']} images (one colour scale)"
    plots.weight_images(W, names, ncols=k, path=out / "b3_weights.png", title=title)
    which, errors = ("train_error", "test_error"), ["train error", "test error"]
    bars = {} if "skipped" in m["svm"] else {"RBF SVM (scikit-learn)": [m["svm"][e] for e in which]}
    bars[f"network {net}, ± std over seeds"] = [np.mean(a5[e]) for e in which]
    title = f"The same {s['n_small']} images" + " (SVM skipped)" * (len(bars) == 1)
    fig = plots.bar_compare(errors, bars, ylabel="error (1 - accuracy)", fmt="{:.3f}", title=title)
    fig.axes[0].errorbar(np.arange(2) + 0.2 * (len(bars) - 1), [np.mean(a5[e]) for e in which],
                         [np.std(a5[e]) for e in which], fmt="none", ecolor="k", capsize=6)  # fmt: skip
    plots.save_figure(fig, out / "b_svm.png")


# ---- the report -------------------------------------------------------------------------------------
def cv_table(stage: dict, **extra: str) -> str:
    """``grid_search``'s ``cv_results_`` columns, best first, and the paired per-fold differences."""
    rows, F = sorted(stage["rows"], key=lambda r: r["rank"]), len(stage["rows"][0]["scores"])
    head = ["rank", stage["name"].replace("_", " "), *(h.replace("_", " ") for h in extra), "mean ± std"]
    body = [[r["rank"], r["label"], *(r[k] for k in extra.values()),
             "diverged" if r["diverged"] else study.pm(r["scores"], 3), *r["scores"],
             f"{r['diff']:+.3f} ± {r['diff_std']:.3f}, worse on {r['worse']}, better on {r['better']}"
             if r["rank"] > 1 and np.isfinite(r["diff"]) else "-"] for r in rows]  # fmt: skip
    return study.md_table([*head, *(f"split{k}" for k in range(F)), "chosen minus this, per fold"], body, 3)


def chosen_text(stage: dict, folds: int) -> str:
    """The winner, and how far ahead of the runner-up it is fold by fold (all share the folds)."""
    best, second = sorted(stage["rows"], key=lambda r: r["rank"])[:2]
    verdict = "every fold agrees" if second["worse"] == folds else "weak evidence: the folds disagree"
    text = f"**Chosen: {best['label']}** (mean held-out accuracy {best['mean']:.4f}). The runner-up, "
    text += f"{second['label']}, is {second['diff']:.3f} ± {second['diff_std']:.3f} behind per fold "
    return text + f"(behind on {second['worse']} of {folds} folds, ahead on {second['better']}): {verdict}."


def names(rows: list, test) -> str:
    return ", ".join(r["label"] for r in rows if test(r)) or "none"


def report(m: dict) -> dict:
    s, f, F, a3 = m["settings"], m["final"], m["settings"]["folds"], m["a3"]["rows"]
    final = f"the network trained on all {f['sizes'][-1]} training images for {f['budgets'][-1]} updates"
    v = {"quick": " (QUICK smoke run: tiny data, few epochs; the numbers mean nothing)" * m["quick"],
         "minutes": f"{m['seconds'] / 60:.1f}", "seeds": len(s["seeds"]),
         "final_model": f"{final if f['part_b'] else 'the A.5 network'} (mean over {len(s['seeds'])} seeds)",
         "n_fit": s["n_small"] - s["n_small"] // F, "point": f"{100 * F / s['n_small']:.1f}",
         "a1_table": cv_table(m["a1"], parameters="params", fit_s="seconds"),
         "a3_table": cv_table(m["a3"], updates_per_epoch="steps", epochs_to_target="epochs_to_target",
                              updates_to_it="updates_to_target", seconds_to_it="seconds_to_target",
                              final_train_loss="final_loss", fit_s="seconds"),
         "a4_table": cv_table(m["a4"], final_train_loss="final_loss", why_it_ended="stop_reason"),
         **{f"{k}_text": chosen_text(m[k], F) for k in ("a1", "a3", "a4")},
         **{f"{k}_diverged": names(m[k]["rows"], lambda r: r["diverged"]) for k in ("a3", "a4")},
         **{f"{k}_collapsed": names(m[k]["rows"], lambda r: r["mean"] <= 0.2) for k in ("a3", "a4")},
         "a3_slow": names(a3, lambda r: not (r["epochs_to_target"] or r["diverged"] or r["mean"] <= 0.2)),
         **{f"a5_{e}": study.pm(m["a5"][f"{e}_error"]) for e in ("train", "test")}}  # fmt: skip
    if not f["part_b"]:
        return v | {"part_b": "Part B was not run (`--part A`)."}
    rows = [[u, n, f"{f['epochs'][b][j]:g}", *(study.pm(f[f"{e}_error"][b][j]) for e in ("train", "test")),
             f"{np.mean(f['test_error'][b][j]) - np.mean(f['train_error'][b][j]):+.4f}"]
            for b, u in enumerate(f["budgets"]) for j, n in enumerate(f["sizes"])]  # fmt: skip
    head = ["updates", "training images", "epochs", "train error", "test error", "gap"]
    j, svm, gamma = f["sizes"].index(s["b_size"]), m["svm"], s["svm"]["gamma"]
    v |= {"size_table": study.md_table(head, rows),
          **{f"b1_{e}": study.pm(f[f"{e}_error"][0][j]) for e in ("train", "test")},
          **{f"svm_{e}": study.fmt(svm.get(e)) for e in ("train_error", "test_error")}}  # fmt: skip
    if "skipped" in svm:
        v["svm_text"] = f"**SVM skipped**: {svm['skipped']}."
    else:
        gap, d2 = svm["test_error"] - np.mean(m["a5"]["test_error"]), svm["median_sq_distance"]
        winner = f"{'the SVM' if gap < 0 else 'the network'} has the lower test error, by {abs(gap):.3f}"
        level = abs(gap) <= np.std(m["a5"]["test_error"])  # within the network's spread over seeds
        v["svm_text"] = (f"The median squared distance between two training images is {d2:.0f}, so the "
                         f"kernel of a typical pair is {np.exp(-gamma * d2):.2f}; the SVM kept "
                         f"{svm['n_support']} of the {s['n_small']} images as support vectors. "
                         f"On these images {'the two are level' if level else winner}.")  # fmt: skip
    return v | {"part_b": study.fill(f"{NAME}_b", m | v)}


main = study.main_for(__name__)

if __name__ == "__main__":
    main()
