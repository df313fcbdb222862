"""experiments.binary: summarise, the answer and the report, on synthetic results (no training)."""

from __future__ import annotations

import numpy as np
import pytest

from experiments import binary, study
from minidl.metrics import paired_exact_test

N = 400
Y = np.arange(N) % 10  # 40 test images per class: 240 clothing, 160 footwear and bags


def results(wrong_binary: list[list[int]], wrong_binarised: list[list[int]]) -> dict:
    """What ``run`` returns for len(wrong_binary) seeds; the summed method errs like arg-max."""
    seeds = len(wrong_binary)
    cms = []
    for wrong in wrong_binarised:  # each arg-max error: a class of the other group predicted
        cm = np.diag(np.bincount(Y, minlength=10))
        for i in wrong:
            cm[Y[i], Y[i]] -= 1
            cm[Y[i], 8 if Y[i] not in binary.POSITIVE else 0] += 1  # a bag, or a T-shirt/top
        cm[6, 6] -= 7  # plus 7 shirts taken for T-shirts: an error the grouping forgives
        cm[6, 0] += 7
        cms.append(cm.tolist())
    every = sorted({i for rows in (wrong_binary, wrong_binarised) for row in rows for i in row})
    history = {
        "loss": [0.7, 0.1],
        "accuracy": [0.5, 0.98],
        "val_loss": [0.7, 0.1],
        "val_accuracy": [0.5, 0.98],
    }
    run = {
        "history": history,
        "stop_reason": None,
        "lr_reductions": [],
        "train_seconds": 20.0,
        "best_epoch": 1,
    }
    return {
        "n_test": N,
        "n_positive": int(np.isin(Y, binary.POSITIVE).sum()),
        "wrong": {"binary": wrong_binary, "binarised": wrong_binarised, "summed": wrong_binarised},
        "true_class": {str(i): int(Y[i]) for i in every},
        "auc": {"binary": [0.999] * seeds, "summed": [0.998] * seeds},
        "confusion_10": cms,
        "runs": {f"{k}-seed{i}": run for i in range(seeds) for k in ("binary", "multiclass")},
        "quick": False,
        "settings": {**binary.FULL, "seeds": seeds},
        "seconds": 100.0,
        "sizes": [50000, 10000],
    }


def test_binary_metrics_of_seed_0():
    # seed 0's binary network: 3 clothing images called footwear/bag (0, 1, 2), 2 the other way (5, 7)
    m = binary.summarise(results([[0, 1, 2, 5, 7], [3]], [[0, 5], [3, 9]]))
    assert m["test_accuracy"] == 1 - 5 / N
    assert m["confusion"] == [[240 - 3, 3], [2, 160 - 2]]
    assert m["precision"] == pytest.approx(158 / 161)
    assert m["recall"] == pytest.approx(158 / 160)
    assert m["by_class"]["binary"] == {
        "T-shirt/top": 1,
        "Trouser": 1,
        "Pullover": 1,
        "Sandal": 1,
        "Sneaker": 1,
    }
    assert m["shared_errors"] == 2  # images 0 and 5


def test_paired_comparison_counts_and_tests():
    wrong_binary = [[0, 1, 2], [3, 4]]
    wrong_binarised = [[0, 10, 11, 12, 13], [3, 20, 21]]
    m = binary.summarise(results(wrong_binary, wrong_binarised))
    assert m["errors"]["binary"] == [3, 2] and m["errors"]["binarised"] == [5, 3]
    # seed 0: binary right and binarised wrong on 10..13 (b = 4), the reverse on 1, 2 (c = 2)
    assert m["per_seed"]["binarised"][0] == {"b": 4, "c": 2, "p": pytest.approx(0.6875)}
    correct = np.ones((2, N), bool)
    for i, row in enumerate(wrong_binary):
        correct[i, row] = False
    other = np.ones((2, N), bool)
    for i, row in enumerate(wrong_binarised):
        other[i, row] = False
    assert m["pooled_p"]["binarised"] == paired_exact_test(correct, other)
    assert m["difference"][0] == pytest.approx((8 - 5) / (2 * N))
    # every arg-max error crosses the group boundary; the 7 forgiven shirts do not
    assert m["crossing_10"] == m["errors"]["binarised"]
    assert m["errors_10"] == [5 + 7, 3 + 7]


def test_answer_says_what_the_interval_says():
    close = binary.summarise(results([[0, 1, 2], [3, 4]], [[0, 10, 11], [3, 20, 21]]))
    assert binary.answer_text(close).startswith("No difference detected at this sample size.")
    assert close["difference"][1] < 0 < close["difference"][2]
    many = [list(range(100, 140)), list(range(200, 240))]  # 40 more errors per seed
    clear = binary.summarise(results([[0], [1]], many))
    assert clear["difference"][1] > 0
    assert binary.answer_text(clear).startswith("The binary network makes fewer test errors")


def test_report_fills_every_placeholder():
    m = binary.summarise(results([[0, 1, 2, 5, 7], [3]], [[0, 5], [3, 9]]))
    text = study.report_text(binary, m)
    assert "$" not in text
    assert "| 0 | 2 | 5 | 0 | 3 |" in text  # seed 0: arg-max 2 errors, binary 5, b = 0, c = 3 (1, 2, 7)
