"""What every experiment shares: its command line, the data split, result files and report pieces.

An experiment is run -> save -> plot: training results go to JSON/NPZ files in the output folder
as they finish, and the figures and ``report.md`` are drawn from those files, so ``--plot-only``
redraws them without retraining. Every file is written atomically.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from minidl._io import write_json_atomic, write_text_atomic
from minidl.data import Standardizer, scale_pixels
from minidl.datasets import CLASS_NAMES, load_fashion_mnist
from minidl.model_selection import stratified_split

_START = time.perf_counter()

__all__ = [
    "CLASS_NAMES",
    "Split",
    "fmt",
    "log",
    "make_parser",
    "md_table",
    "read_json",
    "split_data",
    "write_json",
    "write_text",
]


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show an option's default only when it has a real one not already named in its help."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or action.default == argparse.SUPPRESS:
            return action.help
        if "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def make_parser(name: str, description: str) -> argparse.ArgumentParser:
    """The options every experiment has: ``--out``, ``--quick``, ``--plot-only``, ``--workers``."""
    parser = argparse.ArgumentParser(
        prog=f"python -m experiments.{name}",
        description=description,
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=Path("runs") / name, help="output folder")
    parser.add_argument("--quick", action="store_true", help="a reduced smoke run that takes seconds")
    parser.add_argument(
        "--plot-only", action="store_true", help="redraw figures and report from saved results, no training"
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="parallel training processes (default: all cores)"
    )
    parser.add_argument("--data-seed", type=int, default=0, help="seed of the train/validation split")
    return parser


def log(message: str) -> None:
    """A progress line on stderr with the seconds since start."""
    print(f"[{time.perf_counter() - _START:6.1f}s] {message}", file=sys.stderr, flush=True)


@dataclass
class Split:
    """The official test set and a stratified train/validation split of the official training set.

    ``X_*`` are float32 rows (normalised as asked), ``images_*`` the untouched uint8 28x28 images,
    ``y_*`` int64 labels. ``scaler`` holds the per-pixel statistics, fitted on the train part only.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    images_train: np.ndarray
    images_val: np.ndarray
    images_test: np.ndarray
    normalisation: str
    scaler: Standardizer | None


@functools.lru_cache(maxsize=4)
def split_data(val_size: int = 10_000, seed: int = 0, normalisation: str = "standardise") -> Split:
    """Load Fashion-MNIST, split the 60000 training images stratified into train / validation
    (``val_size`` of them, seeded), and normalise: ``"raw"`` pixels in [0, 1], ``"centre"``
    (subtract the per-pixel training mean) or ``"standardise"`` (also divide by the per-pixel
    training std). Cached per process, so parallel workers load once each."""
    (images, labels), (images_test, labels_test) = load_fashion_mnist()
    labels, labels_test = labels.astype(np.int64), labels_test.astype(np.int64)
    train_idx, val_idx = stratified_split(labels, val_size, rng=seed)
    X_train, X_val = scale_pixels(images[train_idx]), scale_pixels(images[val_idx])
    X_test = scale_pixels(images_test)
    scaler = None
    if normalisation != "raw":
        if normalisation not in ("centre", "standardise"):
            raise ValueError(f"unknown normalisation {normalisation!r}")
        scaler = Standardizer(with_std=normalisation == "standardise").fit(X_train)
        X_train, X_val, X_test = (scaler.transform(a) for a in (X_train, X_val, X_test))
    return Split(
        X_train,
        labels[train_idx],
        X_val,
        labels[val_idx],
        X_test,
        labels_test,
        images[train_idx],
        images[val_idx],
        images_test,
        normalisation,
        scaler,
    )


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Atomic strict JSON (NumPy scalars and arrays converted, NaN/inf as null)."""
    write_json_atomic(path, obj)


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_text_atomic(path, text)


def fmt(value: Any, digits: int = 4) -> str:
    """A number for a table: floats rounded, None as a dash."""
    if value is None:
        return "-"
    if isinstance(value, (float, np.floating)):
        return f"{value:.{digits}f}" if math.isfinite(value) else str(value)
    return str(value)


def md_table(headers: list[str], rows: list[list[Any]], digits: int = 4) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(fmt(v, digits) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def class_counts(y_train: np.ndarray, y_val: np.ndarray, y_test: np.ndarray) -> list[list[Any]]:
    """Rows ``[class, train, validation, test]`` of per-class example counts, and a total row."""
    parts = [np.bincount(y, minlength=10) for y in (y_train, y_val, y_test)]
    rows = [[CLASS_NAMES[k], *(int(p[k]) for p in parts)] for k in range(10)]
    rows.append(["total", *(int(p.sum()) for p in parts)])
    return rows


def run_and_plot(args: argparse.Namespace, run, plot, summarise, *, name: str, resume_hint: str) -> dict:
    """The shared end of every experiment's ``main``: train (unless ``--plot-only``), then draw
    the figures and report from the saved files and print a summary table.

    Ctrl-C (or SIGTERM inside ``sigterm_as_interrupt``) while training exits with code 130 and
    ``resume_hint``; saved runs of other settings in ``--out`` give a one-line hint, not a traceback.
    """
    if not args.plot_only:
        try:
            run(args)
        except KeyboardInterrupt:
            log(f"{name}: interrupted; {resume_hint}")
            raise SystemExit(130) from None
        except ValueError as err:
            if "already holds results" not in str(err):
                raise
            sys.exit(f"{err}\n\n{args.out} holds runs of other settings: delete it, or pass another --out")
    metrics = plot(args.out)
    log(f"{name}: figures, metrics.json and report.md in {args.out}")
    print(summarise(metrics))
    return metrics
