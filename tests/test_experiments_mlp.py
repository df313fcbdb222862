"""Smoke tests of the hidden-layer experiment, in ``--quick`` mode on the real data.

``experiments.hidden_layer`` runs once into a temporary folder; the tests then check what a reader
gets: readable figures, the keys and sane values of ``metrics.json``, a report that embeds its
figures, and ``--plot-only`` redrawing without training.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import matplotlib.image as mpimg
import pytest

from experiments import hidden_layer
from experiments.hidden_layer import read_softmax_reference

pytestmark = pytest.mark.slow

HIDDEN_FIGURES = [
    "val_curves.png",
    "curves_per_n.png",
    "accuracy_vs_hidden.png",
    "batch_vs_minibatch.png",
    "confusion_matrix.png",
    "final_curves.png",
    "compare_softmax.png",
    "hidden_weights.png",
]


def check_figures(out: Path, names: list[str]) -> None:
    for name in names:
        image = mpimg.imread(out / name)
        assert image.ndim == 3 and min(image.shape[:2]) > 100, f"{name} has shape {image.shape}"
        assert image.std() > 0.01, f"{name} is blank"
    report = (out / "report.md").read_text()
    for name in names:
        assert f"]({name})" in report, f"report.md does not embed {name}"


@pytest.fixture(scope="module")
def hidden_run(tmp_path_factory, fashion_mnist_dir):
    out = tmp_path_factory.mktemp("hidden_layer")
    metrics = hidden_layer.main(["--quick", "--out", str(out)])
    return out, metrics


# ---- hidden_layer ------------------------------------------------------------------------------


def test_hidden_layer_writes_figures_metrics_and_report(hidden_run):
    out, returned = hidden_run
    check_figures(out, HIDDEN_FIGURES)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics == returned
    assert isinstance(metrics["test_accuracy"], float)
    assert 0.5 < metrics["test_accuracy"] <= 1.0  # quick: 2000 images, 4 epochs; chance is 0.1
    assert metrics["chosen_hidden"] in hidden_layer.QUICK.hidden
    assert metrics["hidden"] == list(hidden_layer.QUICK.hidden)
    assert set(metrics["per_class"]) == set(hidden_layer.CLASS_NAMES)
    for values in metrics["per_class"].values():
        assert all(0.0 <= values[k] <= 1.0 for k in ("precision", "recall", "f1"))
    assert sum(map(sum, metrics["confusion_matrix"])) == 10_000
    assert 0.5 < metrics["softmax_test_accuracy"] <= 1.0
    report = (out / "report.md").read_text()
    assert f"{metrics['test_accuracy']:.4f}" in report
    assert (out / "final_model.npz").is_file()


def test_hidden_layer_plot_only_redraws_without_training(hidden_run, monkeypatch):
    out, metrics = hidden_run
    for name in [*HIDDEN_FIGURES, "report.md", "metrics.json"]:
        (out / name).unlink()

    def no_training(args):
        raise AssertionError("--plot-only must not train")

    monkeypatch.setattr(hidden_layer, "run", no_training)
    assert hidden_layer.main(["--quick", "--out", str(out), "--plot-only"]) == metrics
    check_figures(out, HIDDEN_FIGURES)


def test_plot_only_without_results_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="results.json is missing"):
        hidden_layer.main(["--out", str(tmp_path), "--plot-only"])


def test_softmax_reference_is_read_in_each_layout(tmp_path):
    names = hidden_layer.CLASS_NAMES
    lists = {"test_accuracy": 0.84, "precision": [0.8] * 10, "recall": [0.7] * 10, "f1": [0.75] * 10}
    (tmp_path / "lists.json").write_text(json.dumps(lists))
    report = {c: {"precision": 0.8, "recall": 0.7, "f1-score": 0.75, "support": 1000} for c in names}
    (tmp_path / "report.json").write_text(
        json.dumps({"test_accuracy": 0.84, "classification_report": report})
    )
    per_class = {c: {"precision": 0.8, "recall": 0.7, "f1": 0.75, "accuracy": 0.7} for c in names}
    (tmp_path / "per_class.json").write_text(json.dumps({"test_accuracy": 0.84, "per_class": per_class}))
    (tmp_path / "partial.json").write_text(json.dumps({"test_accuracy": 0.84, "precision": [0.8] * 10}))
    for name in ("lists.json", "report.json", "per_class.json"):
        ref = read_softmax_reference(tmp_path / name)
        assert ref["test_accuracy"] == 0.84 and ref["f1"] == [0.75] * 10 and ref["recall"] == [0.7] * 10
    assert read_softmax_reference(tmp_path / "partial.json") is None
    assert read_softmax_reference(tmp_path / "absent.json") is None


@pytest.mark.parametrize("name", ["hidden_layer"])
def test_help_exits_zero(name):
    done = subprocess.run(
        [sys.executable, "-m", f"experiments.{name}", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "--quick" in done.stdout and "--plot-only" in done.stdout
