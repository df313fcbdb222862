"""Smoke tests of the Keras-style experiments (multiclass, binary) on the real Fashion-MNIST files.

Each experiment runs once with --quick into a temporary folder (module-scoped fixture); the tests
then check its figures, metrics and report, redraw them with --plot-only without training, and
call --help in a fresh interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from experiments import binary, multiclass
from minidl.callbacks import read_checkpoint_info
from minidl.metrics import mcnemar

ROOT = Path(__file__).resolve().parents[1]

EXPERIMENTS = {
    "multiclass": (multiclass, ("curves.png", "confusion.png", "confused_pairs.png"), 0.5),
    "binary": (
        binary,
        (
            "binary_curves.png",
            "binary_confusion.png",
            "roc.png",
            "comparison.png",
            "errors_binary.png",
            "errors_binarised.png",
        ),
        0.9,
    ),
}


@pytest.fixture(scope="module", params=sorted(EXPERIMENTS))
def quick_run(request, tmp_path_factory, fashion_mnist_dir):
    """(name, module, figures, min_accuracy, out_dir) of one --quick run."""
    name = request.param
    module, figures, min_accuracy = EXPERIMENTS[name]
    out = tmp_path_factory.mktemp(name)
    module.main(["--quick", "--out", str(out)])
    return name, module, figures, min_accuracy, out


def outputs(out: Path, figures: tuple[str, ...]) -> list[Path]:
    return [out / f for f in (*figures, "metrics.json", "report.md")]


def test_quick_run_writes_figures_metrics_and_report(quick_run):
    name, _, figures, min_accuracy, out = quick_run
    for figure in figures:
        image = matplotlib.image.imread(out / figure)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100, figure
        assert image[..., :3].std() > 0, f"{figure} is blank"
    metrics = json.loads((out / "metrics.json").read_text())
    assert min_accuracy < metrics["test_accuracy"] <= 1.0
    report = (out / "report.md").read_text()
    for figure in figures:
        assert f"]({figure})" in report, f"report.md does not show {figure}"
    assert f"{metrics['test_accuracy']:.2%}" in report  # this run's number, not a canned text
    assert "Quick smoke run" in report


def test_checkpoint_holds_the_reported_best_epoch(quick_run):
    name, _, _, _, out = quick_run
    metrics = json.loads((out / "metrics.json").read_text())
    if name == "multiclass":
        checkpoint, best = out / "best.npz", metrics["best_epoch"]
    else:
        checkpoint, best = out / "checkpoints" / "binary-seed0.npz", metrics["binary"]["best_epoch"]
    info = read_checkpoint_info(checkpoint)
    assert info["best_epoch"] == info["epoch"] == best
    assert info["monitor"] == multiclass.FULL.monitor


def test_plot_only_redraws_without_training(quick_run, monkeypatch):
    _, module, figures, _, out = quick_run
    files = outputs(out, figures)
    before = json.loads((out / "metrics.json").read_text())
    for f in files:
        os.utime(f, (0, 0))  # so that a rewrite is visible whatever the clock's resolution

    def no_training(*args, **kwargs):
        raise AssertionError("--plot-only must not train")

    monkeypatch.setattr(module, "run", no_training)
    monkeypatch.setattr(multiclass, "fit", no_training)
    module.main(["--plot-only", "--out", str(out)])
    for f in files:
        assert f.stat().st_mtime > 0, f"{f.name} was not rewritten"
    assert json.loads((out / "metrics.json").read_text()) == before


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_plot_only_without_results_says_what_to_run(name, tmp_path):
    module = EXPERIMENTS[name][0]
    with pytest.raises(SystemExit, match=f"python -m experiments.{name}"):
        module.main(["--plot-only", "--out", str(tmp_path)])


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_help_exits_0(name):
    done = subprocess.run(
        [sys.executable, "-m", f"experiments.{name}", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "--quick" in done.stdout and "--plot-only" in done.stdout


def test_pooled_test_with_one_seed_is_mcnemars_exact_test():
    a, b = [1, 1, 1, 1, 0, 1], [0, 0, 0, 1, 1, 1]
    _, p, n_b, n_c = mcnemar(a, b)  # b + c = 4 < 25: the exact binomial test
    result = binary.pooled_sign_flip_test(np.array([a], bool), np.array([b], bool))
    assert result == {"p_value": p, "difference": n_b - n_c, "images": n_b + n_c}


def test_pooled_test_over_seeds_by_hand():
    # Per image, seeds right with A minus seeds right with B: k = (2, 1, 1), sum 4. Of the 8 sign
    # flips of (2, 1, 1) two reach |sum| >= 4, so p = 2/8.
    a = np.array([[1, 1, 1], [1, 1, 1]], bool)
    b = np.array([[0, 0, 0], [0, 1, 1]], bool)
    assert binary.pooled_sign_flip_test(a, b) == {"p_value": 0.25, "difference": 4, "images": 3}
    assert binary.pooled_sign_flip_test(b, a)["p_value"] == 0.25
    assert binary.pooled_sign_flip_test(a, a) == {"p_value": 1.0, "difference": 0, "images": 0}
