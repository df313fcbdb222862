"""Smoke tests of the multi-layer perceptron experiments, in ``--quick`` mode on the real data.

``experiments.hidden_layer`` and ``experiments.hyperparams`` (all five parts) run once each into a
temporary folder; the tests then check what a reader gets: readable figures, the keys and sane
values of ``metrics.json``, a report that embeds its figures, ``--plot-only`` redrawing without
training, one part run alone, and a diverging learning rate reported instead of raised.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import matplotlib.image as mpimg
import pytest

from experiments import hidden_layer, hyperparams
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
HYPER_FIGURES = [
    "a_architectures.png",
    "b_batch_size.png",
    "c_learning_rate.png",
    "d_data_size.png",
    "d_misclassified.png",
    "d_weights_small.png",
    "d_weights_large.png",
]


def sklearn_installed() -> bool:
    try:
        import sklearn  # noqa: F401
    except ImportError:
        return False
    return True


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


@pytest.fixture(scope="module")
def hyper_run(tmp_path_factory, fashion_mnist_dir):
    out = tmp_path_factory.mktemp("hyperparams")
    metrics = hyperparams.main(["--quick", "--out", str(out)])
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
    with pytest.raises(FileNotFoundError, match="no results_<part>.json"):
        hyperparams.main(["--out", str(tmp_path), "--plot-only"])


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


# ---- hyperparams ---------------------------------------------------------------------------------


def test_hyperparams_all_parts(hyper_run):
    out, returned = hyper_run
    check_figures(out, HYPER_FIGURES)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics == returned
    assert metrics["parts"] == list(hyperparams.PARTS)
    assert isinstance(metrics["test_accuracy"], float) and 0.5 < metrics["test_accuracy"] <= 1.0
    assert "part d" in metrics["final_model"]

    a = metrics["a"]
    assert tuple(a["best_arch"]) in hyperparams.QUICK.archs
    assert sorted(v["rank"] for v in a["cv"].values())[0] == 1
    assert a["cv"][hyperparams.arch_name(a["best_arch"])]["rank"] == 1
    report = (out / "report.md").read_text()
    assert "mean_test_score" in report and "rank" in report

    b = metrics["b"]
    assert set(b) == {hyperparams.batch_name(x) for x in hyperparams.QUICK.batch_sizes}
    assert b["full batch"]["converged"] is False  # 4 updates cannot get there; shown, not hidden
    assert "Not converged" in report

    d = metrics["d"]["by_size"]
    assert [m["n_train"] for m in d.values()] == list(hyperparams.QUICK.sizes)
    assert all(0.0 <= m["train_error"] <= 1.0 and 0.0 <= m["test_error"] <= 1.0 for m in d.values())


def test_divergence_is_reported_not_raised(hyper_run):
    out, metrics = hyper_run
    c = metrics["c"]
    assert c["10"]["diverged"] and c["10"]["n_diverged"] == len(hyperparams.QUICK.seeds)
    assert "diverged" in c["10"]["stop_reason"]
    assert not c["0.004"]["diverged"]
    report = (out / "report.md").read_text()
    assert "Diverged: 10" in report


def test_svm_reference(hyper_run):
    if not sklearn_installed():
        pytest.skip("scikit-learn (the optional extra `baselines`) is not installed")
    out, metrics = hyper_run
    e = metrics["e"]
    assert e["skipped"] is None
    assert 0.0 <= e["svm_train_error"] <= e["svm_test_error"] < 0.9
    check_figures(out, ["e_svm.png"])
    assert "outside reference" in (out / "report.md").read_text()


def test_svm_part_is_skipped_with_a_note_without_sklearn(tmp_path, monkeypatch, fashion_mnist_dir):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # `import sklearn` now raises ImportError
    metrics = hyperparams.main(["--quick", "--part", "e", "--workers", "1", "--out", str(tmp_path)])
    assert "scikit-learn is not installed" in metrics["e"]["skipped"]
    assert not (tmp_path / "e_svm.png").exists()
    assert "The SVM was skipped" in (tmp_path / "report.md").read_text()


def test_one_part_alone(tmp_path, fashion_mnist_dir):
    metrics = hyperparams.main(["--quick", "--part", "c", "--workers", "1", "--out", str(tmp_path)])
    assert metrics["parts"] == ["c"]
    assert sorted(p.name for p in tmp_path.glob("results_*.json")) == ["results_c.json"]
    check_figures(tmp_path, ["c_learning_rate.png"])
    report = (tmp_path / "report.md").read_text()
    assert "part a has not been run" in report
    assert "## a. (not run)" in report
    assert metrics["c"]["10"]["diverged"]
    assert 0.0 < metrics["test_accuracy"] <= 1.0


@pytest.mark.parametrize("name", ["hidden_layer", "hyperparams"])
def test_help_exits_zero(name):
    done = subprocess.run(
        [sys.executable, "-m", f"experiments.{name}", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "--quick" in done.stdout and "--plot-only" in done.stdout
