"""experiments.multiclass: summarise, the result-dependent sentences and the report, on synthetic
results; and (slow) the checkpoint a training sends back from its worker."""

from __future__ import annotations

import numpy as np
import pytest

from experiments import multiclass, study
from minidl.callbacks import read_checkpoint_info
from minidl.metrics import accuracy
from minidl.model import save_npz
from minidl.train import predict


def results(val_loss: list[float], reductions: list[list[float]]) -> dict:
    """What ``run`` returns for a training of len(val_loss) - 1 epochs, with a made-up confusion matrix."""
    n = len(val_loss)
    cm = np.diag([900, 970, 800, 900, 850, 950, 700, 950, 970, 950])
    cm[6, 0] = 100  # Shirt -> T-shirt/top
    cm[0, 6] = 60
    cm[2, 4] = 80  # Pullover -> Coat
    cm[7, 5] = 30  # Sneaker -> Sandal
    cm[8, 0] = 5  # Bag -> T-shirt/top: footwear & bags vs the rest, but the bag is not footwear
    cm[9, 6] = 2  # Ankle boot -> Shirt
    history = {
        "loss": list(np.linspace(2.4, 0.1, n)),
        "accuracy": list(np.linspace(0.1, 0.97, n)),
        "val_loss": val_loss,
        "val_accuracy": list(np.linspace(0.1, 0.9, n)),
    }
    return {
        "history": history,
        "stop_reason": None,
        "lr_reductions": reductions,
        "train_seconds": 12.0,
        "n_train": 50000,
        "n_val": 10000,
        "summary": "a table",
        "checkpoint": {"best_epoch": n - 2, "best_score": 0.9, "monitor": "val_accuracy", "epoch": n - 2},
        "data_seed": 0,
        "test_loss": 0.33,
        "confusion_matrix": cm.tolist(),
        "classification_report": "per-class table\n",
        "quick": False,
        "settings": multiclass.FULL,
        "seconds": 20.0,
    }


def test_numbers_from_the_confusion_matrix_and_history():
    m = multiclass.summarise(results([2.4, 0.5, 0.3, 0.29, 0.3, 0.31], [[3, 5e-4], [5, 2.5e-4]]))
    cm = np.array(m["confusion_matrix"])
    assert m["test_accuracy"] == pytest.approx(np.trace(cm) / cm.sum())
    assert m["errors"] == 100 + 60 + 80 + 30 + 5 + 2
    assert m["torso_errors"] == 100 + 60 + 80  # shirt, T-shirt, pullover, coat: all torso garments
    assert m["footwear_errors"] == 30
    assert m["footwear_other_errors"] == 2  # the ankle boot taken for a shirt
    assert m["most_confused_pairs"][0] == ["Shirt", "T-shirt/top", 100, 100 / 800, 60]
    assert m["confused_classes"][:2] == [[6, 0], [2, 4]]
    assert m["lowest_val_loss_epoch"] == 3
    assert m["best_epoch"] == 4 and m["epochs_trained"] == 5
    assert m["lr_reductions"] == [3, 5] and m["final_lr"] == 2.5e-4


def test_sentences_say_what_the_curve_shows():
    m = multiclass.summarise(results([2.4, 0.5, 0.3, 0.29, 0.3, 0.31], [[3, 5e-4], [5, 2.5e-4]]))
    assert "changed by +0.0200 (0.2900 -> 0.3100 at epoch 5)" in multiclass.late_text(m)
    assert "at the smaller learning rates" in multiclass.late_text(m)
    # cut after epochs 3 and 5, but training ended with epoch 5: its steps were 5e-4
    assert "the last epoch took steps of 0.0005, 2 times smaller" in multiclass.schedule_text(m)
    still = multiclass.summarise(results([2.4, 0.5, 0.4, 0.3], []))
    assert "more epochs might help" in multiclass.late_text(still)
    assert "stayed at 0.001" in multiclass.schedule_text(still)


@pytest.mark.parametrize(("accuracy", "where"), [(0.8972, "within"), (0.91, "above"), (0.84, "below")])
def test_handout_range(accuracy, where):
    assert f"{accuracy:.2%} is {where}" in multiclass.handout_text(accuracy)


def test_report_fills_every_placeholder():
    m = multiclass.summarise(results([2.4, 0.5, 0.3, 0.29, 0.3, 0.31], [[3, 5e-4]]))
    text = study.report_text(multiclass, m)
    assert "$" not in text
    assert f"{m['test_accuracy']:.2%}" in text
    assert "| Shirt | T-shirt/top | 100 | 12.5% | 60 |" in text


@pytest.mark.slow
def test_the_checkpoint_a_worker_returns_holds_the_best_epoch(fashion_mnist_dir, tmp_path):
    settings = {**multiclass.QUICK, "n_train": 600, "n_val": 300, "max_epochs": 4, "patience": 4}
    record = multiclass.train_one(settings, data_seed=0)
    path = tmp_path / "best.npz"
    save_npz(path, record["arrays"])  # what run saves as best.npz
    info = read_checkpoint_info(path)
    history = record["history"]
    best = 1 + int(np.argmax(history["val_accuracy"][1:]))  # the first epoch with the highest score
    assert info["best_epoch"] == info["epoch"] == record["best_epoch"] == best
    assert info["best_score"] == pytest.approx(history["val_accuracy"][best])
    model = multiclass.network(settings["hidden"], settings["dropout"], study.seed_streams(0))
    model.load(path)
    data = study.load_data("standardise", 600, 300, 0)
    assert accuracy(data.y_val, predict(model, data.X_val, labels=True)) == info["best_score"]
