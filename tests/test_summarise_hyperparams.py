"""experiments.hyperparams without training: its summary and report on synthetic records."""

from __future__ import annotations

import math

import numpy as np
import pytest

from experiments import hyperparams as hp
from experiments import study

SETTINGS = {**hp.QUICK, "folds": 3, "epochs": 4, "target_loss": 0.3, "seeds": [0, 1]}


def run(loss: list[float], val: list[float], diverged: bool = False, steps: int = 3) -> dict:
    """A run record as ``study.record`` makes it: the curves, one epoch time per epoch."""
    acc = [min(1.0, round(0.1 + 0.3 * i, 2)) for i in range(len(loss))]
    return {
        "history": {"loss": loss, "accuracy": acc, "val_loss": loss, "val_accuracy": val},
        "epoch_time": [0.1] * (len(loss) - 1 + diverged),
        "steps_per_epoch": steps,
        "best_epoch": len(loss) - 1,
        "stop_reason": "loss became nan" if diverged else None,
        "diverged": diverged,
    }


def stage(name: str, values: list, scores: list[list[float | None]], runs: list[list[dict]]) -> dict:
    """A cross-validation stage as ``choose`` saves it (NaN scores become null in results.json)."""
    S = np.array(scores, dtype=float)
    mean = np.where(np.isnan(S.mean(axis=1)), -np.inf, S.mean(axis=1))
    cv = {f"split{k}_test_score": [s[k] for s in scores] for k in range(len(scores[0]))}
    cv |= {
        "params": [{name: v} for v in values],
        "rank_test_score": (1 + (mean > mean[:, None]).sum(1)).tolist(),
        "mean_fit_time": [0.3] * len(values),
    }
    return {"name": name, "values": values, "cv": cv, "runs": runs}


def plain(loss_end: float, val_end: float) -> list[dict]:
    return [run([2.3, 1.0, 0.5, loss_end, loss_end], [0.1, 0.5, 0.7, val_end, val_end])] * 3


@pytest.fixture
def results() -> dict:
    a1 = stage(
        "arch",
        [[10], [10, 10]],
        [[0.70, 0.72, 0.74], [0.69, 0.73, 0.70]],
        [[run([2.3, 1.0, 0.5, 0.2, 0.1], [0.1, 0.6, 0.75, 0.72, 0.72])] * 3, plain(0.2, 0.70)],
    )
    # batch 1 diverges on every fold; batch 50 reaches loss 0.3 at epoch 3 (mean of its folds)
    a3 = stage(
        "batch_size",
        [1, 50, 200],
        [[None] * 3, [0.70, 0.72, 0.74], [0.60, 0.62, 0.64]],
        [
            [run([2.3, 40.0], [0.1, 0.1], diverged=True, steps=134)] * 3,
            [run([2.3, 1.0, 0.5, 0.25, 0.2], [0.1, 0.5, 0.7, 0.72, 0.72])] * 3,
            plain(0.6, 0.62),
        ],
    )
    a4 = stage(
        "lr",
        [0.01, 0.1, 10.0],
        [[0.60, 0.61, 0.62], [0.70, 0.72, 0.74], [None] * 3],
        [plain(0.9, 0.61), plain(0.2, 0.72), [run([2.3, 1e9], [0.1, 0.1], diverged=True)] * 3],
    )
    final = {
        "sizes": [200, 2000],
        "budgets": [12, 24],
        "part_b": True,
        "epochs": [[4, 1], [8, 2]],
        "train_error": [[[0.0, 0.0], [0.1, 0.12]], [[0.0, 0.0], [0.05, 0.07]]],
        "test_error": [[[0.30, 0.32], [0.20, 0.22]], [[0.30, 0.31], [0.15, 0.17]]],
    }
    a5 = [run([2.3, 1.0, 0.5, 0.2, 0.1], [0.1, 0.6, 0.7, 0.71, 0.70])["history"]] * 2
    return {
        "settings": SETTINGS,
        "quick": True,
        "seconds": 30.0,
        "a1": a1,
        "a3": a3,
        "a4": a4,
        "choice": {"arch": [10], "batch_size": 50, "lr": 0.1, "updates": 12},
        "a5": a5,
        "final": final,
        "test_accuracy": 0.84,
        "b2": {"wrong": 2100, "fixed": 900},
        "b3": {f"{q}_{k}": 0.5 for q in ("moved", "smooth") for k in ("start", "small", "large")},
        "svm": {"train_error": 0.0, "test_error": 0.25, "n_support": 180, "median_sq_distance": 130.0},
    }


def test_each_stage_picks_its_best_and_compares_fold_by_fold(results):
    m = hp.summarise(results)
    assert (m["a1"]["chosen"], m["a3"]["chosen"], m["a4"]["chosen"]) == ("(10,)", "50", "0.1")
    deep = m["a1"]["rows"][1]
    assert deep["diff"] == pytest.approx(np.mean([0.01, -0.01, 0.04]))  # chosen minus it, per fold
    assert (deep["worse"], deep["better"]) == (2, 1)
    assert m["a1"]["rows"][0]["params"] == 784 * 10 + 10 + 10 * 10 + 10


def test_a_diverged_candidate_ranks_last_and_has_no_final_loss(results):
    m = hp.summarise(results)
    stochastic = m["a3"]["rows"][0]
    assert stochastic["label"] == "1 (stochastic)" and stochastic["diverged"] == 3
    assert stochastic["rank"] == 3 and math.isnan(stochastic["mean"]) and stochastic["final_loss"] is None
    assert m["a3"]["rows"][2]["label"] == "200 (full batch)"


def test_loss_target_and_marked_epochs(results):
    m = hp.summarise(results)
    fifty, full = m["a3"]["rows"][1], m["a3"]["rows"][2]
    assert (fifty["epochs_to_target"], fifty["updates_to_target"]) == (3, 9)
    assert fifty["seconds_to_target"] == pytest.approx(0.3)
    assert full["epochs_to_target"] is None  # its mean loss stops at 0.6
    assert (m["a2"]["epoch"], m["a2"]["peak"]) == (2, pytest.approx(0.75))
    assert (m["a5"]["fit_epoch"], m["a5"]["peak_epoch"]) == (3, 3)
    assert m["a5"]["test_error"] == [0.30, 0.32] and m["test_accuracy"] == 0.84


def test_the_report_answers_every_question_with_the_numbers(results):
    text = study.report_text(hp, hp.summarise(results))
    assert "$" not in text
    for question in ("A.Q1", "A.Q2", "A.Q3", "A.Q4", "A.Q5", "B.Q1", "B.Q2", "B.Q3"):
        assert f"### {question}." in text
    assert "Diverged with step 0.1: 1 (stochastic)." in text and "Diverged: 10." in text
    assert "| 12 | 2000 | 1 | 0.1100 ± 0.0100 | 0.2100 ± 0.0100 | +0.1000 |" in text
    assert "the network has the lower test error, by 0.060" not in text  # the SVM is better
    assert "the SVM has the lower test error, by 0.060" in text
    for figure in hp.FIGURES:
        assert f"]({figure}.png)" in text


def test_without_part_b_or_the_svm_the_report_says_so(results):
    results["svm"] = {"skipped": "scikit-learn is not installed"}
    text = study.report_text(hp, hp.summarise(results))
    assert "**SVM skipped**: scikit-learn is not installed." in text and "$" not in text
    results["final"] |= {"part_b": False}
    text = study.report_text(hp, hp.summarise(results))
    assert "Part B was not run (`--part A`)." in text and "B.Q1" not in text
