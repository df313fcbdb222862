"""experiments.cnn's summarise and report sentences on small synthetic records (no training)."""

from __future__ import annotations

import numpy as np
import pytest

from experiments import cnn


def _run(val_loss, val_acc, epochs=3):
    history = {
        "loss": [2.4] + [1.0 / (e + 1) for e in range(epochs)],
        "accuracy": [0.1] + [0.8 + 0.01 * e for e in range(epochs)],
        "val_loss": [2.4, *val_loss],
        "val_accuracy": [0.1, *val_acc],
    }
    best = int(np.argmin(history["val_loss"]))
    return {
        "history": history,
        "best_epoch": best,
        "epoch_wall": [2.0] * epochs,
        "epoch_cpu": [1.0] * epochs,
        "n_parameters": 10,
        "summary": "a model",
        "normalisation": {"mean": 0.3, "std": 0.35},
    }


@pytest.fixture
def results():
    y = np.arange(100) % 10
    pred_mlp = y.copy()
    pred_mlp[:20] = (y[:20] + 1) % 10  # 20 errors
    pred_cnn = y.copy()
    pred_cnn[:5] = (y[:5] + 1) % 10  # 5 errors, all also made by the MLP
    runs = {
        "cnn-seed0": _run([0.5, 0.4, 0.45], [0.85, 0.9, 0.89]),
        "mlp-seed0": _run([0.6, 0.55, 0.58], [0.8, 0.82, 0.81]),
        "mlp-seed1": _run([0.6, 0.5, 0.52], [0.8, 0.84, 0.83]),
    }
    refits = {"refit-cnn": _run([], [], epochs=2), "refit-mlp": _run([], [], epochs=2)}
    filters = np.zeros((32, 1, 3, 3))
    filters[4, 0] = [[1, 2, 1], [0, 0, 0], [-1, -2, -1]]  # a horizontal-edge detector, bright top
    filters[9, 0] = -np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]])  # vertical, bright right
    return {
        "runs": runs,
        "refits": refits,
        "chosen_seed": {"cnn": 0, "mlp": 1},
        "y_test": y.tolist(),
        "pred": {"mlp": pred_mlp.tolist(), "cnn": pred_cnn.tolist()},
        "example_label": 9,
        "filters": filters.tolist(),
        "class_counts": [[5] * 10, [2] * 10, [10] * 10],
        "workers": 2,
        "cores": 2,
        "load": 1.0,
        "train_seconds": 10.0,
        "n_refit": 70,
        "quick": False,
        "settings": cnn.FULL,
        "seconds": 30.0,
    }


def test_summarise_scores_the_refit_models_and_compares_them(results):
    M = cnn.summarise(results)
    assert M["test_accuracy"] == M["models"]["cnn"]["test_accuracy"] == 0.95
    assert M["models"]["mlp"]["test_accuracy"] == 0.80
    assert M["models"]["mlp"]["chosen_seed"] == 1 and M["models"]["mlp"]["seeds"] == 2
    assert M["models"]["mlp"]["val_accuracy"]["chosen"] == 0.84  # seed 1 at its best epoch (2)
    assert M["models"]["mlp"]["val_accuracy"]["mean"] == pytest.approx((0.82 + 0.84) / 2)
    assert M["models"]["cnn"]["refit_epochs"] == 2
    assert M["mcnemar"]["only_cnn_right"] == 15 and M["mcnemar"]["only_mlp_right"] == 0
    assert M["mcnemar"]["p_value"] < 0.001  # exact test: 15 vs 0
    assert M["edge_filters"]["horizontal"] == {
        "filter": 5,
        "cosine": pytest.approx(1.0),
        "bright": "top",
        "dark": "bottom",
    }
    assert (
        M["edge_filters"]["vertical"]["filter"] == 10 and M["edge_filters"]["vertical"]["bright"] == "right"
    )
    assert np.asarray(M["confusion_matrix"]["cnn"]).trace() == 95


def test_report_sentences_follow_the_numbers(results):
    M = cnn.summarise(results)
    assert cnn.answer(M).startswith("the CNN is better")
    assert "exact binomial test" in cnn.significance(M)
    results["pred"]["cnn"], results["pred"]["mlp"] = results["pred"]["mlp"], results["pred"]["cnn"]
    assert cnn.answer(cnn.summarise(results)).startswith("the MLP is better")
    values = cnn.report(M)
    assert "| MLP, mean ± std over 2 seeds |" in values["score_table"]
