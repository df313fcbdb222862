"""minidl.sklearn.MLPClassifier: scikit-learn's own estimator checks, agreement with scikit-learn's
MLPClassifier (update rule, loss, stopping rule, a grid search on real images), and the
scikit-learn machinery it must work in (GridSearchCV, cross_val_score, Pipeline, clone, pickle)."""

from __future__ import annotations

import math
import os
import pickle
import subprocess
import sys
import time
import unittest
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="scikit-learn is the optional extra `baselines`")

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score  # noqa: E402
from sklearn.neural_network import MLPClassifier as SkMLPClassifier  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402  (a dependency of scikit-learn)

from minidl.layers import Dense, ReLU, Tanh  # noqa: E402
from minidl.model import Sequential  # noqa: E402
from minidl.sklearn import MLPClassifier  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------------------------------------
# scikit-learn's estimator checks

# Every check runs. Two can only skip themselves in an environment without an optional package;
# any other skip fails this test:
SKIPPED_BY_ENVIRONMENT = {
    # Its first half (fit and predict on a list-like "NotAnArray") runs and passes; its second
    # half needs pandas, which neither minidl nor scikit-learn depends on, to build a DataFrame.
    "check_classifier_data_not_an_array": "pandas is not installed",
    # (check_array_api_input runs: see the monkeypatch below.)
}


def _check_name(check) -> str:
    return getattr(check, "func", check).__name__


@parametrize_with_checks(
    [
        # As constructed here, as scikit-learn's own tests construct its MLPClassifier
        # (max_iter=100): Adam with its default step on one hidden layer, and the softmax-only
        # model with plain SGD. Every fit in the checks is then a few milliseconds.
        MLPClassifier(hidden_layer_sizes=(10,), max_iter=100, random_state=0),
        MLPClassifier(
            hidden_layer_sizes=(), solver="sgd", learning_rate_init=0.1, max_iter=100, random_state=0
        ),
    ]
)
def test_sklearn_estimator_checks(estimator, check, monkeypatch):
    name = _check_name(check)
    if name.startswith("check_array_api"):
        # scikit-learn skips its array-API check unless SCIPY_ARRAY_API is set. With NumPy inputs
        # (the only namespace checked for an estimator without array-API support) it verifies
        # that turning array-API dispatch on changes no result; SciPy's own flag, read at import,
        # plays no part for NumPy arrays, so setting the variable for this check alone is enough.
        monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter=100 on purpose
        try:
            check(estimator)
        except unittest.SkipTest as skip:
            if name in SKIPPED_BY_ENVIRONMENT:
                pytest.skip(f"{name}: {SKIPPED_BY_ENVIRONMENT[name]} ({skip})")
            pytest.fail(f"{name} skipped itself, and it is not in SKIPPED_BY_ENVIRONMENT: {skip}")


# ---------------------------------------------------------------------------------------------
# the same algorithm as scikit-learn's MLPClassifier


def blobs(n=250, n_features=6, n_classes=3, seed=0):
    X, y = make_classification(
        n_samples=n,
        n_features=n_features,
        n_informative=4,
        n_redundant=0,
        n_classes=n_classes,
        n_clusters_per_class=1,
        random_state=seed,
    )
    return X, y


@pytest.mark.parametrize(("batch_size", "alpha"), [("auto", 0.5), (16, 0.0), (16, 1e-2)])
def test_one_epoch_matches_sklearns_update_and_loss(batch_size, alpha):
    """From the same weights, one epoch of plain SGD (examples in order, so the batches are the
    same) gives scikit-learn's weights and its ``loss_curve_`` entry. This pins down how
    ``alpha`` maps to weight decay (alpha / batch size, weights only, the last short batch
    included: 250 = 200 + 50 and 15 x 16 + 10) and what ``loss_curve_`` measures."""
    X, y = blobs()
    settings = dict(
        hidden_layer_sizes=(7, 5),
        activation="tanh",
        solver="sgd",
        momentum=0.0,
        alpha=alpha,
        batch_size=batch_size,
        learning_rate_init=0.05,
        shuffle=False,
        random_state=0,
    )
    ours = MLPClassifier(**settings).partial_fit(X, y, classes=np.unique(y))  # some non-trivial weights
    start = ([W.copy() for W in ours.coefs_], [b.copy() for b in ours.intercepts_])
    ours.partial_fit(X, y)

    theirs = SkMLPClassifier(**settings, max_iter=1, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs.fit(X, y)  # sets up its shapes; then start from our weights
        theirs.coefs_, theirs.intercepts_ = start
        theirs.fit(X, y)

    assert len(ours.coefs_) == len(theirs.coefs_) == 3
    for mine, sk in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_, strict=True):
        np.testing.assert_allclose(mine, sk, rtol=1e-10, atol=1e-12)
    assert ours.loss_curve_[-1] == pytest.approx(theirs.loss_curve_[-1], rel=1e-10)


def test_stopping_rule_matches_sklearn():
    """``tol`` larger than any possible improvement: epoch 1 improves on +inf, then scikit-learn
    stops once *more than* ``n_iter_no_change`` epochs in a row failed, so after 1 + 2 + 1 = 4."""
    X, y = blobs()
    settings = dict(hidden_layer_sizes=(5,), solver="sgd", tol=100.0, n_iter_no_change=2, random_state=0)
    ours = MLPClassifier(**settings).fit(X, y)
    theirs = SkMLPClassifier(**settings).fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ == 4
    assert len(ours.loss_curve_) == 4
    assert ours.best_loss_ == min(ours.loss_curve_)


def test_max_iter_warns_like_sklearn():
    X, y = blobs()
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(3\) reached"):
        est = MLPClassifier((5,), max_iter=3, random_state=0).fit(X, y)
    assert est.n_iter_ == 3 and len(est.loss_curve_) == 3


def test_early_stopping_keeps_the_best_epoch():
    """``validation_scores_`` has one accuracy per epoch and the weights are those of the first
    best one: training again for exactly that many epochs (same seed, so the same split, start
    and order) ends on the same weights."""
    X, y = blobs(n=300)
    settings = dict(
        hidden_layer_sizes=(8,),
        solver="sgd",
        learning_rate_init=0.5,
        batch_size=10,
        early_stopping=True,
        validation_fraction=0.2,
        n_iter_no_change=5,
        random_state=3,
    )
    est = MLPClassifier(**settings).fit(X, y)
    scores = est.validation_scores_
    assert len(scores) == est.n_iter_ == len(est.loss_curve_)
    assert est.best_loss_ is None and est.best_validation_score_ == max(scores)
    best_epoch = int(np.argmax(scores)) + 1
    assert best_epoch < est.n_iter_  # it did train past the best epoch, and went back
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        short = MLPClassifier(**{**settings, "max_iter": best_epoch}).fit(X, y)
    for a, b in zip(est.coefs_ + est.intercepts_, short.coefs_ + short.intercepts_, strict=True):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------------------
# fitted attributes


def test_fitted_attributes_and_the_minidl_model_inside():
    rng = np.random.default_rng(0)
    X = rng.random((60, 784), dtype=np.float32)  # image-sized rows
    y = np.arange(60) % 10
    est = MLPClassifier((50, 20), activation="tanh", max_iter=5, random_state=0)
    with pytest.warns(ConvergenceWarning):
        est.fit(X, y)
    model = est.model_
    assert isinstance(model, Sequential)
    assert [type(layer) for layer in model.layers] == [Dense, Tanh, Dense, Tanh, Dense]
    assert [W.shape for W in est.coefs_] == [(784, 50), (50, 20), (20, 10)]
    assert [b.shape for b in est.intercepts_] == [(50,), (20,), (10,)]
    assert est.coefs_[0] is model.layers[0].W.value  # the model's own arrays, not copies
    assert est.coefs_[0].dtype == np.float32  # float32 in, float32 inside
    assert est.coefs_[0][:, 7].reshape(28, 28).shape == (28, 28)  # a hidden unit's weight image
    assert est.n_features_in_ == 784 and est.n_layers_ == 4 and est.n_outputs_ == 10
    assert est.classes_.tolist() == list(range(10))
    assert len(est.loss_curve_) == est.n_iter_ == 5 and est.t_ == 5 * 60
    assert est.loss_ == est.loss_curve_[-1] and est.validation_scores_ is None
    assert all(math.isfinite(v) for v in est.loss_curve_)
    P = est.predict_proba(X)
    assert P.shape == (60, 10) and np.allclose(P.sum(axis=1), 1)
    np.testing.assert_allclose(est.predict_log_proba(X), np.log(P), rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(est.predict(X), est.classes_[P.argmax(axis=1)])


def test_softmax_only_model_and_the_loss_curve_falls():
    X, y = blobs()
    est = MLPClassifier((), solver="sgd", learning_rate_init=0.1, max_iter=30, tol=0, random_state=0)
    with pytest.warns(ConvergenceWarning):
        est.fit(X, y)
    assert len(est.model_.layers) == 1 and [W.shape for W in est.coefs_] == [(6, 3)]
    assert est.loss_curve_[-1] < 0.6 * est.loss_curve_[0]
    assert est.score(X, y) > 0.8


def test_string_labels_and_two_classes_use_two_softmax_outputs():
    X, y01 = blobs(n_classes=2)
    y = np.where(y01 == 1, "dog", "cat")
    est = MLPClassifier((4,), solver="adam", learning_rate_init=0.05, max_iter=50, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    assert est.classes_.tolist() == ["cat", "dog"]
    assert est.coefs_[-1].shape == (4, 2) and est.predict_proba(X[:3]).shape == (3, 2)
    assert set(est.predict(X)) <= {"cat", "dog"} and est.score(X, y) > 0.8


def test_partial_fit_with_classes():
    X, y = blobs()
    est = MLPClassifier((5,), random_state=0)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        est.partial_fit(X, y)
    first = y != 2  # the first chunk lacks class 2: the output layer still needs its unit
    est.partial_fit(X[first], y[first], classes=[2, 0, 1])
    assert est.classes_.tolist() == [0, 1, 2] and est.coefs_[-1].shape == (5, 3)
    assert est.n_iter_ == 1 and est.t_ == first.sum() and len(est.loss_curve_) == 1
    W = est.coefs_[0].copy()
    est.partial_fit(X, y)  # continues from the current weights
    assert est.n_iter_ == 1 and est.t_ == first.sum() + len(X) and len(est.loss_curve_) == 2
    assert not np.array_equal(W, est.coefs_[0])
    assert est.predict_proba(X).shape == (len(X), 3)
    with pytest.raises(ValueError, match="differ from classes_"):
        est.partial_fit(X, y, classes=[0, 1])
    with pytest.raises(ValueError, match=r"labels \[7\] not in classes_"):
        est.partial_fit(X[:3], np.array([0, 1, 7]))
    with pytest.raises(ValueError, match="early_stopping"):
        MLPClassifier(early_stopping=True).partial_fit(X, y, classes=[0, 1, 2])


def test_same_seed_same_network_and_different_seed_different():
    X, y = blobs()

    def weights(seed):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return MLPClassifier((6,), max_iter=3, random_state=seed).fit(X, y).coefs_[0]

    np.testing.assert_array_equal(weights(1), weights(1))
    assert not np.array_equal(weights(1), weights(2))


def test_verbose_prints_sklearns_lines_to_stderr(capsys):
    X, y = blobs()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        MLPClassifier((3,), max_iter=2, verbose=True, random_state=0).fit(X, y)
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("Iteration ") == 2 and "Iteration 2, loss = " in err


def test_unfitted_and_bad_settings_are_refused_with_their_names():
    X, y = blobs()
    with pytest.raises(NotFittedError):
        MLPClassifier().predict(X)
    bad = {
        "solver": ("lbfgs", "no L-BFGS"),
        "activation": ("softplus", "activation must be one of"),
        "hidden_layer_sizes": ((10, 0), "hidden_layer_sizes must be positive ints"),
        "batch_size": (0, "batch_size must be 'auto' or a positive int"),
        "alpha": (-1.0, "alpha must be a number >= 0"),
        "momentum": (1.0, r"momentum must be a number in \[0, 1\)"),
        "max_iter": (0, "max_iter must be an int >= 1"),
        "validation_fraction": (1.0, r"validation_fraction must be a number in \(0, 1\)"),
    }
    for name, (value, message) in bad.items():
        with pytest.raises(ValueError, match=message):
            MLPClassifier(**{name: value}).fit(X, y)
    with pytest.raises(ValueError, match="only one class"):
        MLPClassifier().fit(X, np.zeros(len(X)))
    with np.errstate(over="ignore", invalid="ignore"), pytest.raises(ValueError, match="diverged"):
        MLPClassifier((5,), solver="sgd", learning_rate_init=1e6, momentum=0.0, random_state=0).fit(
            X * 1e3, y
        )


# ---------------------------------------------------------------------------------------------
# inside scikit-learn's machinery


def test_grid_search_cross_val_score_and_pipeline():
    X, y = blobs(n=200)
    X = X * 50 + 100  # badly scaled on purpose: the pipeline's StandardScaler fixes it
    base = MLPClassifier(solver="sgd", learning_rate_init=0.1, max_iter=40, random_state=0)
    pipe = make_pipeline(StandardScaler(), base)
    grid = {"mlpclassifier__hidden_layer_sizes": [(), (8,)], "mlpclassifier__alpha": [1e-4, 1e-1]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gs = GridSearchCV(pipe, grid, cv=3).fit(X, y)
        scores = cross_val_score(clone(base).set_params(hidden_layer_sizes=(8,)), X / 50 - 2, y, cv=3)
    assert len(gs.cv_results_["params"]) == 4 and gs.best_params_ in gs.cv_results_["params"]
    assert gs.best_score_ > 0.8 and gs.score(X, y) > 0.8
    assert isinstance(gs.best_estimator_[-1].model_, Sequential)
    assert scores.shape == (3,) and scores.mean() > 0.7


def test_clone_and_pickle():
    X, y = blobs()
    est = MLPClassifier((6,), max_iter=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    assert [type(layer) for layer in est.model_.layers] == [Dense, ReLU, Dense]  # relu by default
    twin = clone(est)
    assert twin.get_params() == est.get_params() and not hasattr(twin, "model_")
    copy = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(copy.predict_proba(X), est.predict_proba(X))
    assert copy.loss_curve_ == est.loss_curve_
    assert copy.coefs_[0] is copy.model_.layers[0].W.value  # still one array after unpickling
    copy.partial_fit(X, y)  # and it trains on, optimiser state included
    assert len(copy.loss_curve_) == len(est.loss_curve_) + 1


def test_import_without_sklearn_names_the_extra_and_minidl_does_not_import_it():
    code = (
        "import sys\n"
        "import minidl\n"
        "assert 'minidl.sklearn' not in sys.modules and 'sklearn' not in sys.modules\n"
        "sys.modules['sklearn'] = None  # `import sklearn` now raises ImportError\n"
        "try:\n"
        "    import minidl.sklearn\n"
        "except ImportError as err:\n"
        "    print(err)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert 'pip install "minidl[baselines]"' in done.stdout and "optional extra" in done.stdout


# ---------------------------------------------------------------------------------------------
# the lab's grid search on real images, both implementations

LAB_GRID = {"hidden_layer_sizes": [(10,), (25,), (50,), (25, 10), (50, 25, 10)]}
LAB_SETTINGS = dict(solver="sgd", learning_rate_init=0.1, alpha=1e-4, max_iter=50, random_state=0)
TOLERANCE = 0.05


@pytest.mark.slow
def test_lab_grid_search_on_500_images_matches_sklearn(fashion_mnist_dir):
    """The lab's 5-fold grid search over the architectures of ``experiments.hyperparams`` on
    500 training images (stratified, every class at least 10 times, pixels in [0, 1]), with
    scikit-learn's MLPClassifier and minidl's, same grid, same settings, same folds.

    Tolerance: the best mean cross-validated accuracies differ by at most 0.05. Why that much:
    the two draw different initial weights (scikit-learn also draws its biases) and different
    example orders from different generators, with 80 validation images per fold. On 400
    training images the spread from the seed alone is of that order: one example is 1.25
    points of a fold and the std over folds is 1 to 13 points here. Beyond that a gap would
    mean a different algorithm, which ``test_one_epoch_matches_sklearns_update_and_loss`` rules
    out step by step. scikit-learn runs with ``nesterovs_momentum=False``: minidl's momentum
    is the classical one (both use momentum 0.9, batches of 'auto' = 200).
    """
    from minidl.data import scale_pixels
    from minidl.datasets import load_fashion_mnist
    from minidl.model_selection import stratified_subsample

    (X_all, y_all), _ = load_fashion_mnist(fashion_mnist_dir)
    idx = stratified_subsample(y_all, 500, rng=0, min_per_class=10)
    X, y = scale_pixels(X_all[idx]), y_all[idx]
    folds = StratifiedKFold(n_splits=5)
    results = {}
    for name, est in [
        ("scikit-learn", SkMLPClassifier(nesterovs_momentum=False, **LAB_SETTINGS)),
        ("minidl", MLPClassifier(**LAB_SETTINGS)),
    ]:
        started = time.perf_counter()
        # One BLAS thread: for 200 x 784 products threading costs more than it saves (README).
        with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            gs = GridSearchCV(est, LAB_GRID, cv=folds).fit(X, y)
        results[name] = (gs, time.perf_counter() - started)

    print(f"\n{'hidden_layer_sizes':<20}" + "".join(f"{name:>26}" for name in results))
    for i, params in enumerate(LAB_GRID["hidden_layer_sizes"]):
        cells = "".join(
            f"{gs.cv_results_['mean_test_score'][i]:>15.3f} +- {gs.cv_results_['std_test_score'][i]:.3f}"
            f" ({gs.cv_results_['rank_test_score'][i]})"
            for gs, _ in results.values()
        )
        print(f"{params!s:<20}{cells}")
    print(f"{'time (s)':<20}" + "".join(f"{seconds:>26.1f}" for _, seconds in results.values()))

    (sk, _), (ours, _) = results.values()
    for gs in (sk, ours):  # both learned something real (chance is 0.10)
        assert gs.best_score_ > 0.65
    assert abs(ours.best_score_ - sk.best_score_) <= TOLERANCE
