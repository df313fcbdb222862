"""Metrics against hand-computed small cases, definitions checked by property tests."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidl.metrics import (
    accuracy,
    classification_report,
    confusion_matrix,
    mcnemar,
    most_confused_pairs,
    one_vs_rest_accuracy,
    per_class_accuracy,
    precision_recall_f1,
    precision_recall_f1_from_confusion,
    roc_auc_score,
    roc_curve,
    support,
)

# Hand case with 4 classes: class 2 ("pullover") is never predicted, class 3 ("dress") never
# occurs in y_true but is predicted once.
Y_TRUE = np.array([0, 0, 0, 1, 1, 2, 2])
Y_PRED = np.array([0, 0, 1, 1, 3, 0, 1])
NAMES = ["T-shirt", "trouser", "pullover", "dress"]
CM = np.array(
    [
        [2, 1, 0, 0],
        [0, 1, 0, 1],
        [1, 1, 0, 0],
        [0, 0, 0, 0],
    ]
)


@st.composite
def label_pairs(draw):
    """(y_true, y_pred, n_classes) with 1..30 examples and 1..5 classes."""
    n_classes = draw(st.integers(1, 5))
    n = draw(st.integers(1, 30))
    labels = st.lists(st.integers(0, n_classes - 1), min_size=n, max_size=n)
    return np.array(draw(labels)), np.array(draw(labels)), n_classes


# --------------------------------------------------------------------------- multiclass


def test_accuracy_hand_case():
    assert accuracy(Y_TRUE, Y_PRED) == 3 / 7
    assert isinstance(accuracy(Y_TRUE, Y_PRED), float)
    assert accuracy([1, 1], [1, 1]) == 1.0


def test_confusion_matrix_rows_are_true_columns_are_predicted():
    cm = confusion_matrix(Y_TRUE, Y_PRED, 4)
    np.testing.assert_array_equal(cm, CM)
    assert cm.dtype == np.int64
    # one example of true class 1 predicted as 3: row 1, column 3, not the transpose
    assert cm[1, 3] == 1 and cm[3, 1] == 0


def test_confusion_matrix_n_classes_inferred_and_padded():
    np.testing.assert_array_equal(confusion_matrix([1, 1], [1, 0]), [[0, 0], [1, 1]])
    assert confusion_matrix([0, 1], [0, 1], n_classes=10).shape == (10, 10)


@settings(max_examples=60, deadline=None)
@given(label_pairs())
def test_confusion_matrix_matches_its_definition(case):
    y_true, y_pred, n = case
    expected = np.zeros((n, n), dtype=np.int64)
    for t, p in zip(y_true, y_pred, strict=True):
        expected[t, p] += 1
    np.testing.assert_array_equal(confusion_matrix(y_true, y_pred, n), expected)


def test_precision_recall_f1_per_class_hand_case():
    p, r, f1 = precision_recall_f1(Y_TRUE, Y_PRED, 4)
    # class 2 never predicted: precision 0/0 -> 0; class 3 absent from y_true: recall 0/0 -> 0
    np.testing.assert_allclose(p, [2 / 3, 1 / 3, 0, 0])
    np.testing.assert_allclose(r, [2 / 3, 1 / 2, 0, 0])
    np.testing.assert_allclose(f1, [2 / 3, 2 / 5, 0, 0])
    assert not np.isnan(p).any() and not np.isnan(r).any() and not np.isnan(f1).any()


def test_precision_recall_f1_averages_hand_case():
    macro = precision_recall_f1(Y_TRUE, Y_PRED, 4, average="macro")
    weighted = precision_recall_f1(Y_TRUE, Y_PRED, 4, average="weighted")
    micro = precision_recall_f1(Y_TRUE, Y_PRED, 4, average="micro")
    # macro: plain means over the 4 classes, the absent class 3 counting as 0
    assert macro == pytest.approx((1 / 4, 7 / 24, 4 / 15))
    # weighted by the supports (3, 2, 2, 0)
    assert weighted == pytest.approx((8 / 21, 3 / 7, 2 / 5))
    assert micro == pytest.approx((3 / 7, 3 / 7, 3 / 7))
    assert all(isinstance(v, float) for v in macro + weighted + micro)


def test_precision_recall_f1_from_a_confusion_matrix_or_pooled_ones():
    for average in (None, "macro", "weighted", "micro"):
        expected = precision_recall_f1(Y_TRUE, Y_PRED, 4, average=average)
        np.testing.assert_allclose(precision_recall_f1_from_confusion(CM, average), expected)
    # the sum of two runs' matrices scores their predictions pooled
    y2_true, y2_pred = np.array([3, 3, 2, 1]), np.array([3, 2, 2, 1])
    pooled = precision_recall_f1(np.r_[Y_TRUE, y2_true], np.r_[Y_PRED, y2_pred], 4)
    both = CM + confusion_matrix(y2_true, y2_pred, 4)
    np.testing.assert_allclose(precision_recall_f1_from_confusion(both.tolist()), pooled)
    with pytest.raises(ValueError, match="square"):
        precision_recall_f1_from_confusion([[1, 2]])
    with pytest.raises(ValueError, match="2x2"):
        precision_recall_f1_from_confusion(CM, average="binary")


@settings(max_examples=60, deadline=None)
@given(label_pairs())
def test_micro_averages_equal_accuracy(case):
    y_true, y_pred, n = case
    acc = accuracy(y_true, y_pred)
    assert precision_recall_f1(y_true, y_pred, n, average="micro") == pytest.approx((acc,) * 3)


def test_binary_average_is_the_positive_class():
    y_true = [0, 0, 1, 1, 1]
    y_pred = [0, 1, 1, 1, 0]
    assert precision_recall_f1(y_true, y_pred, average="binary") == pytest.approx((2 / 3, 2 / 3, 2 / 3))
    assert precision_recall_f1(y_true, y_pred, average="binary", pos_label=0) == pytest.approx(
        (1 / 2, 1 / 2, 1 / 2)
    )
    # no positive predicted or present: every ratio is 0/0 -> 0
    assert precision_recall_f1([0, 0], [0, 0], average="binary") == (0.0, 0.0, 0.0)


def test_binary_average_rejects_more_than_two_classes():
    with pytest.raises(ValueError, match="outside"):
        precision_recall_f1([0, 1, 2], [0, 1, 2], average="binary")
    with pytest.raises(ValueError, match="needs two classes"):
        precision_recall_f1([0, 1], [0, 1], n_classes=3, average="binary")


def test_support_counts_true_examples_per_class():
    np.testing.assert_array_equal(support(Y_TRUE, 4), [3, 2, 2, 0])
    assert support(Y_TRUE).dtype == np.int64


def test_per_class_accuracy_is_recall_and_one_vs_rest_counts_negatives():
    np.testing.assert_allclose(per_class_accuracy(Y_TRUE, Y_PRED, 4), [2 / 3, 1 / 2, 0, 0])
    # (TP + TN) / N = 1 - (FP + FN) / 7 with FP = (1, 2, 0, 1) and FN = (1, 1, 2, 0)
    np.testing.assert_allclose(one_vs_rest_accuracy(Y_TRUE, Y_PRED, 4), [5 / 7, 4 / 7, 5 / 7, 6 / 7])


@settings(max_examples=40, deadline=None)
@given(label_pairs())
def test_per_class_accuracy_equals_recall(case):
    y_true, y_pred, n = case
    np.testing.assert_array_equal(
        per_class_accuracy(y_true, y_pred, n), precision_recall_f1(y_true, y_pred, n)[1]
    )


def test_most_confused_pairs_order_ties_and_zeros():
    cm = np.array([[5, 2, 0], [3, 4, 1], [0, 3, 6]])
    assert most_confused_pairs(cm, k=10) == [(1, 0, 3), (2, 1, 3), (0, 1, 2), (1, 2, 1)]
    assert most_confused_pairs(cm, k=2) == [(1, 0, 3), (2, 1, 3)]
    assert most_confused_pairs(cm, k=0) == []
    assert most_confused_pairs(np.diag([3, 4]), k=5) == []  # no errors, no pairs
    named = most_confused_pairs(CM, k=2, class_names=NAMES)
    assert named == [("T-shirt", "trouser", 1), ("trouser", "dress", 1)]


def test_most_confused_pairs_rejects_bad_input():
    with pytest.raises(ValueError, match="square"):
        most_confused_pairs(np.zeros((2, 3), dtype=int))
    with pytest.raises(ValueError, match="non-negative integer counts"):
        most_confused_pairs(np.eye(2))
    with pytest.raises(ValueError, match="2 names for 4 classes"):
        most_confused_pairs(CM, class_names=["a", "b"])


# --------------------------------------------------------------------------- report

# scikit-learn 1.9.1's classification_report(Y_TRUE, Y_PRED, labels=range(4),
# target_names=NAMES, zero_division=0), pasted.
SKLEARN_REPORT = """\
              precision    recall  f1-score   support

     T-shirt       0.67      0.67      0.67         3
     trouser       0.33      0.50      0.40         2
    pullover       0.00      0.00      0.00         2
       dress       0.00      0.00      0.00         0

    accuracy                           0.43         7
   macro avg       0.25      0.29      0.27         7
weighted avg       0.38      0.43      0.40         7
"""

# the same with digits=3 (scikit-learn's output)
SKLEARN_REPORT_3 = (
    "              precision    recall  f1-score   support\n\n"
    "     T-shirt      0.667     0.667     0.667         3\n"
    "     trouser      0.333     0.500     0.400         2\n"
    "    pullover      0.000     0.000     0.000         2\n"
    "       dress      0.000     0.000     0.000         0\n\n"
    "    accuracy                          0.429         7\n"
    "   macro avg      0.250     0.292     0.267         7\n"
    "weighted avg      0.381     0.429     0.400         7\n"
)


def test_classification_report_matches_scikit_learn_layout():
    text = classification_report(Y_TRUE, Y_PRED, target_names=NAMES)
    assert text == SKLEARN_REPORT
    assert classification_report(Y_TRUE, Y_PRED, 4, target_names=NAMES, digits=3) == (SKLEARN_REPORT_3)
    lines = text.splitlines()
    assert lines[0].split() == ["precision", "recall", "f1-score", "support"]
    row_names = [line.rsplit(maxsplit=4)[0].strip() for line in lines[2:6]]
    assert row_names == NAMES
    assert [line.split()[0] for line in lines[7:]] == ["accuracy", "macro", "weighted"]


def test_classification_report_default_names_and_width():
    lines = classification_report([0, 1], [0, 1]).splitlines()
    assert [line.split()[0] for line in lines[2:4]] == ["0", "1"]
    long_name = "a very long class name"
    lines = classification_report([0, 1], [0, 1], target_names=["x", long_name]).splitlines()
    assert lines[3].startswith(long_name)
    assert lines[2].startswith(" " * (len(long_name) - 1) + "x")


def test_classification_report_dict_form():
    report = classification_report(Y_TRUE, Y_PRED, target_names=NAMES, output_dict=True)
    assert list(report) == NAMES + ["accuracy", "macro avg", "weighted avg"]
    assert report["accuracy"] == pytest.approx(3 / 7)
    assert report["trouser"] == pytest.approx(
        {"precision": 1 / 3, "recall": 1 / 2, "f1-score": 2 / 5, "support": 2}
    )
    assert report["macro avg"] == pytest.approx(
        {"precision": 1 / 4, "recall": 7 / 24, "f1-score": 4 / 15, "support": 7}
    )
    assert isinstance(report["dress"]["support"], int)
    assert json.loads(json.dumps(report)) == report


def test_classification_report_target_names_must_match_classes():
    with pytest.raises(ValueError, match="3 names for 4 classes"):
        classification_report(Y_TRUE, Y_PRED, n_classes=4, target_names=NAMES[:3])
    with pytest.raises(ValueError, match=r"outside \[0, 2\)"):
        classification_report(Y_TRUE, Y_PRED, target_names=NAMES[:2])


# --------------------------------------------------------------------------- ROC


def test_roc_curve_hand_case():
    fpr, tpr, thresholds = roc_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 0.5, 1, 1])
    np.testing.assert_array_equal(thresholds, [np.inf, 0.8, 0.4, 0.35, 0.1])


def test_roc_curve_with_ties_and_intermediate_points():
    y_true = [0, 1, 0, 1, 1, 0]
    y_score = [0.2, 0.6, 0.6, 0.9, 0.3, 0.1]
    # the tie at 0.6 (one positive, one negative) moves the curve diagonally in one step
    fpr, tpr, thresholds = roc_curve(y_true, y_score, drop_intermediate=False)
    np.testing.assert_allclose(fpr, [0, 0, 1 / 3, 1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(tpr, [0, 1 / 3, 2 / 3, 1, 1, 1])
    np.testing.assert_array_equal(thresholds, [np.inf, 0.9, 0.6, 0.3, 0.2, 0.1])
    # (2/3, 1) lies on the segment from (1/3, 1) to (1, 1): dropped by default
    fpr, tpr, thresholds = roc_curve(y_true, y_score)
    np.testing.assert_allclose(fpr, [0, 0, 1 / 3, 1 / 3, 1])
    np.testing.assert_allclose(tpr, [0, 1 / 3, 2 / 3, 1, 1])
    np.testing.assert_array_equal(thresholds, [np.inf, 0.9, 0.6, 0.3, 0.1])
    # pairs (positive, negative): 0.9 wins 3, 0.6 wins 2 and ties 1, 0.3 wins 2 -> 7.5 / 9
    assert roc_auc_score(y_true, y_score) == 7.5 / 9


def test_roc_auc_extremes():
    assert roc_auc_score([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert roc_auc_score([1, 1, 0, 0], [0.1, 0.2, 0.3, 0.4]) == 0.0
    assert roc_auc_score([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5  # all tied: chance
    assert roc_auc_score([False, True], [-3, 7]) == 1.0  # bool labels, integer scores


def _pairwise_auc(y_true, y_score):
    pos = y_score[y_true == 1][:, None]
    neg = y_score[y_true == 0][None, :]
    wins = int(np.sum(pos > neg))
    ties = int(np.sum(pos == neg))
    return (2 * wins + ties) / (2 * pos.size * neg.size)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1), st.integers(-3, 3)), min_size=2, max_size=40).filter(
        lambda pairs: len({label for label, _ in pairs}) == 2
    ),
    st.sampled_from([0.25, 1.0, 1e-3]),
)
def test_roc_auc_equals_pairwise_definition(pairs, scale):
    # small integer scores force many ties; the scale makes them non-integer floats
    y_true = np.array([label for label, _ in pairs])
    y_score = np.array([score for _, score in pairs]) * scale
    assert roc_auc_score(y_true, y_score) == _pairwise_auc(y_true, y_score)
    fpr, tpr, thresholds = roc_curve(y_true, y_score)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0, 0, 1, 1)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert np.all(np.diff(thresholds) < 0) and thresholds[0] == np.inf
    assert np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2) == pytest.approx(_pairwise_auc(y_true, y_score))


@pytest.mark.parametrize(
    ("y_true", "y_score", "message"),
    [
        ([1, 1, 1], [0.1, 0.2, 0.3], "only class 1"),
        ([0, 1, 2], [0.1, 0.2, 0.3], "binary labels 0/1"),
        ([0, 1], [0.1, np.nan], "NaN"),
        ([0, 1], [0.1, 0.2, 0.3], "different lengths: 2 and 3"),
        ([0, 1], [[0.9, 0.1], [0.2, 0.8]], "must be 1-D"),
    ],
)
def test_roc_rejects_bad_input(y_true, y_score, message):
    for function in (roc_curve, roc_auc_score):
        with pytest.raises(ValueError, match=message):
            function(y_true, y_score)


# --------------------------------------------------------------------------- McNemar


def test_mcnemar_exact_hand_case():
    # b = 10 (A right, B wrong), c = 2, 5 examples both right, 3 both wrong
    correct_a = [True] * 10 + [False] * 2 + [True] * 5 + [False] * 3
    correct_b = [False] * 10 + [True] * 2 + [True] * 5 + [False] * 3
    statistic, p_value, b, c = mcnemar(correct_a, correct_b)
    assert (b, c) == (10, 2)
    assert statistic == 2.0  # min(b, c)
    # 2 * (C(12,0) + C(12,1) + C(12,2)) / 2**12 = 2 * 79 / 4096
    assert p_value == 158 / 4096
    # swapping the classifiers swaps b and c, nothing else
    assert mcnemar(correct_b, correct_a) == (2.0, 158 / 4096, 2, 10)


def test_mcnemar_chi_square_case_and_boundary():
    statistic, p_value, b, c = mcnemar([1] * 30 + [0] * 5, [0] * 30 + [1] * 5)
    assert (b, c) == (30, 5)
    assert statistic == pytest.approx((30 - 5 - 1) ** 2 / 35)
    assert p_value == pytest.approx(4.976233487907417e-05, rel=1e-9)  # scipy.stats.chi2.sf
    # b + c = 24 still uses the exact test; 25 switches to chi-square
    assert mcnemar([1] * 24, [0] * 24)[0] == 0.0
    assert mcnemar([1] * 25, [0] * 25)[0] == pytest.approx(24**2 / 25)


def test_mcnemar_identical_classifiers():
    assert mcnemar([1, 0, 1], [1, 0, 1]) == (0.0, 1.0, 0, 0)


def test_mcnemar_rejects_bad_input():
    with pytest.raises(ValueError, match="different lengths: 3 and 2"):
        mcnemar([1, 0, 1], [1, 0])
    with pytest.raises(ValueError, match="booleans or 0/1"):
        mcnemar([1, 0, 2], [1, 0, 1])


# --------------------------------------------------------------------------- validation


def test_integral_float_and_bool_labels_are_accepted():
    assert accuracy(np.array([0.0, 1.0, 2.0]), [0, 1, 1]) == 2 / 3
    np.testing.assert_array_equal(confusion_matrix([True, False], [True, True]), [[0, 1], [0, 1]])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: accuracy([0, 1, 2, 1, 0], [0, 1, 2, 1]), "different lengths: 5 and 4"),
        (lambda: accuracy([0, 0.5], [0, 1]), r"y_true must contain integer .* \[0\.5\]"),
        (lambda: accuracy(["a", "b"], [0, 1]), "integer class labels"),
        (lambda: confusion_matrix([0, -1], [0, 1]), r"y_true has labels outside \[0, 2\)"),
        (lambda: confusion_matrix([0, 1], [0, 3], n_classes=3), r"y_pred .* \[0, 3\).*\[3\]"),
        (lambda: accuracy([], []), "y_true is empty"),
        (lambda: precision_recall_f1([0, 1], [0, 1], average="mean"), "unknown average 'mean'"),
        (lambda: accuracy([0, 1], np.eye(2)), r"shape \(2, 2\).*argmax\(axis=1\)"),
        (lambda: confusion_matrix([0, 1], [0, 1], n_classes=0), "n_classes must be a positive"),
        (lambda: confusion_matrix([0, 1], [0, 1], n_classes=2.0), "n_classes must be a positive"),
    ],
)
def test_errors_name_the_problem(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_inputs_are_not_modified():
    y_true = np.array([0, 2, 1])
    y_pred = np.array([0, 1, 1])
    precision_recall_f1(y_true, y_pred, average="macro")
    classification_report(y_true, y_pred)
    np.testing.assert_array_equal(y_true, [0, 2, 1])
    np.testing.assert_array_equal(y_pred, [0, 1, 1])
