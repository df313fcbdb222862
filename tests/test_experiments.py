"""Every experiment end to end on the real data, in its --quick form, through its ``main``."""

from __future__ import annotations

import importlib
import json
import re

import matplotlib.image
import pytest

pytestmark = pytest.mark.slow

EXPERIMENTS = ["softmax_only", "hidden_layer", "hyperparams", "multiclass", "binary", "cnn"]


def without_timings(value):
    """``value`` with every key that holds a measured time (``*seconds*``, ``epoch_time``) left out."""
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if "seconds" not in k and k != "epoch_time"}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


@pytest.fixture(scope="module", params=EXPERIMENTS)
def quick_run(request, tmp_path_factory, fashion_mnist_dir):
    module = importlib.import_module(f"experiments.{request.param}")
    out = tmp_path_factory.mktemp(request.param)
    metrics = module.main(["--quick", "--out", str(out), "--workers", "2"])
    return module, out, metrics


def test_quick_run_writes_figures_metrics_and_report(quick_run):
    module, out, metrics = quick_run
    for name in module.FIGURES:
        image = matplotlib.image.imread(out / f"{name}.png")
        assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 300, name
    saved = json.loads((out / "metrics.json").read_text())
    assert 0.1 < saved["test_accuracy"] <= 1.0
    assert saved["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    report = (out / "report.md").read_text()
    assert "$" not in report
    for name in module.FIGURES:
        assert re.search(rf"\]\({name}\.png\)", report), name
    assert not list(out.rglob("*.tmp")), "a temporary file was left behind"


def test_plot_only_redraws_the_same_report(quick_run):
    module, out, _ = quick_run
    report = (out / "report.md").read_text()
    (out / "report.md").unlink()
    for name in module.FIGURES:
        (out / f"{name}.png").unlink()
    module.main(["--quick", "--plot-only", "--out", str(out)])
    assert (out / "report.md").read_text() == report
    assert all((out / f"{name}.png").exists() for name in module.FIGURES)


def test_plot_only_without_results_is_a_clear_error(quick_run, tmp_path):
    module = quick_run[0]
    with pytest.raises(SystemExit, match="without --plot-only"):
        module.main(["--plot-only", "--out", str(tmp_path)])


def test_help_in_process(quick_run, capsys):
    module = quick_run[0]
    with pytest.raises(SystemExit) as exit_:
        module.main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert all(flag in text for flag in ("--quick", "--out", "--plot-only", "--workers", "--scheduler"))


@pytest.mark.parametrize("quick_run", ["softmax_only"], indirect=True)
def test_results_do_not_depend_on_the_number_of_workers(quick_run, tmp_path):
    """One invariant, tested once, on the main job (the kit runs every experiment the same way):
    every training runs in a worker process with one BLAS thread, whatever the number of workers."""
    module, out, _ = quick_run
    module.main(["--quick", "--out", str(tmp_path), "--workers", "1"])
    one = json.loads((tmp_path / "metrics.json").read_text())
    two = json.loads((out / "metrics.json").read_text())
    assert without_timings(one) == without_timings(two)
    assert not list(tmp_path.rglob("*.tmp"))
