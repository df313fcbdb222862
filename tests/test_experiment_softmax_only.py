"""The main job end to end on the real data, in its --quick form."""

from __future__ import annotations

import json
import subprocess
import sys

import matplotlib.image
import pytest

from experiments import softmax_only
from minidl.sweep import run_sweep

pytestmark = pytest.mark.slow

FIGURES = [
    "data_examples", "normalisation", "lr_sweep", "curves_gd", "curves_mb",
    "batch_vs_minibatch", "confusion_matrix", "per_class", "weights",
]  # fmt: skip


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, fashion_mnist_dir):
    out = tmp_path_factory.mktemp("softmax_only")
    metrics = softmax_only.main(["--quick", "--out", str(out)])
    return out, metrics


def test_quick_run_writes_figures_metrics_and_report(quick_run):
    out, metrics = quick_run
    for name in FIGURES:
        image = matplotlib.image.imread(out / f"{name}.png")
        assert image.shape[0] > 200 and image.shape[1] > 300, name
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert 0.6 < saved["test_accuracy"] <= 1.0  # well above chance even on the small quick subset
    assert 2.2 < saved["initial_loss"] < 2.6  # ln 10 plus the variance of the initial logits
    assert set(saved["per_class"]["Shirt"]) >= {"precision", "recall", "f1"}
    assert len(saved["histories"]["gd"]) == 2 and saved["histories"]["gd"][0]["loss"][0] > 2
    report = (out / "report.md").read_text()
    for name in FIGURES:
        assert f"({name}.png)" in report
    assert "test accuracy" in report and "ln(10)" in report
    assert not list(out.rglob(".tmp*")) and not list(out.rglob("*.tmp"))  # atomic writes only


def test_plot_only_redraws_from_saved_results(quick_run):
    out, metrics = quick_run
    (out / "weights.png").unlink()
    again = softmax_only.main(["--quick", "--plot-only", "--out", str(out)])
    assert (out / "weights.png").exists()
    assert again["test_accuracy"] == metrics["test_accuracy"]


def test_plot_only_without_results_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="without --plot-only"):
        softmax_only.main(["--plot-only", "--out", str(tmp_path)])


def test_parallel_runs_equal_serial_runs(tmp_path, fashion_mnist_dir):
    task = {
        "normalisation": "centre", "lr": 0.05, "batch_size": 64, "epochs": 2, "seed": 3, "patience": 0,
        "min_delta": 1e-4, "n_train": 1000, "n_val": 500, "data_seed": 0,
    }  # fmt: skip
    tasks = {"a": task, "b": {**task, "seed": 4}}
    serial = run_sweep(softmax_only.train_run, tasks, tmp_path / "serial", max_workers=1, progress=False)
    pooled = run_sweep(softmax_only.train_run, tasks, tmp_path / "pool", max_workers=2, progress=False)
    for key in tasks:
        assert serial.results[key]["history"] == pooled.results[key]["history"]


def test_help():
    result = subprocess.run(
        [sys.executable, "-m", "experiments.softmax_only", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--quick" in result.stdout and "--plot-only" in result.stdout and "--out" in result.stdout
