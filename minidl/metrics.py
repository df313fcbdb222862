"""Classification metrics, following scikit-learn's conventions.

Labels are integer class indices 0 .. n_classes - 1, one per example, as 1-D arrays of the same
length (y_true first, then y_pred, as in scikit-learn). When n_classes is not given it is
max(label) + 1, so every class index up to the largest one seen gets a row, even a class that
appears in neither array (scikit-learn would list only the labels it sees; ours behaves like
scikit-learn called with labels=range(n_classes)).

Everything starts from the confusion matrix C (rows = true class, columns = predicted class).
For class k:

    TP_k = C[k, k]                  examples of class k predicted as k
    FP_k = sum of column k - TP_k   examples predicted as k that are not k
    FN_k = sum of row k - TP_k      examples of class k predicted as something else
    support_k = sum of row k        examples of class k

    precision_k = TP_k / (TP_k + FP_k)       "when the model says k, how often is it right"
    recall_k    = TP_k / (TP_k + FN_k)       "of the k's, how many did the model find"
    f1_k        = 2 TP_k / (2 TP_k + FP_k + FN_k)   (the harmonic mean of the two)

A ratio whose denominator is 0 (a class never predicted, a class absent from y_true) is 0, not
NaN, as with scikit-learn's default zero_division; unlike scikit-learn, no warning is issued.

Binary scores: roc_curve and roc_auc_score take 0/1 labels and a real score per example (a
probability or a logit: only the order matters). mcnemar compares two classifiers evaluated on
the same examples.

All computations are vectorised: the confusion matrix is one np.bincount.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import numpy as np

__all__ = [
    "accuracy",
    "classification_report",
    "confusion_matrix",
    "error_rate_difference",
    "mcnemar",
    "most_confused_pairs",
    "one_vs_rest_accuracy",
    "paired_exact_test",
    "per_class_accuracy",
    "precision_recall_f1",
    "roc_auc_score",
    "roc_curve",
    "support",
]

AVERAGES = (None, "binary", "micro", "macro", "weighted")


# --------------------------------------------------------------------------- input checks


def _as_labels(y: Any, name: str) -> np.ndarray:
    """Return `y` as a 1-D int64 array of class indices, or raise a ValueError saying why not."""
    y = np.asarray(y)
    if y.ndim != 1:
        hint = ""
        if y.ndim == 2 and y.shape[1] > 1:
            hint = f"; if these are scores or one-hot rows, pass {name}.argmax(axis=1)"
        raise ValueError(f"{name} must be 1-D class labels, got shape {y.shape}{hint}")
    if y.size == 0:
        raise ValueError(f"{name} is empty: metrics need at least one example")
    if y.dtype == bool:
        return y.astype(np.int64)
    if y.dtype.kind in "iu":
        return y.astype(np.int64, copy=False)
    if y.dtype.kind == "f":
        bad = ~np.isfinite(y) | (y != np.round(y))
        if bad.any():
            raise ValueError(
                f"{name} must contain integer class labels, found non-integer values such as "
                f"{y[bad][:3].tolist()}"
            )
        return y.astype(np.int64)
    raise ValueError(f"{name} must contain integer class labels, got dtype {y.dtype}")


def _check_n_classes(n_classes: Any) -> int:
    if isinstance(n_classes, bool) or not isinstance(n_classes, int | np.integer):
        raise ValueError(f"n_classes must be a positive integer, got {n_classes!r}")
    if n_classes < 1:
        raise ValueError(f"n_classes must be a positive integer, got {n_classes}")
    return int(n_classes)


def _check_pair(y_true: Any, y_pred: Any, n_classes: int | None) -> tuple[np.ndarray, np.ndarray, int]:
    """Validate two label arrays; return them as int64 plus the number of classes."""
    y_true = _as_labels(y_true, "y_true")
    y_pred = _as_labels(y_pred, "y_pred")
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true and y_pred have different lengths: {len(y_true)} and {len(y_pred)}")
    if n_classes is None:
        n_classes = max(int(y_true.max()), int(y_pred.max()), 0) + 1
    else:
        n_classes = _check_n_classes(n_classes)
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        outside = (y < 0) | (y >= n_classes)
        if outside.any():
            examples = np.unique(y[outside])[:5].tolist()
            raise ValueError(
                f"{name} has labels outside [0, {n_classes}) (n_classes={n_classes}): {examples}"
            )
    return y_true, y_pred, n_classes


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den elementwise as float64, with 0 where den == 0 (scikit-learn's zero_division)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.zeros(np.broadcast(num, den).shape)
    np.divide(num, den, out=out, where=den != 0)
    return out


# --------------------------------------------------------------------------- multiclass


def accuracy(y_true: Any, y_pred: Any) -> float:
    """Fraction of examples whose predicted label equals the true label: mean(y_true == y_pred).

    >>> accuracy([0, 1, 2, 2], [0, 2, 2, 2])
    0.75
    """
    y_true, y_pred, _ = _check_pair(y_true, y_pred, None)
    return float(np.mean(y_true == y_pred))


def confusion_matrix(y_true: Any, y_pred: Any, n_classes: int | None = None) -> np.ndarray:
    """Counts C[i, j] = number of examples of true class i predicted as class j.

    Shape (n_classes, n_classes), dtype int64; rows = true class, columns = predicted class
    (scikit-learn's layout). The diagonal holds the correct predictions. Computed with one
    np.bincount over the pair index i * n_classes + j.

    >>> confusion_matrix([0, 1, 2, 2], [0, 2, 2, 2])
    array([[1, 0, 0],
           [0, 0, 1],
           [0, 0, 2]])
    """
    y_true, y_pred, n = _check_pair(y_true, y_pred, n_classes)
    counts = np.bincount(y_true * n + y_pred, minlength=n * n)
    return counts.reshape(n, n).astype(np.int64, copy=False)


def support(y_true: Any, n_classes: int | None = None) -> np.ndarray:
    """Number of examples of each true class, support_k = count(y_true == k); int64, (n_classes,).

    >>> support([0, 2, 2], n_classes=4)
    array([1, 0, 2, 0])
    """
    y_true, _, n = _check_pair(y_true, y_true, n_classes)
    return np.bincount(y_true, minlength=n).astype(np.int64, copy=False)


def _prf_from_cm(cm: np.ndarray, average: str | None, pos_label: int = 1) -> tuple:
    """Precision, recall, F1 from a confusion matrix; see precision_recall_f1."""
    tp = np.diag(cm)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    if average == "micro":
        tp, fp, fn = tp.sum(), fp.sum(), fn.sum()
    precision = _safe_divide(tp, tp + fp)
    recall = _safe_divide(tp, tp + fn)
    f1 = _safe_divide(2 * tp, 2 * tp + fp + fn)
    if average is None:
        return precision, recall, f1
    if average == "micro":
        return float(precision), float(recall), float(f1)
    if average == "binary":
        return float(precision[pos_label]), float(recall[pos_label]), float(f1[pos_label])
    weights = None if average == "macro" else tp + fn  # "weighted": by support
    return tuple(float(np.average(m, weights=weights)) for m in (precision, recall, f1))


def precision_recall_f1(
    y_true: Any,
    y_pred: Any,
    n_classes: int | None = None,
    average: str | None = None,
    pos_label: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | tuple[float, float, float]:
    """Precision, recall and F1 score, per class or averaged.

    Per class k (see the module docstring for TP, FP, FN):
        precision_k = TP_k / (TP_k + FP_k)
        recall_k    = TP_k / (TP_k + FN_k)
        f1_k        = 2 TP_k / (2 TP_k + FP_k + FN_k)
    with 0 wherever the denominator is 0.

    average:
        None       three float64 arrays of shape (n_classes,)
        "macro"    plain mean over the classes of each per-class array (every class counts
                   the same, including classes absent from y_true, which score 0)
        "weighted" mean over the classes weighted by support_k (the number of true examples)
        "micro"    the ratios computed on TP, FP, FN summed over the classes; for single-label
                   multiclass data all three equal the accuracy
        "binary"   the values of class pos_label only; labels must be 0/1 (n_classes 2)
    The averaged forms return three Python floats. As in scikit-learn, the macro and weighted F1
    are averages of the per-class F1, not the F1 of the averaged precision and recall.

    >>> p, r, f1 = precision_recall_f1([0, 0, 1, 1], [0, 1, 1, 1])
    >>> p.tolist(), r.tolist()
    ([1.0, 0.6666666666666666], [0.5, 1.0])
    >>> precision_recall_f1([0, 0, 1, 1], [0, 1, 1, 1], average="binary")
    (0.6666666666666666, 1.0, 0.8)
    """
    if average not in AVERAGES:
        raise ValueError(f"unknown average {average!r}; expected one of {AVERAGES}")
    if average == "binary":
        if pos_label not in (0, 1):
            raise ValueError(f"pos_label must be 0 or 1 with average='binary', got {pos_label!r}")
        if n_classes is None:
            n_classes = 2
        elif n_classes != 2:
            raise ValueError(
                f"average='binary' needs two classes, got n_classes={n_classes}; "
                "use average=None, 'macro', 'micro' or 'weighted' for multiclass data"
            )
    return _prf_from_cm(confusion_matrix(y_true, y_pred, n_classes), average, pos_label)


def per_class_accuracy(y_true: Any, y_pred: Any, n_classes: int | None = None) -> np.ndarray:
    """Per class k, the fraction of the examples of class k that are predicted as k.

        per_class_accuracy_k = C[k, k] / sum of row k of C = TP_k / support_k

    This is the recall of class k (the diagonal of the row-normalised confusion matrix), which
    is what labs usually mean by "per-class accuracy" ("the model gets 92 % of the sneakers
    right"). A class absent from y_true gets 0. For the accuracy of the binary problem
    "k or not k", see one_vs_rest_accuracy.

    >>> per_class_accuracy([0, 0, 1, 1], [0, 1, 1, 1]).tolist()
    [0.5, 1.0]
    """
    cm = confusion_matrix(y_true, y_pred, n_classes)
    return _safe_divide(np.diag(cm), cm.sum(axis=1))


def one_vs_rest_accuracy(y_true: Any, y_pred: Any, n_classes: int | None = None) -> np.ndarray:
    """Per class k, the accuracy of the binary problem "is it k or not" over all N examples.

        one_vs_rest_accuracy_k = (TP_k + TN_k) / N = 1 - (FP_k + FN_k) / N

    Beware: the true negatives dominate when there are many classes. With 10 balanced classes
    a model that never predicts k still scores 0.9 for k, so this is rarely the number you want;
    per_class_accuracy (the recall) is.

    >>> one_vs_rest_accuracy([0, 0, 1, 2], [0, 1, 1, 2]).tolist()
    [0.75, 0.75, 1.0]
    """
    cm = confusion_matrix(y_true, y_pred, n_classes)
    tp = np.diag(cm)
    errors = cm.sum(axis=0) + cm.sum(axis=1) - 2 * tp  # FP_k + FN_k
    return 1.0 - errors / cm.sum()


def most_confused_pairs(
    cm: Any, k: int = 5, class_names: list[str] | None = None
) -> list[tuple[Any, Any, int]]:
    """The k largest off-diagonal counts of a confusion matrix, as (true, predicted, count).

    Largest count first; equal counts keep row-major order (smaller true class first, then
    smaller predicted class). Pairs with a count of 0 are not confusions and are left out, so
    fewer than k tuples may come back. With class_names, true and predicted are names instead
    of class indices.

    >>> cm = [[5, 2, 0], [3, 4, 1], [0, 3, 6]]
    >>> most_confused_pairs(cm, k=3)
    [(1, 0, 3), (2, 1, 3), (0, 1, 2)]
    >>> most_confused_pairs(cm, k=1, class_names=["shirt", "T-shirt", "coat"])
    [('T-shirt', 'shirt', 3)]
    """
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"cm must be a square 2-D confusion matrix, got shape {cm.shape}")
    if cm.dtype.kind not in "iu" or (cm < 0).any():
        raise ValueError("cm must hold non-negative integer counts")
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 0:
        raise ValueError(f"k must be a non-negative integer, got {k!r}")
    n = cm.shape[0]
    if class_names is not None and len(class_names) != n:
        raise ValueError(f"class_names has {len(class_names)} names for {n} classes")
    off = cm.astype(np.int64).ravel()
    off[:: n + 1] = 0  # the diagonal: correct predictions
    order = np.argsort(-off, kind="stable")[:k]
    order = order[off[order] > 0]
    names = list(range(n)) if class_names is None else list(class_names)
    return [(names[i // n], names[i % n], int(off[i])) for i in order.tolist()]


# --------------------------------------------------------------------------- text report


def classification_report(
    y_true: Any,
    y_pred: Any,
    n_classes: int | None = None,
    target_names: list[str] | None = None,
    digits: int = 2,
    output_dict: bool = False,
) -> str | dict[str, Any]:
    """A per-class table of precision, recall, f1-score and support, in scikit-learn's layout.

    One row per class, then "accuracy" (its value in the f1-score column, the total support
    after it), "macro avg" and "weighted avg" (see precision_recall_f1). target_names label the
    rows (default: "0", "1", ...); if given without n_classes, n_classes = len(target_names).
    digits is the number of decimals in the text.

    With output_dict=True, return instead {row name: {"precision": ., "recall": ., "f1-score": .,
    "support": .}, ..., "accuracy": float} with full-precision values (ready for metrics.json),
    as scikit-learn does; support is an int here (scikit-learn gives a float).

    >>> print(classification_report([0, 0, 1, 1], [0, 1, 1, 1], target_names=["cat", "dog"]))
                  precision    recall  f1-score   support
    <BLANKLINE>
             cat       1.00      0.50      0.67         2
             dog       0.67      1.00      0.80         2
    <BLANKLINE>
        accuracy                           0.75         4
       macro avg       0.83      0.75      0.73         4
    weighted avg       0.83      0.75      0.73         4
    <BLANKLINE>
    """
    if n_classes is None and target_names is not None:
        n_classes = len(target_names)
    y_true, y_pred, n = _check_pair(y_true, y_pred, n_classes)
    if target_names is None:
        target_names = [str(i) for i in range(n)]
    elif len(target_names) != n:
        raise ValueError(f"target_names has {len(target_names)} names for {n} classes")
    target_names = [str(name) for name in target_names]

    headers = ["precision", "recall", "f1-score", "support"]
    cm = confusion_matrix(y_true, y_pred, n)
    p, r, f1 = _prf_from_cm(cm, None)
    s = cm.sum(axis=1)
    total = int(s.sum())
    averages = {
        "accuracy": _prf_from_cm(cm, "micro"),  # micro averages = accuracy here
        "macro avg": _prf_from_cm(cm, "macro"),
        "weighted avg": _prf_from_cm(cm, "weighted"),
    }

    if output_dict:
        report: dict[str, Any] = {
            name: dict(zip(headers, [float(p[i]), float(r[i]), float(f1[i]), int(s[i])], strict=True))
            for i, name in enumerate(target_names)
        }
        for heading, values in averages.items():
            report[heading] = dict(zip(headers, [*values, total], strict=True))
        report["accuracy"] = report["accuracy"]["f1-score"]
        return report

    width = max(max(len(name) for name in target_names), len("weighted avg"), digits)
    head_fmt = "{:>{width}s} " + " {:>9}" * len(headers)
    row_fmt = "{:>{width}s} " + " {:>9.{digits}f}" * 3 + " {:>9}\n"
    text = head_fmt.format("", *headers, width=width) + "\n\n"
    for i, name in enumerate(target_names):
        text += row_fmt.format(name, p[i], r[i], f1[i], s[i], width=width, digits=digits)
    text += "\n"
    acc_fmt = "{:>{width}s} " + " {:>9}" * 2 + " {:>9.{digits}f}" + " {:>9}\n"
    text += acc_fmt.format("accuracy", "", "", averages["accuracy"][2], total, width=width, digits=digits)
    for heading in ("macro avg", "weighted avg"):
        text += row_fmt.format(heading, *averages[heading], total, width=width, digits=digits)
    return text


# --------------------------------------------------------------------------- binary scores


def _check_binary_scores(y_true: Any, y_score: Any) -> tuple[np.ndarray, np.ndarray]:
    y_true = _as_labels(y_true, "y_true")
    y_score = np.asarray(y_score)
    if y_score.ndim != 1:
        raise ValueError(
            f"y_score must be 1-D (one score per example, for the positive class), got shape {y_score.shape}"
        )
    if len(y_true) != len(y_score):
        raise ValueError(f"y_true and y_score have different lengths: {len(y_true)} and {len(y_score)}")
    if y_score.dtype.kind not in "biuf":
        raise ValueError(f"y_score must be real numbers, got dtype {y_score.dtype}")
    y_score = y_score.astype(np.float64)
    if not np.isfinite(y_score).all():
        raise ValueError("y_score contains NaN or infinite values")
    if ((y_true != 0) & (y_true != 1)).any():
        raise ValueError(f"y_true must hold binary labels 0/1, found {np.unique(y_true)[:5].tolist()}")
    n_pos = int(y_true.sum())
    if n_pos == 0 or n_pos == len(y_true):
        raise ValueError(
            f"y_true contains only class {int(y_true[0])}: the ROC curve needs both "
            "positive and negative examples"
        )
    return y_true, y_score


def _binary_counts(y_true: np.ndarray, y_score: np.ndarray) -> tuple[np.ndarray, ...]:
    """Cumulative false and true positive counts at each distinct score, highest score first."""
    order = np.argsort(y_score, kind="stable")[::-1]
    y_score = y_score[order]
    y_true = y_true[order]
    # the last index of each run of equal scores: ties enter the curve together
    last = np.r_[np.flatnonzero(np.diff(y_score)), len(y_score) - 1]
    tps = np.cumsum(y_true)[last]
    fps = last + 1 - tps
    return fps, tps, y_score[last]


def roc_curve(
    y_true: Any, y_score: Any, drop_intermediate: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ROC curve: false and true positive rates when predicting 1 for y_score >= threshold.

        fpr[i] = (number of negatives with score >= thresholds[i]) / (number of negatives)
        tpr[i] = (number of positives with score >= thresholds[i]) / (number of positives)

    y_true holds 0/1 labels (both present), y_score one real score per example (higher means
    more likely positive). As in scikit-learn, thresholds are the distinct scores in decreasing
    order, preceded by inf so that the curve starts at (0, 0); it ends at (1, 1). Tied scores
    move the curve diagonally in one step. With drop_intermediate=True (scikit-learn's default)
    points lying on a straight segment between their neighbours are dropped: the curve and its
    area are unchanged, only the arrays are shorter.

    >>> fpr, tpr, thresholds = roc_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> fpr.tolist(), tpr.tolist(), thresholds.tolist()
    ([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0], [inf, 0.8, 0.4, 0.35, 0.1])
    """
    y_true, y_score = _check_binary_scores(y_true, y_score)
    fps, tps, thresholds = _binary_counts(y_true, y_score)
    if drop_intermediate and len(fps) > 2:
        # keep a point when the slope changes there (nonzero second difference) and the ends
        keep = np.r_[True, (np.diff(fps, 2) != 0) | (np.diff(tps, 2) != 0), True]
        fps, tps, thresholds = fps[keep], tps[keep], thresholds[keep]
    fps = np.r_[0, fps]
    tps = np.r_[0, tps]
    thresholds = np.r_[np.inf, thresholds]
    return fps / fps[-1], tps / tps[-1], thresholds


def roc_auc_score(y_true: Any, y_score: Any) -> float:
    """Area under the ROC curve, by the trapezoid rule.

    It equals the probability that a random positive example scores higher than a random
    negative one, ties counting 1/2 (the Mann-Whitney U statistic divided by P * N):

        AUC = (#{pairs pos > neg} + 0.5 #{pairs pos == neg}) / (P * N)

    The trapezoids are summed on integer counts and divided once, so the result is exactly
    (2 #{pos > neg} + #{pos == neg}) / (2 P N) rounded to a float.

    >>> roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    >>> roc_auc_score([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9])
    0.875
    """
    y_true, y_score = _check_binary_scores(y_true, y_score)
    fps, tps, _ = _binary_counts(y_true, y_score)
    fps = np.r_[0, fps]
    tps = np.r_[0, tps]
    # each trapezoid: width dFP, heights TP before and after; twice its area is an integer
    twice_area = int(np.sum(np.diff(fps) * (tps[1:] + tps[:-1])))
    return twice_area / (2 * int(tps[-1]) * int(fps[-1]))


# --------------------------------------------------------------------------- paired test


def mcnemar(correct_a: Any, correct_b: Any) -> tuple[float, float, int, int]:
    """McNemar's test: do two classifiers, run on the same examples, have different error rates?

    correct_a[i], correct_b[i] say whether classifier A, B got example i right (bool or 0/1).
    Only the examples where they disagree matter:
        b = #{A right, B wrong},   c = #{A wrong, B right}
    Under the null hypothesis (same error rate) each disagreement goes either way with
    probability 1/2, so b ~ Binomial(b + c, 1/2).

    - b + c < 25: exact test. statistic = min(b, c) and
          p = min(1, 2 * sum_{i=0..min(b,c)} comb(b + c, i) / 2**(b + c))
    - otherwise: chi-square test with 1 degree of freedom and continuity correction,
          statistic = (|b - c| - 1)**2 / (b + c),   p = erfc(sqrt(statistic / 2))
      (the textbook formula, as in statsmodels and mlxtend.)

    Returns (statistic, p_value, b, c). A small p (say < 0.05) means the difference in accuracy
    is unlikely to be luck on this test set.

    >>> mcnemar([1, 1, 1, 1, 0, 1], [0, 0, 0, 1, 1, 1])
    (1.0, 0.625, 3, 1)
    """
    a = _as_labels(correct_a, "correct_a")
    b_arr = _as_labels(correct_b, "correct_b")
    if len(a) != len(b_arr):
        raise ValueError(f"correct_a and correct_b have different lengths: {len(a)} and {len(b_arr)}")
    for name, arr in (("correct_a", a), ("correct_b", b_arr)):
        if ((arr != 0) & (arr != 1)).any():
            raise ValueError(f"{name} must be booleans or 0/1 (was example i classified right?)")
    b = int(np.sum((a == 1) & (b_arr == 0)))
    c = int(np.sum((a == 0) & (b_arr == 1)))
    n = b + c
    if n < 25:
        k = min(b, c)
        tail = sum(math.comb(n, i) for i in range(k + 1))  # P(X <= k) * 2**n, exact integers
        return float(k), min(1.0, 2 * tail / 2**n), b, c
    statistic = (abs(b - c) - 1) ** 2 / n
    return statistic, math.erfc(math.sqrt(statistic / 2)), b, c


# --------------------------------------------------------------------------- paired comparisons


def _paired_runs(correct_a: Any, correct_b: Any) -> tuple[np.ndarray, np.ndarray]:
    """Two 0/1 arrays of shape ``(runs, N)`` (one row for a 1-D input): was example i right in run s."""
    a, b = np.asarray(correct_a), np.asarray(correct_b)
    if a.shape != b.shape or a.ndim not in (1, 2) or a.size == 0:
        raise ValueError(f"correct_a {a.shape} and correct_b {b.shape}: need one shape, (N,) or (runs, N)")
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    for name, arr in (("correct_a", a), ("correct_b", b)):
        if ((arr != 0) & (arr != 1)).any():
            raise ValueError(f"{name} must be booleans or 0/1 (was example i classified right?)")
    return a.astype(np.int64), b.astype(np.int64)


def paired_exact_test(correct_a: Any, correct_b: Any) -> float:
    """Exact two-sided p-value of "A and B are equally good", from their answers on the same examples.

    correct_a, correct_b: ``(N,)`` for one trained classifier each, or ``(runs, N)`` for several
    (seeds) of each, all scored on the same N examples. Per example,

        k_i = (runs right with A) - (runs right with B),   T = sum_i k_i              (1)

    T is A's surplus of right answers. If A and B were equally good, swapping the names A and B
    on example i would be as likely as not, which flips the sign of k_i; the p-value is the share
    of the 2**n sign patterns of the n nonzero k_i whose sum is at least as far from 0 as T,
    counted exactly (the distribution of the sum is built one example at a time).

    With one run, k_i is +1 (A right, B wrong: b of them) or -1 (c of them), and this is
    McNemar's exact test, the binomial test of b ~ Binomial(b + c, 1/2), for any b + c (``mcnemar``
    switches to the chi-square approximation at b + c >= 25). With several runs it uses them all
    at once without treating runs scored on the same examples as independent.

    >>> paired_exact_test([1, 1, 1, 1, 0, 1], [0, 0, 0, 1, 1, 1])  # b = 3, c = 1
    0.625
    """
    a, b = _paired_runs(correct_a, correct_b)
    k = a.sum(axis=0) - b.sum(axis=0)  # (1)
    T = int(k.sum())
    k = np.abs(k[k != 0])
    total = int(k.sum())
    dist = np.zeros(2 * total + 1)  # dist[total + t] = P(sum of the signed k_i == t) under "equally good"
    dist[total] = 1.0
    for ki in k:  # the sum stays within [-total, total], so np.roll never wraps around
        dist = 0.5 * (np.roll(dist, ki) + np.roll(dist, -ki))
    values = np.arange(-total, total + 1)
    return float(min(1.0, dist[np.abs(values) >= abs(T)].sum()))


def error_rate_difference(
    correct_a: Any, correct_b: Any, confidence: float = 0.95
) -> tuple[float, float, float]:
    """Error rate of A minus error rate of B, with a paired confidence interval: ``(d, low, high)``.

    correct_a, correct_b as in ``paired_exact_test``: ``(N,)`` or ``(runs, N)``, run s of A paired
    with run s of B, all on the same N examples. With D[s, i] = (A wrong) - (B wrong) in {-1, 0, 1},

        d = mean over s and i of D[s, i]                                                  (1)

    d varies with the examples drawn (some are hard for A only) and with the runs (seeds). Its
    variance, for D = d + run effect + example effect + noise (variances s_run, s_ex, s_noise):

        Var(d) = s_run / runs + s_ex / N + s_noise / (runs N)                            (2)

    estimated from the spread of the run means r_s, of the example means m_i, and of what is left,
    R[s, i] = D[s, i] - r_s - m_i + d (each component at least 0, method of moments):

        s_noise = sum R**2 / ((runs - 1)(N - 1)),  s_run = var(r) - s_noise / N,
        s_ex = var(m) - s_noise / runs                                                    (3)

    and the interval is d +- z sqrt(Var(d)), z the normal quantile (1.96 for 95%). With one run
    (3) cannot separate the parts: Var(d) = var(D) / N, the usual paired interval for two
    classifiers on one test set, which says nothing about other seeds. With few runs and a large
    run-to-run spread the normal quantile makes the interval somewhat too narrow.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    a, b = _paired_runs(correct_a, correct_b)
    D = (1 - a) - (1 - b)
    runs, N = D.shape
    d = float(D.mean())  # (1)
    r, m = D.mean(axis=1), D.mean(axis=0)
    if runs == 1:
        var = m.var(ddof=1) / N if N > 1 else 0.0
    else:
        s_noise = ((D - r[:, None] - m[None, :] + d) ** 2).sum() / ((runs - 1) * (N - 1))  # (3)
        s_run = max(r.var(ddof=1) - s_noise / N, 0.0)
        s_ex = max(m.var(ddof=1) - s_noise / runs, 0.0)
        var = s_run / runs + s_ex / N + s_noise / (runs * N)  # (2)
    half = NormalDist().inv_cdf(0.5 + confidence / 2) * math.sqrt(var)
    return d, d - half, d + half
