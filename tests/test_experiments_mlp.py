"""Smoke tests of the hyper-parameter experiment, in ``--quick`` mode on the real data.

``experiments.hyperparams`` (all five parts) runs once into a temporary folder; the tests then
check what a reader gets: readable figures, the keys and sane values of ``metrics.json``, a report
that embeds its figures, one part run alone, and a diverging learning rate reported instead of raised.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import matplotlib.image as mpimg
import pytest

from experiments import hyperparams

pytestmark = pytest.mark.slow

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
def hyper_run(tmp_path_factory, fashion_mnist_dir):
    out = tmp_path_factory.mktemp("hyperparams")
    metrics = hyperparams.main(["--quick", "--out", str(out)])
    return out, metrics


# ---- hyperparams ---------------------------------------------------------------------------------


def test_plot_only_without_results_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no results_<part>.json"):
        hyperparams.main(["--out", str(tmp_path), "--plot-only"])


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


@pytest.mark.parametrize("name", ["hyperparams"])
def test_help_exits_zero(name):
    done = subprocess.run(
        [sys.executable, "-m", f"experiments.{name}", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "--quick" in done.stdout and "--plot-only" in done.stdout
