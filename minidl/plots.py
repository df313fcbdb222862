"""Figures for experiments: learning curves, weight images, confusion matrices, image grids, ROC.

Every function builds a ``matplotlib.figure.Figure`` directly (with an Agg canvas), so nothing
here touches pyplot's global state, switches the backend or needs a display: it works the same in
a script, on a headless server and in Jupyter (where a returned Figure displays itself).

Every function returns the Figure and takes an optional ``path``; when given, the PNG is written
atomically: into a temporary file in the same directory, then renamed over ``path``, so a reader
never sees half a file and an interrupted run never leaves one behind.

Conventions: images are ``(N, 28, 28)`` or flattened ``(N, 784)``; a run's history is a dict of
lists (Keras names ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``) whose index 0 is the
value before the first update; std is the population std (ddof=0), as in NumPy's default.
"""

from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.legend_handler import HandlerTuple
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator, NullLocator

from minidl._io import atomic_write
from minidl.metrics import roc_auc_score, roc_curve

__all__ = [
    "mean_std",
    "log_block_means",
    "learning_curves",
    "learning_curves_grid",
    "weight_images",
    "confusion_matrix_plot",
    "confusion_matrices",
    "image_grid",
    "class_examples",
    "bar_compare",
    "line_plot",
    "compare_curves",
    "roc_curves",
    "new_figure",
    "save_figure",
]

PathLike = str | os.PathLike
DPI = 120
BAND_ALPHA = 0.3  # opacity of the +-1 std band
RUN_ALPHA = 0.25  # opacity of the thin per-seed lines
DIVERGING_CMAP = "RdBu_r"  # red = positive weight, blue = negative, white = 0


# ---------------------------------------------------------------------------------------------
# Figure creation and atomic saving
# ---------------------------------------------------------------------------------------------


def _new_figure(width: float, height: float) -> Figure:
    """A Figure with its own Agg canvas; constrained layout keeps labels inside the image."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: PathLike | None) -> None:
    """Write ``fig`` as a PNG to ``path`` atomically (temporary file + ``os.replace``)."""
    if path is not None:
        with atomic_write(path) as f:
            fig.savefig(f, format="png", dpi=DPI, bbox_inches="tight")


# ---------------------------------------------------------------------------------------------
# Learning curves
# ---------------------------------------------------------------------------------------------


def _history(run: Any) -> Mapping[str, Sequence[float]]:
    """A run's dict of lists; a ``History`` object (anything with ``.history``) works too."""
    return run.history if hasattr(run, "history") else run


def _as_runs(runs: Any) -> list[Mapping[str, Sequence[float]]]:
    """A list of history dicts; one dict or one History counts as a single run."""
    if isinstance(runs, Mapping) or hasattr(runs, "history"):
        runs = [runs]
    histories = [_history(r) for r in runs]
    if not histories:
        raise ValueError("runs is empty: pass one history dict per seed")
    return histories


def mean_std(runs: Sequence[Any], key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and population std (ddof=0) of ``key`` across runs, epoch by epoch.

    ``runs`` is a list of history dicts (one per seed). Runs may have different lengths (early
    stopping): at each epoch the statistics use the runs that reached it, and ``n[i]`` says how
    many did. Non-finite values (a diverged run) are left out the same way; where no run has a
    value, mean and std are NaN.

    Returns ``(mean, std, n)``, three arrays of the longest run's length.

    >>> mean, std, n = mean_std([{"loss": [2.0, 1.0]}, {"loss": [4.0]}], "loss")
    >>> mean.tolist(), std.tolist(), n.tolist()
    ([3.0, 1.0], [1.0, 0.0], [2, 1])
    """
    histories = _as_runs(runs)
    missing = [i for i, h in enumerate(histories) if key not in h]
    if missing:
        raise KeyError(
            f"key {key!r} missing from run(s) {missing}; run {missing[0]} has keys "
            f"{sorted(histories[missing[0]])}"
        )
    length = max(len(h[key]) for h in histories)
    V = np.full((len(histories), length), np.nan)  # (runs, epochs), NaN = no value
    for i, h in enumerate(histories):
        V[i, : len(h[key])] = np.asarray(h[key], dtype=float)
    present = np.isfinite(V)
    n = present.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(present, V, 0.0).sum(axis=0) / n
        std = np.sqrt(np.where(present, (V - mean) ** 2, 0.0).sum(axis=0) / n)
    return mean, std, n


def log_block_means(values: Sequence[float], n: int = 200) -> tuple[list[float], list[float]]:
    """A long per-update curve (the loss of every step) thinned for a log x axis: ``(x, means)``,
    the means of consecutive blocks whose widths grow geometrically, at the blocks' centres
    (``x`` counts from 0, the first value).

    About ``n`` points, evenly spread on a log axis: the first blocks hold one value each (every
    early update shows), later ones many (their noise averages out). Every value is in exactly
    one block, so the curve keeps the level of the raw one.

    >>> log_block_means([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], n=5)
    ([0.0, 1.5, 4.0], [1.0, 2.5, 5.0])
    """
    edges = np.unique(np.geomspace(1, len(values) + 1, n).astype(int)) - 1
    widths = np.diff(edges)
    means = np.add.reduceat(np.asarray(values, dtype=float), edges[:-1]) / widths
    return (edges[:-1] + (widths - 1) / 2).tolist(), means.tolist()


def _pretty_key(key: str) -> str:
    """``val_accuracy`` -> ``validation accuracy``, ``loss`` -> ``train loss``."""
    if key.startswith("val_"):
        return "validation " + key[4:].replace("_", " ")
    return "train " + key.replace("_", " ")


def _capitalised(text: str) -> str:
    """First letter upper case, the rest as written ("MSE loss" stays "MSE loss")."""
    return text[:1].upper() + text[1:]


def _default_ylabel(keys: Sequence[str]) -> str:
    names = {k.removeprefix("val_") for k in keys}
    return names.pop().replace("_", " ") if len(names) == 1 else "value"


def _seeds_label(n: np.ndarray, x: np.ndarray, xlabel: str) -> str:
    """Legend text like 'mean ± std over 10 seeds', saying from where fewer runs count."""
    n_max = int(n.max())
    if n_max == 1:
        return "1 seed"
    text = f"mean ± std over {n_max} seeds"
    fewer = np.flatnonzero(n < n_max)
    if fewer.size:
        text += f", fewer from {xlabel} {x[fewer[0]]:g}"
    return text


def learning_curves(
    runs: Sequence[Any],
    *,
    keys: Sequence[str] = ("loss", "val_loss"),
    x: Sequence[float] | None = None,
    xlabel: str = "epoch",
    ylabel: str | None = None,
    title: str | None = None,
    show_runs: bool = True,
    path: PathLike | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Mean +- std learning curves over seeds, one colour per history key.

    runs:      list of history dicts (or ``History`` objects), one per seed; entry ``i`` of each
               list is the value after ``i`` epochs (entry 0: before the first update).
    keys:      which history keys to draw, e.g. ``("accuracy", "val_accuracy")``.
    x:         x values for entries 0, 1, ... (default: the epoch numbers 0, 1, ...).
    ylabel:    default from the keys ("loss", "accuracy", ...).
    show_runs: draw each seed as a thin faint line under the bold mean.
    ax:        draw into this Axes instead of a new figure (its figure is returned and saved).

    Runs of different lengths (early stopping) are aggregated over the seeds still present at each
    epoch (see ``mean_std``); the thin lines show where each run stops and the legend says from
    which epoch fewer seeds count.
    """
    histories = _as_runs(runs)
    if ax is None:
        fig = _new_figure(7.0, 4.5)
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    ylabel = _default_ylabel(keys) if ylabel is None else ylabel

    handles, labels = [], []
    for i, key in enumerate(keys):
        color = f"C{i}"
        mean, std, n = mean_std(histories, key)
        xs = np.arange(len(mean)) if x is None else np.asarray(x, dtype=float)
        if len(xs) < len(mean):
            raise ValueError(f"x has {len(xs)} values but runs have up to {len(mean)} for {key!r}")
        xs = xs[: len(mean)]
        # Layers, bottom to top: thin seed lines, then the std bands, then the bold means.
        if show_runs and len(histories) > 1:
            for h in histories:
                ax.plot(xs[: len(h[key])], h[key], color=color, lw=0.6, alpha=RUN_ALPHA, zorder=1)
        band = ax.fill_between(
            xs, mean - std, mean + std, color=color, alpha=BAND_ALPHA, linewidth=0, zorder=2
        )
        (line,) = ax.plot(xs, mean, color=color, lw=2.0, zorder=3)
        handles.append((band, line) if n.max() > 1 else line)  # one seed: no band
        labels.append(f"{_pretty_key(key)} ({_seeds_label(n, xs, xlabel)})")
    if show_runs and len(histories) > 1:
        handles.append(Line2D([], [], color="0.4", lw=0.8, alpha=0.6))
        labels.append("single seeds (thin lines)")

    ax.legend(handles, labels, handler_map={tuple: HandlerTuple(ndivide=1)}, fontsize=8.5)
    if x is None:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f"{_capitalised(ylabel)} during training" if title is None else title)
    ax.grid(alpha=0.3)
    _save(fig, path)
    return fig


def learning_curves_grid(
    runs: Sequence[Any], path: PathLike | None = None, title: str | None = None
) -> Figure:
    """Two panels side by side: loss (train + validation) and accuracy (train + validation).

    Keys missing from the runs (no validation data, no accuracy) are skipped; a panel with no key
    at all says so instead of failing.
    """
    histories = _as_runs(runs)
    fig = _new_figure(13.0, 4.8)
    axes = fig.subplots(1, 2)
    for ax, name in zip(axes, ("loss", "accuracy"), strict=True):
        keys = [k for k in (name, "val_" + name) if all(k in h for h in histories)]
        if keys:
            learning_curves(histories, keys=keys, ylabel=name, title=_capitalised(name), ax=ax)
        else:
            ax.text(0.5, 0.5, f"no {name!r} in the histories", ha="center", transform=ax.transAxes)
            ax.set_axis_off()
    if title is None:
        n = len(histories)
        title = f"Learning curves, mean ± std over {n} seeds" if n > 1 else "Learning curves"
    fig.suptitle(title)
    _save(fig, path)
    return fig


# ---------------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------------


def _as_images(images: Any) -> np.ndarray:
    """``(N, H, W)`` from ``(N, H, W)``, ``(N, 1, H, W)`` or square flattened ``(N, H*W)``."""
    A = np.asarray(images)
    if A.ndim == 4 and A.shape[1] == 1:
        A = A[:, 0]
    if A.ndim == 2:
        side = math.isqrt(A.shape[1])
        if side * side != A.shape[1]:
            raise ValueError(f"cannot reshape rows of {A.shape[1]} pixels into square images")
        A = A.reshape(len(A), side, side)
    if A.ndim != 3:
        raise ValueError(f"expected images (N, H, W) or (N, H*W), got shape {np.shape(images)}")
    return A


def _intensity_range(A: np.ndarray) -> tuple[float, float]:
    """One grey scale for all panels: 0..255 for uint8, 0..1 for scaled floats, else min..max."""
    if A.dtype == np.uint8:
        return 0.0, 255.0
    lo, hi = float(np.nanmin(A)), float(np.nanmax(A))
    if 0.0 <= lo and hi <= 1.0:
        return 0.0, 1.0
    return lo, hi


def _show(ax: Axes, img: np.ndarray, **kwargs: Any) -> Any:
    """``imshow`` without ticks or frame."""
    im = ax.imshow(img, interpolation="nearest", **kwargs)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    return im


def _wrap(text: str, width: int = 18) -> str:
    """Fit a panel title into lines of about ``width`` characters, breaking at " / " first."""
    lines = text.split("\n") if len(text) <= width else text.replace(" / ", "\n").split("\n")
    return "\n".join(
        textwrap.fill(line, width, break_long_words=False, break_on_hyphens=False) for line in lines
    )


def weight_images(
    W: Any,
    class_names: Sequence[str],
    *,
    shape: tuple[int, int] = (28, 28),
    path: PathLike | None = None,
    title: str | None = None,
    ncols: int = 5,
) -> Figure:
    """Column ``k`` of ``W`` (shape ``(784, K)``, pixels x classes) as an image, one panel per class.

    One symmetric diverging colour scale for all panels (vmin = -max|W|, vmax = max|W|): red
    pixels push the class score up, blue pixels push it down, white pixels (about 0) barely count; the
    same colour means the same weight in every panel. One shared colorbar.
    """
    W = np.asarray(getattr(W, "value", W), dtype=float)  # a Parameter works too
    n_pixels = shape[0] * shape[1]
    if W.ndim != 2 or W.shape[0] != n_pixels:
        hint = " (pass W.T?)" if W.ndim == 2 and W.shape[1] == n_pixels else ""
        raise ValueError(f"W must have shape ({n_pixels}, K), got {W.shape}{hint}")
    K = W.shape[1]
    if K == 0 or len(class_names) != K:
        raise ValueError(f"W has {K} columns but {len(class_names)} class names were given")
    vmax = float(np.nanmax(np.abs(W))) if W.size else 0.0
    vmax = vmax if vmax > 0 else 1.0  # an all-zero W still gets a valid scale

    ncols = max(1, min(ncols, K))
    nrows = math.ceil(K / ncols)
    fig = _new_figure(1.9 * ncols + 1.0, 2.1 * nrows + 0.5)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for k, ax in enumerate(axes):
        if k >= K:
            ax.set_axis_off()
            continue
        im = _show(ax, W[:, k].reshape(shape), cmap=DIVERGING_CMAP, vmin=-vmax, vmax=vmax)
        ax.set_title(class_names[k], fontsize=10)
    cbar = fig.colorbar(im, ax=list(axes), shrink=0.8, aspect=30)
    cbar.set_label("weight (red > 0, blue < 0)")
    fig.suptitle("Weights per class: column k of W as an image" if title is None else title)
    _save(fig, path)
    return fig


def image_grid(
    images: Any,
    labels: Sequence[int] | None = None,
    *,
    class_names: Sequence[str] | None = None,
    titles: Sequence[str] | None = None,
    ncols: int = 10,
    path: PathLike | None = None,
    title: str | None = None,
    cmap: str = "gray",
) -> Figure:
    """A grid of images, each with a small title.

    images: ``(N, 28, 28)`` or ``(N, 784)``; all panels share one grey scale.
    Panel titles: ``titles`` if given (e.g. ``"true: Shirt / pred: T-shirt/top"``), else the
    class name of ``labels[i]`` (or the label itself without ``class_names``), else none.
    Long titles are wrapped onto several lines.
    """
    A = _as_images(images)
    N = len(A)
    if titles is None and labels is not None:
        titles = [class_names[int(c)] if class_names is not None else str(c) for c in labels]
    if titles is not None and len(titles) != N:
        raise ValueError(f"{len(titles)} titles for {N} images")
    wrapped = [_wrap(t) for t in titles] if titles is not None else None
    title_lines = max((t.count("\n") + 1 for t in wrapped), default=0) if wrapped else 0

    ncols = max(1, min(ncols, N))
    nrows = max(1, math.ceil(N / ncols))
    fig = _new_figure(1.25 * ncols, (1.25 + 0.17 * title_lines) * nrows + 0.4)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    vmin, vmax = _intensity_range(A) if N else (0.0, 1.0)
    for i, ax in enumerate(axes):
        if i >= N:
            ax.set_axis_off()
            continue
        _show(ax, A[i], cmap=cmap, vmin=vmin, vmax=vmax)
        if wrapped is not None:
            ax.set_title(wrapped[i], fontsize=8)
    if title is not None:
        fig.suptitle(title)
    _save(fig, path)
    return fig


def class_examples(
    X: Any,
    y: Any,
    class_names: Sequence[str],
    per_class: int = 8,
    rng: np.random.Generator | int | None = None,
    path: PathLike | None = None,
    title: str | None = None,
) -> Figure:
    """One row per class (labelled with its name), ``per_class`` random examples in each.

    Examples are drawn without replacement with ``np.random.default_rng(rng)``, never NumPy's
    global random state: the same ``rng`` seed picks the same images.
    """
    A = _as_images(X)
    y = np.asarray(y)
    if len(y) != len(A):
        raise ValueError(f"{len(A)} images but {len(y)} labels")
    rng = np.random.default_rng(rng)
    K = len(class_names)
    vmin, vmax = _intensity_range(A)

    fig = _new_figure(1.0 * per_class + 1.4, 1.0 * K + 0.5)
    axes = fig.subplots(K, per_class, squeeze=False)
    for k in range(K):
        members = np.flatnonzero(y == k)
        chosen = rng.choice(members, size=min(per_class, len(members)), replace=False)
        for j, ax in enumerate(axes[k]):
            if j < len(chosen):
                _show(ax, A[chosen[j]], cmap="gray", vmin=vmin, vmax=vmax)
            else:
                ax.set_xticks([])
                ax.set_yticks([])
                for spine in ax.spines.values():
                    spine.set_visible(False)
            if j == 0:
                name = class_names[k] if len(members) else f"{class_names[k]}\n(no examples)"
                ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=10)
    fig.suptitle(f"{per_class} random examples per class" if title is None else title)
    _save(fig, path)
    return fig


# ---------------------------------------------------------------------------------------------
# Confusion matrix
# ---------------------------------------------------------------------------------------------


def _check_cm(cm: Any, class_names: Sequence[str]) -> np.ndarray:
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"confusion matrix must be square, got shape {cm.shape}")
    if cm.shape[0] != len(class_names):
        raise ValueError(f"{cm.shape[0]} classes in the matrix, {len(class_names)} names")
    return cm


def _row_normalise(cm: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (the fraction of each true class); an empty row stays 0."""
    totals = cm.sum(axis=1, keepdims=True).astype(float)
    return np.divide(cm, totals, out=np.zeros(cm.shape), where=totals > 0)


def confusion_matrix_plot(
    cm: Any,
    class_names: Sequence[str],
    *,
    normalize: str | None = None,
    path: PathLike | None = None,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Heatmap of a confusion matrix (rows = true class, columns = predicted), every cell annotated.

    normalize: ``None`` shows the counts; ``"true"`` divides each row by its sum (as scikit-learn's
    ``normalize="true"``), so the diagonal is each class's recall, shown with 2 decimals.
    ax: draw into this Axes instead of a new figure (its figure is returned and saved).
    """
    cm = _check_cm(cm, class_names)
    if normalize not in (None, "true"):
        raise ValueError(f"normalize must be None or 'true', got {normalize!r}")
    K = len(class_names)
    integral = np.issubdtype(cm.dtype, np.integer) or bool(np.all(cm == np.round(cm)))
    if normalize == "true":
        values, fmt, vmax = _row_normalise(cm), "{:.2f}", 1.0
        cbar_label = "fraction of the true class"
        default_title = "Confusion matrix, row-normalised (diagonal = recall)"
    else:
        values, fmt, vmax = cm, ("{:.0f}" if integral else "{:.2f}"), None
        cbar_label = "count"
        default_title = "Confusion matrix (counts)"
        if integral and cm.sum() > 0:
            default_title += f", accuracy {np.trace(cm) / cm.sum():.1%}"

    if ax is None:
        size = max(4.5, 0.62 * K + 2.2)
        fig = _new_figure(size + 1.0, size)
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    im = ax.imshow(values, cmap="Blues", vmin=0.0, vmax=vmax, interpolation="nearest")
    fontsize = 9 if K <= 10 else 7
    for i in range(K):
        for j in range(K):
            r, g, b, _ = im.cmap(im.norm(values[i, j]))
            dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5
            ax.text(
                j,
                i,
                fmt.format(values[i, j]),
                ha="center",
                va="center",
                fontsize=fontsize,
                color="white" if dark else "black",
            )
    ax.set_xticks(range(K), labels=class_names, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(K), labels=class_names)
    ax.xaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(default_title if title is None else title)
    fig.colorbar(im, ax=ax, shrink=0.8).set_label(cbar_label)
    _save(fig, path)
    return fig


def confusion_matrices(
    cm: Any, class_names: Sequence[str], path: PathLike | None = None, title: str | None = None
) -> Figure:
    """Counts (left) and row-normalised fractions (right) of the same confusion matrix."""
    cm = _check_cm(cm, class_names)
    size = max(4.5, 0.62 * len(class_names) + 2.2)
    fig = _new_figure(2 * size + 2.0, size + 0.4)
    left, right = fig.subplots(1, 2)
    confusion_matrix_plot(cm, class_names, ax=left)
    confusion_matrix_plot(cm, class_names, normalize="true", ax=right)
    if title is not None:
        fig.suptitle(title)
    _save(fig, path)
    return fig


# ---------------------------------------------------------------------------------------------
# Comparisons
# ---------------------------------------------------------------------------------------------


def bar_compare(
    names: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    ylabel: str,
    path: PathLike | None = None,
    title: str | None = None,
    fmt: str = "{:.2f}",
) -> Figure:
    """Grouped bar chart: one group per name, one bar (and colour) per series, values on the bars.

    >>> fig = bar_compare(["a", "b"], {"model 1": [0.9, 0.5], "model 2": [0.8, 0.7]},
    ...                   ylabel="precision")
    """
    if not series:
        raise ValueError("series is empty")
    for label, values in series.items():
        if len(values) != len(names):
            raise ValueError(f"series {label!r} has {len(values)} values for {len(names)} names")
    S = len(series)
    fig_width = min(14.0, max(6.0, 0.55 * S * len(names) + 2.0))
    fig = _new_figure(fig_width, 4.8)
    ax = fig.add_subplot()
    positions = np.arange(len(names))
    width = 0.8 / S
    group_inches = (fig_width - 1.5) / max(1, len(names))
    many = group_inches / S < 0.4  # bars too narrow for a flat "0.85": labels stand upright
    for s, (label, values) in enumerate(series.items()):
        offset = (s - (S - 1) / 2) * width
        bars = ax.bar(positions + offset, values, width * 0.95, label=label, color=f"C{s}")
        ax.bar_label(
            bars,
            labels=[fmt.format(v) for v in values],
            padding=2,
            fontsize=7 if many or S > 2 else 8,
            rotation=90 if many else 0,
        )
    ax.set_xticks(positions, labels=names)
    if max((len(n) for n in names), default=0) * 0.085 > 0.9 * group_inches:  # ~10 pt letters
        ax.tick_params(axis="x", labelrotation=30)
        for lab in ax.get_xticklabels():
            lab.set_ha("right")
            lab.set_rotation_mode("anchor")
    ax.margins(y=0.15 if many else 0.1)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=S, frameon=False)
    if title is not None:
        ax.set_title(title, pad=28)
    _save(fig, path)
    return fig


def line_plot(
    xs: Sequence[float],
    series: Mapping[str, Any],
    *,
    xlabel: str,
    ylabel: str,
    logx: bool = False,
    path: PathLike | None = None,
    title: str | None = None,
) -> Figure:
    """A metric against a hyper-parameter (hidden size, learning rate, data size), one line per series.

    Each value of ``series`` is one of:
    - a tuple ``(mean, std)`` of two sequences as long as ``xs``: line with a +-1 std band;
    - a 2-D array ``(seeds, len(xs))``: its mean +- std over seeds (ddof=0) is drawn;
    - a 1-D sequence as long as ``xs``: a plain line.
    With ``logx`` the x axis is logarithmic; the x ticks sit at the given ``xs`` when there are
    at most 12 of them.
    """
    xs = np.asarray(xs, dtype=float)
    fig = _new_figure(7.0, 4.5)
    ax = fig.add_subplot()
    handles, labels = [], []
    for s, (label, value) in enumerate(series.items()):
        color = f"C{s}"
        if isinstance(value, tuple) and len(value) == 2:
            mean, std = (np.asarray(v, dtype=float) for v in value)
            legend = f"{label} (mean ± std)"
        else:
            V = np.asarray(value, dtype=float)
            if V.ndim == 2:
                mean, std = V.mean(axis=0), V.std(axis=0)
                legend = f"{label} (mean ± std over {len(V)} seeds)"
            else:
                mean, std, legend = V, None, label
        if mean.shape != xs.shape or (std is not None and std.shape != xs.shape):
            raise ValueError(f"series {label!r} does not match the {len(xs)} x values")
        (line,) = ax.plot(xs, mean, "o-", color=color, lw=2, ms=5, zorder=3)
        if std is not None:
            band = ax.fill_between(xs, mean - std, mean + std, color=color, alpha=BAND_ALPHA, lw=0)
            handles.append((band, line))
        else:
            handles.append(line)
        labels.append(legend)
    if logx:
        ax.set_xscale("log")
    if len(xs) <= 12:
        ax.set_xticks(xs, labels=[f"{v:g}" for v in xs])
        ax.xaxis.set_minor_locator(NullLocator())
    _finish_axes(ax, xlabel, ylabel, title, handles, labels)
    _save(fig, path)
    return fig


def compare_curves(
    series: Mapping[str, tuple[Any, Any, Any]],
    *,
    xlabel: str,
    ylabel: str,
    title: str | None = None,
    logx: bool = False,
    logy: bool = False,
    ax: Axes | None = None,
    path: PathLike | None = None,
) -> Figure:
    """Several curves with their own x values on one axes, e.g. loss against update steps for
    batch and mini-batch descent, or validation loss per learning rate.

    ``series`` maps a legend label to ``(xs, mean, std)``; ``std`` may be None (no band).
    """
    if ax is None:
        fig = _new_figure(7.0, 4.5)
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    handles, labels = [], []
    for s, (label, (xs, mean, std)) in enumerate(series.items()):
        xs, mean = np.asarray(xs, dtype=float), np.asarray(mean, dtype=float)
        if xs.shape != mean.shape:
            raise ValueError(f"series {label!r}: {len(xs)} x values for {len(mean)} y values")
        (line,) = ax.plot(xs, mean, color=f"C{s}", lw=2, zorder=3)
        if std is not None:
            std = np.asarray(std, dtype=float)
            band = ax.fill_between(xs, mean - std, mean + std, color=f"C{s}", alpha=BAND_ALPHA, lw=0)
            handles.append((band, line))
        else:
            handles.append(line)
        labels.append(label)
    if logx:
        ax.set_xscale("log")
    elif all(np.all(np.mod(np.asarray(xs, dtype=float), 1) == 0) for xs, _, _ in series.values()):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs, steps: no 0.5 ticks
    if logy:
        ax.set_yscale("log")
    _finish_axes(ax, xlabel, ylabel, title, handles, labels)
    _save(fig, path)
    return fig


def _finish_axes(ax: Axes, xlabel: str, ylabel: str, title: str | None, handles: list, labels: list) -> None:
    """Axis labels, a title (default "<ylabel> vs <xlabel>"), a light grid and the legend, whose
    (band, line) pairs are drawn as one entry."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f"{_capitalised(ylabel)} vs {xlabel}" if title is None else title)
    ax.grid(alpha=0.3)
    ax.legend(handles, labels, handler_map={tuple: HandlerTuple(ndivide=1)}, fontsize=9)


def new_figure(width: float, height: float) -> Figure:
    """A blank Figure (own Agg canvas, constrained layout) for composing panels by hand."""
    return _new_figure(width, height)


def save_figure(fig: Figure, path: PathLike) -> None:
    """Save ``fig`` as a PNG atomically (temporary file in the same folder, then rename)."""
    _save(fig, path)


def mark_x(ax: Axes, x: float, text: str) -> None:
    """A dotted vertical line at ``x`` (the best epoch, a chosen value) named by ``text`` along the
    bottom of ``ax``, on the side of the line where there is more room."""
    ax.axvline(x, color="0.3", ls=":", lw=1.2)
    side = "right" if x > np.mean(ax.get_xlim()) else "left"
    ax.text(x, 0.03, f" {text} ", ha=side, transform=ax.get_xaxis_transform(), fontsize=8, color="0.3")


def note_narrow_axis(ax: Axes, span: float = 0.5) -> None:
    """A y axis covering less than ``span`` (an accuracy axis far from 0) says so in its label, so
    that a small difference is not read as a large one."""
    low, high = ax.get_ylim()
    if high - low < span:
        ax.set_ylabel(f"{ax.get_ylabel()}\n(axis from {low:.2f} to {high:.2f} only)")


def difference_matrix(diff: Any, class_names: Sequence[str], *, ax: Axes, title: str | None = None) -> Figure:
    """The difference of two row-normalised confusion matrices (B minus A), on a symmetric
    diverging scale: on the diagonal red means B recalls the class more often; off the diagonal
    blue means B makes that confusion less often. Cells that round to 0.00 stay blank."""
    diff = _check_cm(diff, class_names).astype(float)
    K, vmax = len(class_names), max(0.01, float(np.abs(diff).max()))
    im = ax.imshow(diff, cmap=DIVERGING_CMAP, vmin=-vmax, vmax=vmax, interpolation="nearest")
    for i in range(K):
        for j in range(K):
            if round(diff[i, j], 2) != 0:
                color = "white" if abs(diff[i, j]) > 0.6 * vmax else "black"
                ax.text(j, i, f"{diff[i, j]:+.2f}", ha="center", va="center", fontsize=8, color=color)
    ax.set_xticks(range(K), labels=class_names, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(K), labels=class_names)
    ax.set(xlabel="predicted", ylabel="true", title=title or "difference of row-normalised matrices")
    ax.figure.colorbar(im, ax=ax, shrink=0.8).set_label("difference of fractions of the true class")
    return ax.figure


def feature_maps(
    image: Any,
    maps: Any,
    *,
    path: PathLike | None = None,
    input_title: str = "input",
    label: str = "map",
    title: str | None = None,
) -> Figure:
    """One input image (left) and the feature maps a layer makes of it (right, ``maps`` of shape
    ``(C, H, W)``, eight per row), all maps on one colour scale so their strengths compare."""
    maps = np.asarray(maps)
    fig = _new_figure(16, 2.0 + 1.8 * int(np.ceil(len(maps) / 8)))
    left, right = fig.subfigures(1, 2, width_ratios=[1, 4.2])
    ax = left.add_subplot()
    ax.imshow(image, cmap="gray", interpolation="nearest")
    ax.set(xticks=[], yticks=[], title=input_title)
    axes = right.subplots(int(np.ceil(len(maps) / 8)), 8, squeeze=False)
    vmax = float(maps.max()) or 1.0
    for k, ax in enumerate(axes.ravel()):
        ax.set(xticks=[], yticks=[])
        if k < len(maps):
            im = ax.imshow(maps[k], cmap="magma", vmin=0, vmax=vmax, interpolation="nearest")
            ax.set_title(f"{label} {k + 1}", fontsize=9)
        else:
            ax.set_axis_off()
    right.colorbar(im, ax=axes, shrink=0.8).set_label("activation")
    if title:
        fig.suptitle(title)
    _save(fig, path)
    return fig


def epoch_curves(
    history: Mapping[str, Sequence[float]],
    path: PathLike,
    title: str,
    marks: Mapping[str, int] | None = None,
    lr_reductions: Sequence[int] = (),
) -> None:
    """Loss and accuracy per epoch of one training, train and validation, side by side.

    ``marks`` ({label: epoch}) are drawn as vertical lines with a star on the validation curve
    (the best epoch, where training stopped...), ``lr_reductions`` as triangles along the top.
    Epoch 0 (before training, loss near ln K) is left out: it would squash the rest. A panel
    whose y axis does not start at 0 says so in its title.
    """
    fig = _new_figure(12.5, 5.0)
    for ax, name in zip(fig.subplots(1, 2), ("loss", "accuracy"), strict=True):
        for key, label, color in ((name, "train", "C0"), ("val_" + name, "validation", "C1")):
            ax.plot(range(1, len(history[key])), history[key][1:], "o-", ms=3, color=color, label=label)
        for (label, epoch), ls in zip((marks or {}).items(), ("--", ":", "-."), strict=False):
            ax.axvline(epoch, color="k", ls=ls, lw=1.2, label=f"{label} (epoch {epoch})")
            ax.plot(epoch, history["val_" + name][epoch], "*", ms=13, color="C1", mec="k", zorder=5)
        if len(lr_reductions):
            ax.plot(lr_reductions, [0.97] * len(lr_reductions), "v", color="C2", ms=8,
                    transform=ax.get_xaxis_transform(), label="learning rate lowered")  # fmt: skip
            low, high = ax.get_ylim()
            ax.set_ylim(low, high + 0.08 * (high - low))
        low, high = ax.get_ylim()
        zoom = f" (y axis {low:.3g} to {high:.3g}, not from 0)" if low > 0 else ""
        ax.set(xlabel="epoch", ylabel=name, title=f"{name.capitalize()} per epoch{zoom}")
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    handles, labels = fig.axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), fontsize=9.5, frameon=False)
    fig.suptitle(title)
    _save(fig, path)


def roc_curves(
    y_true: Any,
    scores: Mapping[str, Any],
    points: Mapping[str, Any] | None = None,
    *,
    zoom: bool = False,
    xlabel: str = "false positive rate",
    ylabel: str = "true positive rate",
    title: str = "ROC curves",
    path: PathLike | None = None,
) -> Figure:
    """ROC curves of binary classifiers (their AUC in the legend) and the operating points of hard
    0/1 answers.

    ``y_true``: 0/1 labels ``(N,)``; ``scores``: ``{label: (N,) scores}``, higher meaning more
    likely 1 (logits, probabilities); ``points``: ``{label: (N,) 0/1 predictions}``, each drawn at
    its (false positive rate, true positive rate). Point k takes the colour of curve k, so a
    threshold on curve k's score listed k-th sits on that curve as a dot; points beyond the curves
    (answers without a score, such as an arg-max class) are squares. Good classifiers' curves hug
    the top-left corner: ``zoom`` shows only the corner around the points, and the title says how
    far the axes reach.
    """
    y = np.asarray(y_true)
    fig = _new_figure(8.0, 6.5)
    ax = fig.add_subplot()
    for k, (label, score) in enumerate(scores.items()):
        fpr, tpr, _ = roc_curve(y, score)
        auc = roc_auc_score(y, score)
        ax.plot(fpr, tpr, color=f"C{k}", lw=1.8, drawstyle="steps-post", label=f"{label} (AUC {auc:.5f})")
    rates = []
    for k, (label, predicted) in enumerate((points or {}).items()):
        predicted = np.asarray(predicted)
        if predicted.shape != y.shape:
            raise ValueError(f"points[{label!r}] has shape {predicted.shape}; y_true has {y.shape}")
        rates.append((np.mean(predicted[y == 0] == 1), np.mean(predicted[y == 1] == 1)))
        marker = "o" if k < len(scores) else "s"
        ax.plot(*rates[-1], marker, color=f"C{k}", mec="k", ms=8, zorder=5, label=label)
    if zoom:
        if not rates:
            raise ValueError("zoom shows the corner around the points: give points")
        xmax = max(0.005, 4 * max(x for x, _ in rates))
        ymin = 1 - max(0.005, 4 * (1 - min(t for _, t in rates)))
        ax.set(xlim=(0, xmax), ylim=(ymin, 1.002))
        title += f", top-left corner only: x 0 to {xmax:.2g}, y {ymin:.3g} to 1"
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8.5, loc="lower right")
    _save(fig, path)
    return fig
