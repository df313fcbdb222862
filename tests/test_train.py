"""``fit`` on small random arrays: the history it returns, determinism, divergence, input errors and
progress output. Each test trains for a handful of epochs on at most 64 examples."""

from __future__ import annotations

import json

import numpy as np
import pytest

from minidl import (
    MSE,
    SGD,
    CrossEntropy,
    Dense,
    Dropout,
    Flatten,
    ReLU,
    Sequential,
    Sigmoid,
    SigmoidBinaryCrossEntropy,
    Softmax,
    SoftmaxCrossEntropy,
    Tanh,
    evaluate,
    fit,
)
from minidl.train import History

N, D, K = 64, 5, 3


def make_data(n=N, seed=0):
    """Features ``(n, D)`` float32 and labels in ``0..K-1`` that depend on them (learnable)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, D)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0.5)
    return X, y


def make_model(seed=0):
    return Sequential([Dense(D, 8, rng=seed), ReLU(), Dense(8, K, rng=seed + 1)])


def train(model=None, X=None, y=None, *, epochs=3, batch_size=16, lr=0.1, validation=True, **kwargs):
    model = model if model is not None else make_model()
    if X is None:
        X, y = make_data()
    kwargs.setdefault("rng", 0)
    kwargs.setdefault("verbose", 0)
    history = fit(
        model,
        X,
        y,
        loss=SoftmaxCrossEntropy(),
        optimizer=SGD(model.parameters(), lr=lr),
        epochs=epochs,
        batch_size=batch_size,
        validation_data=make_data(32, seed=1) if validation else None,
        **kwargs,
    )
    return model, history


def same_weights(a: Sequential, b: Sequential) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(np.array_equal(sa[k], sb[k]) for k in sa)


# ---- the history ------------------------------------------------------------------------------


def test_history_starts_before_the_first_update():
    X, y = make_data()
    untrained = evaluate(make_model(), X, y, SoftmaxCrossEntropy())
    _, history = train(epochs=4)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 4 + 1 for v in history.history.values())
    assert history.epoch == [0, 1, 2, 3, 4]
    assert history.history["loss"][0] == untrained["loss"]
    assert history.history["accuracy"][0] == untrained["accuracy"]
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert len(history.epoch_time) == 4
    assert history.stop_reason is None and not history.diverged


def test_running_train_metrics_are_the_batch_mean_keras_style():
    """train_metrics="running": each epoch's loss is the batch-size-weighted mean of its batch
    losses (64 = 16+16+16+16 here: the plain mean), accuracy likewise; entry 0 and the validation
    metrics stay exact, and training itself is unchanged."""
    exact_model, exact = train(epochs=3)
    model, running = train(epochs=3, train_metrics="running")
    assert same_weights(model, exact_model) and running.step_loss == exact.step_loss
    steps = running.params["steps_per_epoch"]
    for e in (1, 2, 3):
        batch_losses = running.step_loss[(e - 1) * steps : e * steps]
        assert running.history["loss"][e] == pytest.approx(np.mean(batch_losses), rel=1e-12)
        assert 0 <= running.history["accuracy"][e] <= 1
    for key in ("val_loss", "val_accuracy"):
        assert running.history[key] == exact.history[key]
    assert running.history["loss"][0] == exact.history["loss"][0]
    assert running.params["train_metrics"] == "running"


def test_running_loss_lags_the_exact_one():
    """With the full batch the lag is a whole epoch: the only batch of epoch e is scored with the
    weights from before its update, i.e. the end of epoch e - 1; the exact curve is one ahead."""
    _, exact = train(epochs=3, batch_size=None, validation=False)
    _, running = train(epochs=3, batch_size=None, validation=False, train_metrics="running")
    for e in (1, 2, 3):
        assert running.history["loss"][e] == pytest.approx(exact.history["loss"][e - 1], rel=1e-6)
        assert running.history["accuracy"][e] == exact.history["accuracy"][e - 1]
    with pytest.raises(ValueError, match="train_metrics"):
        train(epochs=1, train_metrics="keras")


def test_without_validation_data_there_are_no_val_keys():
    _, history = train(epochs=1, validation=False)
    assert set(history.history) == {"loss", "accuracy"}


def test_zero_epochs_only_measures():
    model, history = train(epochs=0)
    assert history.epoch == [0] and history.step_loss == []
    assert same_weights(model, make_model())


def test_history_json_round_trip():
    _, history = train(epochs=2)
    text = history.to_json()
    again = History.from_dict(json.loads(text))
    assert again.to_dict() == history.to_dict()
    assert again.to_json() == text


@pytest.mark.parametrize(
    ("batch_size", "steps"), [(None, 1), (1, 64), (16, 4), (32, 2), (48, 2), (64, 1), (100, 1)]
)
def test_steps_per_epoch(batch_size, steps):
    _, history = train(epochs=2, batch_size=batch_size, validation=False)
    assert history.params["steps_per_epoch"] == steps
    assert len(history.step_loss) == 2 * steps


# ---- randomness -------------------------------------------------------------------------------


def test_same_rng_gives_bit_identical_runs():
    global_state = np.random.get_state()
    expected_next = np.random.random()  # the next global draw, if nothing else draws
    np.random.set_state(global_state)
    model_a, a = train(rng=7)
    model_b, b = train(rng=np.random.default_rng(7))  # a seed or the Generator it seeds
    assert same_weights(model_a, model_b)
    assert a.history == b.history
    assert a.step_loss == b.step_loss
    assert np.random.random() == expected_next, "fit touched NumPy's global random state"


def test_different_rng_gives_a_different_run():
    model_a, a = train(rng=7)
    model_b, b = train(rng=8)
    assert not same_weights(model_a, model_b)
    assert a.step_loss[0] != b.step_loss[0]  # a different first batch
    assert a.history["loss"][0] == b.history["loss"][0]  # the same starting point


# ---- divergence -------------------------------------------------------------------------------


def mse_case():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N, D)).astype(np.float32)
    return Sequential([Dense(D, 1, rng=0)]), X, rng.normal(size=(N, 1)).astype(np.float32), MSE()


def softmax_case():
    X, y = make_data()
    return make_model(), 100 * X, y, SoftmaxCrossEntropy()


@pytest.mark.parametrize("case", [mse_case, softmax_case])
def test_a_diverging_run_stops_and_returns_its_history(case):
    model, X, y, loss = case()
    with np.errstate(all="ignore"):  # the overflow is the point of the test
        history = fit(
            model,
            X,
            y,
            loss=loss,
            optimizer=SGD(model.parameters(), lr=1e6),
            epochs=5,
            batch_size=8,
            verbose=0,
        )
    assert history.diverged
    assert history.stopped_epoch == 1
    step = len(history.step_loss)
    assert 1 < step <= N // 8
    assert f"at epoch 1, step {step}" in history.stop_reason
    assert "learning rate" in history.stop_reason
    assert not np.isfinite(history.step_loss[-1])
    # the diverged epoch is not measured: the history keeps only finite, complete entries
    assert history.epoch == [0]
    assert all(len(v) == 1 and np.isfinite(v[0]) for v in history.history.values())


# ---- bad input --------------------------------------------------------------------------------


def bad_inputs():
    X, y = make_data()
    X_nan = X.copy()
    X_nan[3, 1] = np.nan
    y_big = y.copy()
    y_big[5] = K
    return {
        "wrong width": (
            (np.hstack([X, X[:, :1]]), y),
            {},
            ValueError,
            r"expects input of shape \(N, 5\), got \(64, 6\)",
        ),
        "label out of range": (
            (X, y_big),
            {},
            ValueError,
            r"labels must lie in \[0, 2\] for 3 classes; found \[3\]",
        ),
        "float labels": (
            (X, y.astype(np.float64)),
            {},
            TypeError,
            r"labels must be integers, got dtype float64",
        ),
        "NaN in X": ((X_nan, y), {}, ValueError, r"X contains NaN or inf \(first at index \(3, 1\)\)"),
        "length mismatch": ((X, y[:-1]), {}, ValueError, "X has 64 examples but its labels have 63"),
        "empty": ((X[:0], y[:0]), {}, ValueError, "X is empty"),
        "NaN in X_val": ((X, y), {"validation_data": (X_nan, y)}, ValueError, "X_val contains NaN"),
        "validation not a pair": ((X, y), {"validation_data": (X,)}, ValueError, r"pair \(X_val, y_val\)"),
        "negative epochs": ((X, y), {"epochs": -1}, ValueError, "epochs must be >= 0, got -1"),
    }


@pytest.mark.parametrize("case", list(bad_inputs()))
def test_bad_input_is_a_clear_error_and_trains_nothing(case):
    (X, y), kwargs, error, message = bad_inputs()[case]
    model = make_model()
    kwargs = {
        "loss": SoftmaxCrossEntropy(),
        "optimizer": SGD(model.parameters(), lr=0.1),
        "epochs": 2,
        **kwargs,
    }
    with pytest.raises(error, match=message):
        fit(model, X, y, verbose=0, **kwargs)
    assert same_weights(model, make_model())


LAYERS = [Dense(D, 2, rng=0), ReLU(), Sigmoid(), Tanh(), Softmax(), Flatten(), Dropout(0.5, rng=0)]


@pytest.mark.parametrize("layer", LAYERS, ids=repr)
def test_backward_before_forward_names_the_layer(layer):
    message = rf"{type(layer).__name__}\.backward\(\) called before forward\(\)"
    with pytest.raises(RuntimeError, match=message):
        Sequential([layer]).backward(np.ones((4, 2), dtype=np.float32))


@pytest.mark.parametrize(
    "loss", [SoftmaxCrossEntropy(), CrossEntropy(), MSE(), SigmoidBinaryCrossEntropy()], ids=repr
)
def test_loss_backward_before_forward(loss):
    with pytest.raises(RuntimeError, match=rf"{type(loss).__name__}\.backward\(\) called before forward\(\)"):
        loss.backward()


# ---- progress output --------------------------------------------------------------------------


def test_verbose_2_prints_one_plain_line_per_epoch(capsys):
    train(epochs=3, verbose=2)
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 3 + 1 and err.endswith("\n")
    assert lines[0].startswith("epoch 0/3") and "(before training)" in lines[0]
    assert all(line.startswith(f"epoch {i}/3") for i, line in enumerate(lines))
    assert not any(c in err for c in "\r\b\x1b")


def test_default_verbosity_off_a_terminal_is_a_line_per_epoch(capsys):
    train(epochs=2, verbose=None)
    _, err = capsys.readouterr()
    assert len(err.splitlines()) == 2 + 1 and "\r" not in err


def test_verbose_0_prints_nothing(capsys):
    train(epochs=2, verbose=0)
    assert capsys.readouterr() == ("", "")


def test_verbose_1_redraws_a_live_line(capsys):
    train(epochs=2, verbose=1)
    out, err = capsys.readouterr()
    assert out == ""
    assert "\r" in err and "loss" in err
    assert err.count("\n") == 2 + 1  # still one finished line per epoch


def test_bad_batch_size_and_verbose_are_named():
    model = Sequential([Dense(3, 2, rng=0)])
    X, y = np.zeros((4, 3), np.float32), np.array([0, 1, 0, 1])
    opt = SGD(model.parameters(), lr=0.1)
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="batch_size"):
            fit(model, X, y, loss=SoftmaxCrossEntropy(), optimizer=opt, epochs=1, batch_size=bad, verbose=0)
    with pytest.raises(ValueError, match="verbose"):
        fit(model, X, y, loss=SoftmaxCrossEntropy(), optimizer=opt, epochs=1, verbose=3)
