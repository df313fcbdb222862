"""experiments.cnn end to end on the real data, in its --quick form, and its scoring-chunk switch."""

from __future__ import annotations

import json
import subprocess
import sys

import matplotlib.image
import numpy as np
import pytest

from experiments import cnn
from minidl.callbacks import read_checkpoint_info

FIGURES = ["curves", "confusion", "per_class", "filters", "feature_maps"]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, fashion_mnist_dir):
    out = tmp_path_factory.mktemp("cnn")
    metrics = cnn.main(["--quick", "--out", str(out)])
    return out, metrics


@pytest.mark.slow
def test_quick_run_writes_figures_metrics_and_report(quick_run):
    out, metrics = quick_run
    for name in FIGURES:
        image = matplotlib.image.imread(out / f"{name}.png")
        assert image.shape[0] > 300 and image.shape[1] > 500, name
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert saved["test_accuracy"] == saved["models"]["cnn"]["test_accuracy"]["chosen"]  # the CNN is final
    assert 0.6 < saved["test_accuracy"] <= 1.0  # well above chance even on the quick subset
    mlp, conv = saved["models"]["mlp"], saved["models"]["cnn"]
    assert (mlp["n_parameters"], conv["n_parameters"]) == (407_050, 421_642)
    assert len(mlp["seeds"]) == 2 and len(conv["seeds"]) == 1
    for model in (mlp, conv):
        for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy"):
            assert 0 < model[key]["chosen"] < 3, key
        assert model["best_epoch"] and all(1 <= e <= 2 for e in model["best_epoch"])
        assert 0 < model["seconds_per_epoch"]["epoch_cpu"] and "Total parameters" in model["summary"]
        assert 2.0 < min(model["initial_loss"]) and max(model["initial_loss"]) < 3.5  # near ln 10
    assert np.asarray(saved["confusion_matrix"]["cnn"]).sum() == 10_000
    assert 0 <= saved["mcnemar"]["p_value"] <= 1
    assert saved["run"]["wall_seconds"] > 0 and saved["run"]["cpu_seconds"] > 0

    # the kept weights are the checkpoint's, and the checkpoint knows its epoch
    info = read_checkpoint_info(out / "checkpoints" / "cnn-seed0.npz")
    assert info["best_epoch"] == conv["best_epoch"][0] and info["monitor"] == "val_loss"

    report = (out / "report.md").read_text()
    for name in FIGURES:
        assert f"({name}.png)" in report
    assert "Quick smoke run" in report and f"{saved['test_accuracy']:.4f}" in report
    assert not list(out.rglob(".tmp*")) and not list(out.rglob("*.tmp"))  # atomic writes only


@pytest.mark.slow
def test_plot_only_redraws_from_saved_results(quick_run):
    out, metrics = quick_run
    (out / "filters.png").unlink()
    (out / "report.md").unlink()
    again = cnn.main(["--quick", "--plot-only", "--out", str(out)])
    assert (out / "filters.png").exists() and (out / "report.md").exists()
    assert again["test_accuracy"] == metrics["test_accuracy"]


def test_plot_only_without_results_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="run without --plot-only"):
        cnn.main(["--plot-only", "--out", str(tmp_path)])


def test_help_exits_0_and_lists_the_options():
    result = subprocess.run(
        [sys.executable, "-m", "experiments.cnn", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    for option in ("--out", "--quick", "--plot-only", "--workers", "--epochs"):
        assert option in result.stdout
