"""scikit-learn's ``MLPClassifier``, rebuilt from minidl's pieces, usable wherever scikit-learn
expects a classifier: ``GridSearchCV``, ``cross_val_score``, a ``Pipeline``, ``clone``, pickle.

scikit-learn is an optional extra: ``pip install "minidl[baselines]"``. ``import minidl`` does not
import this module; ``import minidl.sklearn`` without scikit-learn raises an ``ImportError`` that
says how to install it.

What ``MLPClassifier(...).fit(X, y)`` does, step by step, in minidl's words:

1. **Labels.** ``classes_ = np.unique(y)`` (any labels: strings, 0/1, -1/+1 ...); each label is
   replaced by its index in ``classes_``, the integer class that ``SoftmaxCrossEntropy`` takes.
2. **Model.** ``Sequential([Dense(n_features, h1), ReLU(), Dense(h1, h2), ReLU(), ...,
   Dense(h_last, n_classes)])``: one ``Dense`` per entry of ``hidden_layer_sizes``, each followed
   by the activation, then an output ``Dense`` with one logit per class. ``hidden_layer_sizes=()``
   leaves the output layer alone: the softmax-only model (multinomial logistic regression).
3. **Start.** Weights drawn uniformly from ``[-a, a]`` with ``a = sqrt(6 / (n_in + n_out))``
   (Glorot; ``sqrt(2 / (n_in + n_out))`` for ``activation='logistic'``), as scikit-learn does.
4. **Loss.** Softmax cross-entropy on the logits (``SoftmaxCrossEntropy``), plus the L2 penalty
   ``alpha``. For a mini-batch of ``n_b`` examples scikit-learn minimises

       L_b = (1/n_b) sum_n -log P[n, y_n]  +  (alpha / (2 n_b)) sum_layers ||W||^2       (1)

   (biases are not penalised). The gradient of the penalty is ``(alpha / n_b) W``, which is
   exactly what minidl's optimisers add with ``weight_decay``: ``g = grad + weight_decay * W``.
   So ``alpha`` maps to ``weight_decay = alpha / n_b`` on the weights and 0 on the biases
   (two optimisers of the same kind, one per group). With ``alpha=1e-4`` and batches of 200 that
   is a weight decay of 5e-7: ``alpha`` is a much weaker knob than the same number as a weight decay.
5. **Updates.** Every epoch visits the examples in a fresh random order (``shuffle=True``) in
   mini-batches of ``batch_size`` (``'auto'`` is ``min(200, n_samples)``); each batch is minidl's
   four lines: forward, loss, backward, ``optimizer.step()``. ``solver='sgd'`` is ``SGD(lr,
   momentum)`` at a constant learning rate, ``solver='adam'`` is ``Adam(lr, betas, eps)``.
6. **Monitoring and stopping.** ``loss_curve_[i]`` is epoch ``i``'s batch losses (1), averaged
   with each batch weighted by its size: the losses seen *during* the epoch, while the weights
   move (not the loss after the epoch, which minidl's ``History`` records). Training stops when
   the loss has failed to drop below ``best_loss_ - tol`` for more than ``n_iter_no_change``
   epochs in a row, or after ``max_iter`` epochs (with a ``ConvergenceWarning``). With
   ``early_stopping=True`` a stratified ``validation_fraction`` of the data is held out, the
   rule watches its accuracy (``validation_scores_``, must rise above the best by ``tol``), and
   the weights of the best epoch are restored at the end.

``predict_proba`` is the softmax of the logits, ``predict`` the label of the largest one. The
fitted minidl model is ``model_``; ``coefs_[i]`` and ``intercepts_[i]`` are the very arrays of its
``i``-th ``Dense`` layer (``W`` of shape ``(n_in, n_out)`` and ``b``), so ``coefs_[0][:, k]``
reshaped to 28x28 is the weight image of hidden unit ``k``.

Where it differs from scikit-learn's ``MLPClassifier``, on purpose or for lack of a use here:

- Two classes get two softmax outputs, not one sigmoid output: the same model family (the
  softmax of two logits is the sigmoid of their difference), so ``coefs_[-1]`` has 2 columns.
- Biases start at zero (minidl's rule) instead of being drawn like the weights.
- Momentum is classical ("heavy ball", scikit-learn's ``nesterovs_momentum=False``) and the
  learning rate stays constant (its ``learning_rate='constant'``); no ``lbfgs`` solver.
- Adam adds ``epsilon`` to ``sqrt(v_hat)`` (minidl's ``Adam``); scikit-learn adds it to
  ``sqrt(v)``, i.e. a slightly larger epsilon early on. Negligible at the default 1e-8.
- ``random_state=None`` draws fresh entropy; NumPy's global random state is never used.
  An int seeds three independent streams: initial weights, example order, validation split.
- Computation happens in float32 when ``X`` is float32, else in float64 (as scikit-learn).
- Not supported: ``sample_weight`` (``fit`` has no such argument, so scikit-learn's checks skip
  the sample-weight checks), multi-label targets, sparse input, ``warm_start``.
- ``verbose`` lines (``Iteration 3, loss = 0.52``) go to stderr, like minidl's progress.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Iterator, Sequence

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted
except ImportError as err:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "minidl.sklearn needs scikit-learn, which is an optional extra of minidl: install it with "
        '`pip install "minidl[baselines]"` (or `pip install scikit-learn`).'
    ) from err

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data
except ImportError:  # pragma: no cover - older scikit-learn

    def validate_data(estimator, X, y="no_validation", **kwargs):
        return estimator._validate_data(X, y, **kwargs)


from minidl.data import batches
from minidl.layers import Dense, Layer, ReLU, Sigmoid, Tanh, softmax
from minidl.losses import SoftmaxCrossEntropy
from minidl.model import Sequential
from minidl.model_selection import stratified_split
from minidl.optim import SGD, Adam, Optimizer
from minidl.train import predict as model_outputs

__all__ = ["MLPClassifier"]

ACTIVATIONS: dict[str, type[Layer] | None] = {
    "identity": None,
    "logistic": Sigmoid,
    "tanh": Tanh,
    "relu": ReLU,
}
SOLVERS = ("sgd", "adam")


def glorot_uniform_logistic(shape: tuple[int, ...], rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
    """U(-a, a) with a = sqrt(2/(fan_in + fan_out)): scikit-learn's start for logistic units.

    A third of Glorot's usual bound, sqrt(6/(fan_in + fan_out)), because the sigmoid's slope at
    0 is 1/4 rather than 1.
    """
    limit = np.sqrt(2.0 / (shape[0] + shape[1]))
    return rng.uniform(-limit, limit, size=shape).astype(dtype, copy=False)


def seed_sequence(random_state) -> np.random.SeedSequence:
    """A ``SeedSequence`` from scikit-learn's ``random_state``: None (fresh entropy), an int, a
    ``np.random.RandomState`` or a ``np.random.Generator`` (both are advanced, so each ``fit``
    draws new numbers, as in scikit-learn)."""
    if random_state is None:
        return np.random.SeedSequence()
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be a non-negative int, got {random_state}")
        return np.random.SeedSequence(int(random_state))
    if isinstance(random_state, np.random.RandomState):
        return np.random.SeedSequence(int(random_state.randint(np.iinfo(np.int32).max)))
    if isinstance(random_state, np.random.Generator):
        return np.random.SeedSequence(int(random_state.integers(2**63)))
    raise ValueError(
        f"random_state must be None, an int, a np.random.RandomState or a Generator, got {random_state!r}"
    )


class MLPClassifier(ClassifierMixin, BaseEstimator):
    """A multi-layer perceptron classifier with scikit-learn's names, trained by minidl.

    The module docstring says what ``fit`` does, step by step. Parameters, as in scikit-learn:

    hidden_layer_sizes: units of each hidden layer, e.g. ``(100,)`` or ``(50, 25)``; ``()`` for the
        softmax-only model; an int ``h`` means ``(h,)``.
    activation: of the hidden layers: ``'relu'``, ``'tanh'``, ``'logistic'`` (sigmoid) or
        ``'identity'`` (none).
    solver: ``'sgd'`` (``minidl.optim.SGD`` with ``momentum``) or ``'adam'`` (``minidl.optim.Adam``).
    alpha: L2 penalty (1): ``weight_decay = alpha / batch size`` on the weights, none on biases.
    batch_size: examples per update; ``'auto'`` is ``min(200, n_samples)``; larger than the data
        is clipped to it with a warning.
    learning_rate_init: the (constant) step size ``lr``.
    max_iter: at most this many epochs (passes over the data).
    shuffle: draw a fresh order of the examples every epoch (else they go in order).
    random_state: None, an int, a ``RandomState`` or a ``Generator`` (see ``seed_sequence``).
    tol, n_iter_no_change: stop once the training loss (or, with early stopping, the validation
        accuracy) has not improved by at least ``tol`` for more than ``n_iter_no_change`` epochs.
    verbose: print the loss of every epoch (to stderr).
    momentum: SGD's momentum ``mu`` in ``v = mu v + g; W -= lr v``; must be in [0, 1).
    early_stopping, validation_fraction: hold out that fraction (stratified) and stop on its accuracy.
    beta_1, beta_2, epsilon: Adam's decay rates and its guard against division by zero.

    Fitted attributes: ``classes_``, ``n_features_in_``, ``model_`` (the minidl ``Sequential``),
    ``coefs_``, ``intercepts_``, ``loss_`` (last epoch), ``loss_curve_``, ``best_loss_`` (None with
    early stopping), ``validation_scores_`` and ``best_validation_score_`` (None without),
    ``n_iter_`` (epochs of the last ``fit`` or ``partial_fit`` call), ``t_`` (examples seen),
    ``n_layers_``, ``n_outputs_``, ``out_activation_``.

    Logical OR with string labels, by the softmax-only model:

    >>> X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 5)
    >>> y = ["no", "yes", "yes", "yes"] * 5
    >>> clf = MLPClassifier((), solver="sgd", learning_rate_init=0.5, random_state=0).fit(X, y)
    >>> clf.predict([[0, 0], [1, 1]]).tolist(), clf.classes_.tolist()
    (['no', 'yes'], ['no', 'yes'])
    >>> [W.shape for W in clf.coefs_], clf.model_.layers
    ([(2, 2)], [Dense(2, 2)])
    """

    def __init__(
        self,
        hidden_layer_sizes: int | Sequence[int] = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 0.0001,
        batch_size: int | str = "auto",
        learning_rate_init: float = 0.001,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state=None,
        tol: float = 1e-4,
        verbose: bool | int = False,
        momentum: float = 0.9,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int = 10,
    ) -> None:
        # scikit-learn's rule: __init__ only stores the arguments; fit checks them.
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.momentum = momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change

    # ---- the scikit-learn API ---------------------------------------------------------------
    def fit(self, X, y) -> MLPClassifier:
        """Train a new network on ``(X, y)`` for up to ``max_iter`` epochs; returns ``self``."""
        return self._fit(X, y, incremental=False)

    def partial_fit(self, X, y, classes=None) -> MLPClassifier:
        """One epoch over ``(X, y)``, continuing from the current weights and optimiser state.

        The first call (on an unfitted estimator) needs ``classes``, every label that will ever
        appear, because the output layer has one unit per class; ``y`` need not contain them all.
        """
        if self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True (no held-out data to watch)")
        fitted = hasattr(self, "model_")
        if classes is not None:
            classes = np.unique(np.asarray(classes))
            if fitted and not np.array_equal(classes, self.classes_):
                raise ValueError(f"classes={classes.tolist()} differ from classes_={self.classes_.tolist()}")
        elif not fitted:
            raise ValueError("classes must be passed on the first call to partial_fit")
        return self._fit(X, y, incremental=True, classes=classes)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities ``(n_samples, n_classes)``, columns in the order of ``classes_``:
        the softmax of the network's logits."""
        return softmax(self._logits(X))

    def predict_log_proba(self, X) -> np.ndarray:
        """``log(predict_proba(X))``, computed from the logits by log-sum-exp (no log of 0)."""
        Z = self._logits(X)
        Z = Z - Z.max(axis=1, keepdims=True)
        return Z - np.log(np.exp(Z).sum(axis=1, keepdims=True))

    def predict(self, X) -> np.ndarray:
        """The label (from ``classes_``) of the largest logit, for each row of ``X``."""
        Z = self._logits(X)  # first: it raises NotFittedError before classes_ exists
        return self.classes_[Z.argmax(axis=1)]

    def _logits(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, dtype=(np.float64, np.float32), reset=False)
        return model_outputs(self.model_, X)

    # ---- training ---------------------------------------------------------------------------
    def _fit(self, X, y, *, incremental: bool, classes: np.ndarray | None = None) -> MLPClassifier:
        hidden = self._check_params()
        first = not incremental or not hasattr(self, "model_")
        X, y = validate_data(self, X, y, dtype=(np.float64, np.float32), reset=first)
        check_classification_targets(y)
        if first:
            self.classes_ = np.unique(y) if classes is None else classes
            if len(self.classes_) < 2:
                raise ValueError(
                    f"y has only one class ({self.classes_[0]!r}): a classifier needs at least 2 classes "
                    "to learn to tell apart"
                )
            self._build(X.shape[1], hidden, X.dtype)
        unknown = np.setdiff1d(np.unique(y), self.classes_)
        if unknown.size:
            raise ValueError(f"y has labels {unknown.tolist()} not in classes_={self.classes_.tolist()}")
        codes = np.searchsorted(self.classes_, y)  # label -> its index in classes_

        X_val = codes_val = None
        if self.early_stopping:
            train_idx, val_idx = stratified_split(codes, self.validation_fraction, rng=self._split_rng)
            if len(val_idx) < 2:
                raise ValueError(
                    f"the validation set is too small ({len(val_idx)} examples): raise "
                    f"validation_fraction={self.validation_fraction} or give more data"
                )
            X, X_val, codes, codes_val = X[train_idx], X[val_idx], codes[train_idx], codes[val_idx]

        n = len(X)
        if self.batch_size == "auto":
            batch_size = min(200, n)
        else:
            if self.batch_size > n:
                warnings.warn(
                    f"batch_size={self.batch_size} is larger than the {n} training examples; "
                    f"using {n} (full-batch gradient descent)",
                    stacklevel=3,
                )
            batch_size = min(self.batch_size, n)

        epochs = 1 if incremental else self.max_iter
        best_state = None
        self.n_iter_ = 0
        for _ in range(epochs):
            self.loss_ = self._epoch(X, codes, batch_size)
            self.n_iter_ += 1
            self.t_ += n
            self.loss_curve_.append(self.loss_)
            if self.verbose:
                print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}", file=sys.stderr)
            if not math.isfinite(self.loss_):
                raise ValueError(
                    f"training diverged: the loss became {self.loss_} in epoch {self.n_iter_}. "
                    "Try a smaller learning_rate_init, or scale the inputs (e.g. StandardScaler)."
                )
            if self.early_stopping:
                score = float(np.mean(model_outputs(self.model_, X_val).argmax(axis=1) == codes_val))
                self.validation_scores_.append(score)
                if self.verbose:
                    print(f"Validation score: {score:.6f}", file=sys.stderr)
                improved = score >= self.best_validation_score_ + self.tol
                if score > self.best_validation_score_:
                    self.best_validation_score_ = score
                    best_state = self.model_.state_dict()
            else:
                improved = self.loss_ <= self.best_loss_ - self.tol
                self.best_loss_ = min(self.best_loss_, self.loss_)
            self._no_improvement_count = 0 if improved else self._no_improvement_count + 1
            if self._no_improvement_count > self.n_iter_no_change:  # scikit-learn's rule: more than
                watched = "Validation score" if self.early_stopping else "Training loss"
                if self.verbose:
                    print(
                        f"{watched} did not improve more than tol={self.tol} for "
                        f"{self.n_iter_no_change} consecutive epochs. Stopping.",
                        file=sys.stderr,
                    )
                break
        else:
            if not incremental:
                warnings.warn(
                    f"Maximum iterations ({self.max_iter}) reached and the optimization hasn't "
                    "converged yet.",
                    ConvergenceWarning,
                    stacklevel=3,
                )
        if best_state is not None:
            self.model_.load_state_dict(best_state)  # in place: coefs_ still show the model's arrays
        return self

    def _build(self, n_features: int, hidden: tuple[int, ...], dtype: np.dtype) -> None:
        """A fresh network, its two optimisers and random streams, and empty training records."""
        init_seq, order_seq, split_seq = seed_sequence(self.random_state).spawn(3)
        init_rng = np.random.default_rng(init_seq)
        init = glorot_uniform_logistic if self.activation == "logistic" else "glorot_uniform"
        units = (n_features, *hidden, len(self.classes_))
        Act = ACTIVATIONS[self.activation]
        layers: list[Layer] = []
        for i, (n_in, n_out) in enumerate(zip(units[:-1], units[1:], strict=True)):
            layers.append(Dense(n_in, n_out, init=init, rng=init_rng, dtype=dtype))
            if Act is not None and i < len(hidden):
                layers.append(Act())
        self.model_ = Sequential(layers)
        dense = [layer for layer in layers if isinstance(layer, Dense)]
        self.coefs_ = [layer.W.value for layer in dense]  # the model's own arrays, updated in place
        self.intercepts_ = [layer.b.value for layer in dense]
        self._optimizers = (
            self._make_optimizer([layer.W for layer in dense]),  # weight_decay set per batch (1)
            self._make_optimizer([layer.b for layer in dense]),  # biases: no penalty
        )
        self._order_rng = np.random.default_rng(order_seq)
        self._split_rng = np.random.default_rng(split_seq)
        self.n_layers_ = len(units)
        self.n_outputs_ = len(self.classes_)
        self.out_activation_ = "softmax"
        self.t_ = 0
        self.loss_curve_ = []
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_, self.best_validation_score_, self.best_loss_ = [], -np.inf, None
        else:
            self.validation_scores_, self.best_validation_score_, self.best_loss_ = None, None, np.inf

    def _make_optimizer(self, params) -> Optimizer:
        if self.solver == "sgd":
            return SGD(params, lr=self.learning_rate_init, momentum=self.momentum)
        return Adam(params, lr=self.learning_rate_init, betas=(self.beta_1, self.beta_2), eps=self.epsilon)

    def _epoch(self, X: np.ndarray, codes: np.ndarray, batch_size: int) -> float:
        """One pass over the data; returns scikit-learn's epoch loss: the batch losses (1),
        weighted by batch size, averaged over the examples."""
        loss = SoftmaxCrossEntropy()
        weights_opt, biases_opt = self._optimizers
        total = 0.0
        for Xb, yb in self._batches(X, codes, batch_size):
            n_b = len(Xb)
            L = loss.forward(self.model_.forward(Xb), yb)  # mean cross-entropy of the batch
            L += 0.5 * self.alpha * sum(float(np.vdot(W, W)) for W in self.coefs_) / n_b  # (1)
            self.model_.backward(loss.backward(), input_grad=False)  # every .grad = dCE/dparameter
            weights_opt.weight_decay = self.alpha / n_b  # adds (alpha / n_b) W, the gradient of the penalty
            weights_opt.step()
            biases_opt.step()
            total += L * n_b
        return total / len(X)

    def _batches(self, X: np.ndarray, codes: np.ndarray, batch_size: int) -> Iterator[tuple]:
        if self.shuffle:
            return batches(X, codes, batch_size, self._order_rng)
        return ((X[i : i + batch_size], codes[i : i + batch_size]) for i in range(0, len(X), batch_size))

    def _check_params(self) -> tuple[int, ...]:
        """Refuse bad settings with a message naming them; returns the hidden sizes as a tuple."""
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if isinstance(sizes, (int, np.integer)) else tuple(sizes)
        if not all(isinstance(h, (int, np.integer)) and not isinstance(h, bool) and h > 0 for h in sizes):
            raise ValueError(f"hidden_layer_sizes must be positive ints, got {self.hidden_layer_sizes!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if self.solver not in SOLVERS:
            extra = " (minidl has no L-BFGS; use 'sgd' or 'adam')" if self.solver == "lbfgs" else ""
            raise ValueError(f"solver must be one of {SOLVERS}, got {self.solver!r}{extra}")
        if self.batch_size != "auto" and not _is_int(self.batch_size, minimum=1):
            raise ValueError(f"batch_size must be 'auto' or a positive int, got {self.batch_size!r}")
        for name, minimum in (("max_iter", 1), ("n_iter_no_change", 1)):
            if not _is_int(getattr(self, name), minimum):
                raise ValueError(f"{name} must be an int >= {minimum}, got {getattr(self, name)!r}")
        checks = {  # name: (holds, what it must be)
            "alpha": (lambda v: v >= 0, ">= 0"),
            "tol": (lambda v: v >= 0, ">= 0"),
            "learning_rate_init": (lambda v: v > 0, "> 0"),
            "epsilon": (lambda v: v > 0, "> 0"),
            "momentum": (lambda v: 0 <= v < 1, "in [0, 1)"),
            "beta_1": (lambda v: 0 <= v < 1, "in [0, 1)"),
            "beta_2": (lambda v: 0 <= v < 1, "in [0, 1)"),
            "validation_fraction": (lambda v: 0 < v < 1, "in (0, 1)"),
        }
        for name, (holds, what) in checks.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not holds(value):
                raise ValueError(f"{name} must be a number {what}, got {value!r}")
        return tuple(int(h) for h in sizes)


def _is_int(value, minimum: int) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= minimum
