"""``experiments.hidden_layer``'s summarise and report on small synthetic run records (no training)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from experiments import hidden_layer, study


def record(val: list[float], train: list[float] | None = None, **extra) -> dict:
    """A run record as ``study.record`` makes it: epoch 0 first, then one entry per epoch."""
    train = train or [v + 0.02 for v in val]
    history = {
        "loss": [2.3] + [1.0 / e for e in range(1, len(val))],
        "accuracy": train,
        "val_loss": [2.3] + [1.1 / e for e in range(1, len(val))],
        "val_accuracy": val,
    }
    return {"history": history, "epoch_time": [0.5] * (len(val) - 1), "steps_per_epoch": 10,
            "best_epoch": int(np.argmax(val[1:])) + 1, "stop_reason": None, "diverged": False,
            "n_parameters": 100, "moved": 1.5, **extra}  # fmt: skip


def confusion(correct: list[int]) -> list[list[int]]:
    """A 10-class confusion matrix with ``correct[k]`` of 1000 right in class k, the rest taken for k+1."""
    cm = np.zeros((10, 10), dtype=int)
    for k, c in enumerate(correct):
        cm[k, k], cm[k, (k + 1) % 10] = c, 1000 - c
    return cm.tolist()


def results(softmax: dict) -> dict:
    settings = {**hidden_layer.QUICK, "hidden": [10, 50], "seeds": [0, 1], "gd_hidden": 10}
    refit = {
        "0": record([0.1, 0.5, 0.6], test_accuracy=0.92, confusion_matrix=confusion([920] * 10)),
        "1": record([0.1, 0.5, 0.6], test_accuracy=0.90, confusion_matrix=confusion([900] * 10)),
    }
    return {
        "sweep": {"10": [record([0.1, 0.70, 0.72]), record([0.1, 0.71, 0.74])],
                  "50": [record([0.1, 0.80, 0.79]), record([0.1, 0.82, 0.85])]},
        "fullbatch": [record([0.1, 0.3, 0.5, 0.6, 0.65]), record([0.1, 0.3, 0.5, 0.6, 0.67])],
        "best_hidden": 50,
        "recipes": {"as above": record([0.1, 0.83, 0.86, 0.84]),
                    "1000 units, dropout 0.4": record([0.1, 0.8, 0.81])},
        "chosen_recipe": "as above",
        "refit": refit,
        "no_refit": {"test_accuracy": 0.88},
        "softmax": softmax,
        "run": {"data_seed": 0, "load": [1.0, 2.0], "train_seconds": 12.0, "workers": 2},
        "settings": settings, "quick": True, "seconds": 30.0,
    }  # fmt: skip


TRAINED_HERE = {"source": "trained here", "test_accuracy": 0.84, "confusion_matrix": confusion([840] * 10)}


def test_summarise_takes_the_mean_of_the_refits_and_pools_their_predictions():
    m = hidden_layer.summarise(results(TRAINED_HERE))
    assert m["test_accuracy"] == pytest.approx(0.91)
    assert m["test_accuracy_std"] == pytest.approx(0.01)
    assert m["test_accuracy_per_seed"] == {"0": 0.92, "1": 0.90}
    assert m["gain"] == pytest.approx(0.03)  # over the 0.88 of the procedure without a refit
    assert m["validation_accuracy"] == 0.86 and m["refit_epochs"] == 2  # the chosen candidate's best epoch
    assert np.sum(m["confusion_matrix"]) == 20000
    assert m["per_class"]["Trouser"]["recall"] == pytest.approx(0.91)  # (920 + 900) / 2000
    assert m["per_class"]["Trouser"]["precision"] == pytest.approx(0.91)  # every class looks the same
    assert m["softmax"]["f1"] == pytest.approx([0.84] * 10)  # from its confusion matrix
    # each run scores its best validation epoch: n = 10 gets 0.72 and 0.74
    assert m["val_accuracy"][0] == [0.72, 0.74] and m["train_acc"][0] == [0.74, 0.76]
    assert m["mb"]["updates"] == 20 and m["gd"]["updates"] == 40
    assert m["gd"]["final"] == pytest.approx(0.66) and m["mb"]["epoch1"] == pytest.approx(0.705)
    json.dumps(m)  # plain numbers, strings and lists


def test_report_fills_every_placeholder_and_says_what_the_final_model_is():
    m = json.loads(json.dumps(hidden_layer.summarise(results(TRAINED_HERE))))  # as --plot-only reads it
    text = study.fill(hidden_layer.NAME, hidden_layer.report(m))
    assert "$" not in text
    assert "0.9100 ± 0.0100" in text  # the mean of the refits
    assert "above 0.900 by 0.0100, within twice the spread between seeds" in text
    assert "trained here" in text and "+0.0700" in text  # 0.91 against the softmax model's 0.84
    for figure in hidden_layer.FIGURES:
        assert f"]({figure}.png)" in text


def test_softmax_metrics_are_read_in_their_one_layout(tmp_path):
    folder = tmp_path / "softmax_only"
    folder.mkdir()
    assert hidden_layer.read_softmax(folder / "metrics.json") is None
    per_class = {c: {"f1": 0.5 + k / 100, "recall": 0.1} for k, c in enumerate(study.CLASS_NAMES)}
    (folder / "metrics.json").write_text(json.dumps({"test_accuracy": 0.84, "per_class": per_class}))
    read = hidden_layer.read_softmax(folder / "metrics.json")
    assert read["test_accuracy"] == 0.84 and read["f1"] == [0.5 + k / 100 for k in range(10)]
    (folder / "metrics.json").write_text(json.dumps({"test_accuracy": 0.83}))
    assert hidden_layer.read_softmax(folder / "metrics.json")["f1"] is None
    m = hidden_layer.summarise(results(hidden_layer.read_softmax(folder / "metrics.json")))
    text = study.fill(hidden_layer.NAME, hidden_layer.report(m))
    assert "no per-class F1" in text and "0.8300" in text


def test_sentences_that_depend_on_the_result():
    val = np.array([[0.80, 0.82], [0.83, 0.84]])  # (n, seeds): a lead of 0.025, a spread of 0.01
    assert "more than" in hidden_layer.tie_sentence(val, [10, 50], 50)
    val = np.array([[0.80, 0.84], [0.815, 0.835]])  # a lead of 0.005, a spread of 0.02
    assert "a tie within noise" in hidden_layer.tie_sentence(val, [10, 50], 50)
    assert hidden_layer.target_sentence(0.905, 0.001).startswith("above 0.900 by 0.0050, more than")
    assert hidden_layer.target_sentence(0.899, 0.002).startswith("below 0.900 by 0.0010, within")
