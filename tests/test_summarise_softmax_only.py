"""experiments.softmax_only without training: its summary, choices and report on synthetic records."""

from __future__ import annotations

import math

import numpy as np
import pytest

from experiments import softmax_only as so
from experiments import study
from minidl import SGD, Dense, Sequential, SoftmaxCrossEntropy, fit
from minidl.callbacks import Callback

SETTINGS = {**so.QUICK, "gd_lrs": [0.3, 1.0], "mb_lrs": [0.01, 0.03]}


def history(val_loss: list[float], start_loss: float = 2.4) -> dict:
    n = len(val_loss)
    return {"loss": [start_loss] + [v + 0.01 for v in val_loss[1:]], "accuracy": [0.1] + [0.8] * (n - 1),
            "val_loss": val_loss, "val_accuracy": [0.1] + [0.7 + 0.01 * i for i in range(1, n)]}  # fmt: skip


def seed_run(val_loss: list[float], best: int, steps: int, start_loss: float = 2.4) -> dict:
    return {"history": history(val_loss, start_loss), "best_epoch": best, "steps_per_epoch": steps,
            "epoch_time": [0.5] * (len(val_loss) - 1), "stop_reason": None, "diverged": False,
            "mean_sq_input": 0.09, "update_x": [0.0, 1.5, 4.0], "update_loss": [2.3, 1.0, 0.7]}  # fmt: skip


def sweep_run(end_val_loss: float, diverged: bool = False, msq: float = 0.09) -> dict:
    return {"history": history([2.3, 1.0, end_val_loss]), "diverged": diverged, "mean_sq_input": msq}


@pytest.fixture
def results() -> dict:
    sweep = {}
    for norm, ends in {"raw": (1.5, 1.2), "centre": (0.9, 0.6), "standardise": (0.8, 0.1)}.items():
        for lr, end in zip(SETTINGS["gd_lrs"], ends, strict=True):
            # standardise at lr 1 "reaches" 0.1 but diverged: it must count as infinitely bad
            msq = 0.2 if norm == "raw" else 1.0
            sweep[f"sweep-gd-{norm}-lr{lr:g}"] = sweep_run(end, diverged=end == 0.1, msq=msq)
        for lr, end in zip(SETTINGS["mb_lrs"], (0.7, 0.65), strict=True):
            sweep[f"sweep-mb-{norm}-lr{lr:g}"] = sweep_run(end)
    candidates = {
        "final-a": {"lr": 0.1, "decay": 1.0, "weight_decay": 0.0, "val_accuracy": [0.80, 0.83, 0.82],
                    "avg_val_accuracy": [0.82, 0.84, 0.85], "label": "lr 0.1, decay 1, wd 0"},
        "final-b": {"lr": 0.3, "decay": 0.8, "weight_decay": 1e-4, "val_accuracy": [0.81, 0.85, 0.84],
                    "avg_val_accuracy": [0.83, 0.84, 0.85], "label": "lr 0.3, decay 0.8, wd 0.0001"},
    }  # fmt: skip
    y_test = np.repeat(np.arange(10), 10)
    y_pred = y_test.copy()
    y_pred[[0, 1, 2, 60, 61]] = [6, 6, 6, 0, 0]  # 3 T-shirts called shirts, 2 shirts called T-shirts
    return {
        "settings": SETTINGS, "quick": True, "seconds": 12.0, "train_seconds": 20.0,
        "chosen": {"normalisation": "centre", "gd_lr": 1.0, "mb_lr": 0.03, "batch_size": 32},
        "sweep": sweep,
        "gd": [seed_run([2.3, 1.0, 0.8, 0.6], 3, 1), seed_run([2.35, 1.1, 0.7, 0.6], 3, 1, 2.35)],
        "mb": [seed_run([2.3, 0.7, 0.5], 2, 10), seed_run([2.32, 0.6, 0.55], 2, 10, 2.32)],
        "candidates": candidates,
        "final": {**so.choose_final(candidates), "n_refit": 7000, "refit_losses": [0.42, 0.44, 0.41],
                  "y_test": y_test.tolist(), "y_pred": y_pred.tolist()},
        "class_counts": [[500] * 10, [200] * 10, [1000] * 10], "data_seed": 0,
    }  # fmt: skip


def test_final_choice_is_the_best_validation_accuracy_with_fewer_epochs_on_ties():
    c = {"a": {"val_accuracy": [0.8, 0.9], "avg_val_accuracy": [0.85, 0.9]},
         "b": {"val_accuracy": [0.7, 0.8], "avg_val_accuracy": [0.9, 0.8]}}  # fmt: skip
    assert so.choose_final(c) == {"key": "b", "average": True, "epochs": 1, "val_accuracy": 0.9}
    c["a"]["val_accuracy"][1] = 0.95
    assert so.choose_final(c) == {"key": "a", "average": False, "epochs": 2, "val_accuracy": 0.95}


def test_learning_rates_and_normalisation_are_chosen_by_final_validation_loss(results):
    m = so.summarise(results)
    lrs = {n: r["lr"] for n, r in m["normalisation"].items()}
    assert lrs == {"raw": 1.0, "centre": 1.0, "standardise": 0.3}
    assert [r["diverged"] for r in m["lr_sweep"]["gd"]] == [False, False]
    assert so.best_lr(results["sweep"], SETTINGS, "mb", "centre") == 0.03
    assert m["normalisation"]["raw"]["mean_sq_input"] == 0.2


def test_starting_loss_and_its_second_order_prediction(results):
    m = so.summarise(results)
    assert m["initial_loss_per_seed"] == [2.4, 2.35]
    assert m["initial_loss_predicted"] == pytest.approx(math.log(10) + 0.45 * 0.09)


def test_batch_vs_minibatch_comparison(results):
    m = so.summarise(results)
    # mean val loss over the epochs all seeds ran: gd [.., 0.75, 0.6], mb [.., 0.65, 0.525]
    assert m["target_val_loss"] == pytest.approx(0.6)
    gd, mb = m["gd"], m["mb"]
    assert (gd["epochs_to_target"], gd["updates_to_target"], gd["seconds_to_target"]) == (3, 3, 1.5)
    assert (mb["epochs_to_target"], mb["updates_to_target"], mb["seconds_to_target"]) == (2, 20, 1.0)
    assert gd["best_epoch"] == [3, 3] and gd["best_val_accuracy"] == pytest.approx([0.73, 0.73])
    assert mb["by_update"] == [[0.0, 1.5, 4.0], [2.3, 1.0, 0.7], [0.0, 0.0, 0.0]]
    assert "mini-batch reached the target in 2 epochs against 3" in so.comparison_text(m)


def test_final_model_scores_follow_from_its_test_predictions(results):
    m = so.summarise(results)
    assert m["test_accuracy"] == 0.95 and m["data_seed"] == 0
    assert m["gain_over_old"] == pytest.approx(0.95 - 0.8407)
    assert m["system"]["micro_f1"] == pytest.approx(0.95)  # one label per image: micro = accuracy
    assert m["per_class"]["T-shirt/top"]["recall"] == pytest.approx(0.7)
    assert m["per_class"]["Shirt"]["precision"] == pytest.approx(8 / 11)  # 8 shirts, 3 T-shirts: "shirt"
    assert m["most_confused"][0] == ("T-shirt/top", "Shirt", 3)
    assert m["confusion_matrix"][0][6] == 3 and sum(map(sum, m["confusion_matrix"])) == 100
    assert (m["final"]["key"], m["final"]["average"], m["final"]["epochs"]) == ("final-b", False, 2)
    assert (m["final"]["lr"], m["final"]["decay"], m["final"]["weight_decay"]) == (0.3, 0.8, 1e-4)


def test_report_fills_every_placeholder(results):
    text = study.report_text(so, so.summarise(results))
    assert "$" not in text
    for name in so.FIGURES:
        assert f"({name}.png)" in text
    assert "**test accuracy 0.9500**" in text and "+0.1093" in text and "Quick smoke run" in text
    assert "reach a loss\nof 0.4200, 0.4400, their mean 0.4100" in text
    assert "| lr 0.3, decay 0.8, wd 0.0001 | 2 | 0.8500 | 0.8400 | 3 | 0.8500 | 0.8500 |" in text


def test_block_means_keep_the_mean_and_spread_evenly_on_a_log_axis():
    x, means = so.block_means(list(np.arange(1000.0)), n=50)
    assert len(x) == len(means) <= 50 and x[0] == 0 and np.all(np.diff(x) > 0)
    np.testing.assert_allclose(means, x)  # values[i] = i: each block's mean sits at its centre
    assert np.diff(x)[-1] > 10 * np.diff(x)[0]  # blocks grow: dense at the start, sparse at the end


def test_epoch_average_is_the_mean_of_the_weights_each_update_started_from():
    class Recorder(Callback):
        def on_train_begin(self, logs):
            self.seen = []

        def on_batch_end(self, step, logs):
            self.seen.append(self.model.layers[0].W.value.copy())

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(12, 3)).astype(np.float32), rng.integers(0, 2, 12)
    model = Sequential([Dense(3, 2, rng=0)])
    tail, seen = so.EpochAverage(), Recorder()
    fit(model, X, y, loss=SoftmaxCrossEntropy(), optimizer=SGD(model.parameters(), lr=0.5), epochs=2,
        batch_size=4, callbacks=[tail, seen], rng=1, verbose=0)  # fmt: skip
    assert len(tail.averages) == 2
    np.testing.assert_allclose(tail.averages[1]["0.W"], np.mean(seen.seen[3:], axis=0), rtol=1e-6)
    assert not np.allclose(tail.averages[1]["0.W"], model.layers[0].W.value)
