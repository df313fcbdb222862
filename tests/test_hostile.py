"""Mistakes a real user makes, each of which used to give a silent wrong result or a raw traceback.

Every test here is one reproduction: before the fix it trained on garbage, kept the worst epoch,
served a damaged cache or failed deep inside NumPy; now it is a clear error, raised before any
work is done, that names the argument and what it accepts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from minidl import (
    SGD,
    Adam,
    Callback,
    CrossEntropy,
    Dense,
    EarlyStopping,
    ModelCheckpoint,
    ReduceLROnPlateau,
    ReLU,
    Sequential,
    Softmax,
    SoftmaxCrossEntropy,
    evaluate,
    fit,
    predict,
)
from minidl.datasets import cache_dir, load_fashion_mnist
from minidl.train import History


def report_setting(seed: int = 0) -> tuple[Sequential, np.ndarray, np.ndarray]:
    """The setting of the report: 50 examples, 20 features, 3 classes, one Dense layer."""
    X = np.random.default_rng(seed).random((50, 20)).astype("f4")
    return Sequential([Dense(20, 3, rng=0)]), X, np.arange(50) % 3


def unchanged(model: Sequential, before: dict[str, np.ndarray]) -> bool:
    return all(np.array_equal(before[k], v) for k, v in model.state_dict().items())


def train(model, X, y, **kwargs):
    kwargs.setdefault("loss", SoftmaxCrossEntropy())
    kwargs.setdefault("optimizer", SGD(model.parameters(), lr=0.1))
    kwargs.setdefault("epochs", 2)
    kwargs.setdefault("rng", 0)
    return fit(model, X, y, verbose=0, **kwargs)


# ---- silent wrong results ---------------------------------------------------------------------


def test_optimizer_holding_another_models_parameters_is_refused():
    m, X, y = report_setting()
    before = m.state_dict()
    other = Sequential([Dense(20, 3, rng=1)])
    message = r"optimizer does not hold this model's parameters: create it with SGD\(model\.parameters\(\)"
    with pytest.raises(ValueError, match=message):
        train(m, X, y, optimizer=SGD(other.parameters(), lr=0.1), epochs=3)
    assert unchanged(m, before)

    deep = Sequential([Dense(20, 8, rng=0), ReLU(), Dense(8, 3, rng=1)])
    mixed = [*deep.layers[0].parameters(), *other.parameters()]
    with pytest.raises(ValueError, match=r"\(2 of its 4 are not\)"):
        train(deep, X, y, optimizer=Adam(mixed))
    # A subset of the model's own parameters is fine: the others stay frozen.
    frozen = deep.layers[0].W.value.copy()
    history = train(deep, X, y, optimizer=SGD(deep.layers[2].parameters(), lr=0.5), epochs=5)
    assert np.array_equal(deep.layers[0].W.value, frozen)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_cross_entropy_given_logits_points_to_softmax_cross_entropy():
    m, X, y = report_setting()
    before = m.state_dict()
    message = r"but row 0 (sums to|has the entry) .*use SoftmaxCrossEntropy"
    with pytest.raises(ValueError, match=message) as err:
        train(m, 10 * X, y, loss=CrossEntropy(), epochs=3)
    assert "CrossEntropy expects probabilities" in str(err.value)
    assert unchanged(m, before)
    with pytest.raises(ValueError, match=r"row 1 has the entry -0\.5"):
        CrossEntropy().forward(np.array([[0.5, 0.5], [1.5, -0.5]]), np.array([0, 1]))
    # Probabilities pass, from a float32 softmax over many classes too.
    P = Softmax().forward(np.random.default_rng(0).normal(size=(64, 1000)).astype(np.float32) * 5)
    assert np.isfinite(CrossEntropy().forward(P, np.arange(64)))
    softmax_model = Sequential([Dense(20, 3, rng=0), Softmax()])
    history = train(softmax_model, X, y, loss=CrossEntropy(), epochs=5)
    assert 0 < history.history["loss"][-1] < history.history["loss"][0]


def text_with_nan(X):
    S = X.astype(str)
    S[3, 4] = "nan"
    return S


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (text_with_nan, r"X must hold real numbers, got dtype <U\d+ \(text\); convert it with X\.astype"),
        (lambda X: X.astype(object), r"X must hold real numbers, got dtype object \(Python objects\)"),
        (lambda X: X.astype(np.complex64), r"X has dtype complex64: complex numbers are not supported"),
    ],
    ids=["text", "objects", "complex"],
)
@pytest.mark.parametrize("call", ["fit", "evaluate", "predict"])
def test_inputs_that_are_not_real_numbers_are_refused(make, message, call):
    m, X, y = report_setting()
    before = m.state_dict()
    with pytest.raises(TypeError, match=message):
        if call == "fit":
            train(m, make(X), y)
        elif call == "evaluate":
            evaluate(m, make(X), y, SoftmaxCrossEntropy())
        else:
            predict(m, make(X))
    assert unchanged(m, before)


@pytest.mark.parametrize("dtype", [np.uint8, np.int64])
def test_raw_pixels_ask_for_scale_pixels(dtype):
    m, X, y = report_setting()
    pixels = (X * 255).round().astype(dtype)
    with pytest.raises(ValueError, match=r"look like raw pixels.*Scale your pixels .* minidl\.scale_pixels"):
        evaluate(m, pixels, y, SoftmaxCrossEntropy())
    with pytest.raises(ValueError, match="scale_pixels"):
        train(m, X, y, validation_data=(pixels, y))
    # 0/1 integer features are not pixels: they are accepted.
    assert set(evaluate(m, (X > 0.5).astype(dtype), y, SoftmaxCrossEntropy())) == {"loss", "accuracy"}


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: EarlyStopping("val_loss", mode="max"),
            r"EarlyStopping: mode='max' contradicts monitor 'val_loss', whose name says lower is "
            r"better \(mode='min'\); leave mode=None to follow the name",
        ),
        (
            lambda: ModelCheckpoint("unused.npz", monitor="val_accuracy", mode="min"),
            r"ModelCheckpoint: mode='min' contradicts monitor 'val_accuracy', whose name says higher",
        ),
        (
            lambda: ReduceLROnPlateau(SGD(report_setting()[0].parameters()), "loss", mode="max"),
            r"ReduceLROnPlateau: mode='max' contradicts monitor 'loss'",
        ),
    ],
    ids=["EarlyStopping", "ModelCheckpoint", "ReduceLROnPlateau"],
)
def test_mode_contradicting_the_metric_name_is_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()
    # The mode the name implies, and any mode for a name that says nothing, are accepted.
    assert EarlyStopping("val_loss", mode="min").mode == "min"
    assert ModelCheckpoint("unused.npz", monitor="val_margin", mode="max").mode == "max"
    assert EarlyStopping("val_neg_log_loss", mode="max").mode == "max"  # scikit-learn's negated loss


def test_damaged_npy_cache_is_rebuilt_from_the_checked_file(fashion_mnist_dir: Path, isolated_data_env):
    (_, _), (X_test, y_test) = load_fashion_mnist()  # decodes and fills the cache
    [saved] = cache_dir().glob("t10k-images-*.npy")
    np.save(saved, np.zeros_like(X_test))  # same shape and dtype, newer than the source
    (_, _), (X_again, _) = load_fashion_mnist()
    np.testing.assert_array_equal(X_again, X_test)
    assert X_again.any()
    np.testing.assert_array_equal(np.load(saved), X_test)  # the copy was rebuilt

    [labels] = cache_dir().glob("t10k-labels-*.npy")
    np.save(labels, np.zeros_like(y_test))
    for sidecar in cache_dir().glob("t10k-labels-*.crc32"):
        sidecar.unlink()  # no checksum: the copy is not trusted either
    (_, _), (_, y_again) = load_fashion_mnist()
    np.testing.assert_array_equal(y_again, y_test)
    assert list(cache_dir().glob("t10k-labels-*.npy.crc32"))


# ---- failing early, and keeping what was done -----------------------------------------------


def test_unwritable_checkpoint_folder_fails_before_training(tmp_path):
    m, X, y = report_setting()
    before = m.state_dict()
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the checkpoint folder should be")
    path = blocker / "ckpt" / "best.npz"
    message = r"ModelCheckpoint cannot write .*not-a-folder.* is not a writable folder"
    with pytest.raises(OSError, match=message):
        train(m, X, y, callbacks=[ModelCheckpoint(path, monitor="loss")])
    assert unchanged(m, before)
    assert m.history.epoch == [0]
    # A folder that does not exist yet is fine: it is made at the first save, and the probe
    # leaves nothing behind.
    train(m, X, y, callbacks=[ModelCheckpoint(tmp_path / "new" / "best.npz", monitor="loss")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new", "not-a-folder"]
    assert [p.name for p in (tmp_path / "new").iterdir()] == ["best.npz"]


class FailAt(Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        if epoch == self.epoch:
            raise RuntimeError("disk full")


class FlakyLoss(SoftmaxCrossEntropy):
    """Fails on its ``n``-th forward call."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.calls, self.n = 0, n

    def forward(self, Z, y):
        self.calls += 1
        if self.calls == self.n:
            raise FloatingPointError("overflow in the loss")
        return super().forward(Z, y)


def test_failed_fit_keeps_its_history_in_model_history():
    m, X, y = report_setting()
    with pytest.raises(RuntimeError, match="disk full") as err:
        train(m, X, y, epochs=5, callbacks=[FailAt(2)])
    history = m.history
    assert isinstance(history, History)
    assert history.epoch == [0, 1, 2] and len(history.history["loss"]) == 3
    assert history.stop_reason == "failed during epoch 2: RuntimeError: disk full"
    assert history.stopped_epoch == 2
    assert err.value.__notes__ == ["fit: the history up to this error is in model.history"]
    assert all(layer.training for layer in m.layers)  # its mode is restored

    # A loss failing mid-epoch: calls 1 (epoch 0 score), 2-5 (epoch 1, batch size 16), 6 (score).
    m, X, y = report_setting()
    m.eval()
    with pytest.raises(FloatingPointError):
        train(m, X, y, epochs=3, batch_size=16, loss=FlakyLoss(8))
    assert m.history.epoch == [0, 1] and len(m.history.step_loss) == 5
    assert m.history.stop_reason.startswith("failed during epoch 2: FloatingPointError")
    assert not any(layer.training for layer in m.layers)
    assert train(m, X, y).epoch == m.history.epoch == [0, 1, 2]  # each fit records its own


# ---- argument messages ----------------------------------------------------------------------

MODEL_X_Y = report_setting()


def call_fit(**kwargs):
    m, X, y = report_setting()
    return train(m, X, y, **kwargs)


ARGUMENTS = {
    "Dense(0, 3)": (
        lambda: Dense(0, 3),
        ValueError,
        r"Dense: n_in must be a positive integer \(the number of input features\), got 0 \(int\)",
    ),
    "Dense(-1, 3)": (lambda: Dense(-1, 3), ValueError, r"Dense: n_in must be a positive integer .* got -1"),
    "Dense(3, 2.0)": (lambda: Dense(3, 2.0), ValueError, r"Dense: n_out must be a positive integer"),
    "rng=-1": (
        lambda: Dense(2, 3, rng=-1),
        ValueError,
        r"rng must be None \(fresh entropy\), a seed \(an int >= 0\), a numpy SeedSequence or a numpy "
        r"Generator, got -1 \(int\)",
    ),
    "rng='abc'": (lambda: call_fit(rng="abc"), TypeError, r"rng must be None .* got 'abc' \(str\)"),
    "epochs=2.5": (
        lambda: call_fit(epochs=2.5),
        ValueError,
        r"epochs must be a whole number >= 0 \(0 only measures the model\), got 2\.5 \(float\)",
    ),
    "epochs=True": (lambda: call_fit(epochs=True), ValueError, r"epochs must be a whole number"),
    "lr='0.1'": (
        lambda: SGD(MODEL_X_Y[0].parameters(), lr="0.1"),
        TypeError,
        r"lr must be a positive number such as 0\.1, got '0\.1' \(str\)",
    ),
    "predict(batch_size=0)": (
        lambda: predict(*MODEL_X_Y[:2], batch_size=0),
        ValueError,
        r"batch_size must be a positive integer \(rows per forward pass\), got 0 \(int\)",
    ),
    "loss='mse'": (
        lambda: call_fit(loss="mse"),
        TypeError,
        r"loss must be a minidl\.losses\.Loss instance \(SoftmaxCrossEntropy\(\), CrossEntropy\(\), "
        r"MSE\(\), SigmoidBinaryCrossEntropy\(\)\), got 'mse' \(str\); write loss=minidl\.losses\.MSE\(\)",
    ),
    "loss=SoftmaxCrossEntropy": (
        lambda: evaluate(*MODEL_X_Y, SoftmaxCrossEntropy),
        TypeError,
        r"got the class SoftmaxCrossEntropy; write loss=SoftmaxCrossEntropy\(\)",
    ),
    "optimizer=None": (
        lambda: call_fit(optimizer=None),
        TypeError,
        r"optimizer must be a minidl\.optim Optimizer built on this model, such as "
        r"SGD\(model\.parameters\(\), lr=0\.1\), got None",
    ),
    "callbacks=[42]": (
        lambda: call_fit(callbacks=[42]),
        TypeError,
        r"callbacks\[0\] is 42 \(int\), not a Callback instance \(such as EarlyStopping\(\)\)",
    ),
    "callbacks=[EarlyStopping]": (
        lambda: call_fit(callbacks=[EarlyStopping("loss"), EarlyStopping]),
        TypeError,
        r"callbacks\[1\] is the class EarlyStopping, not a Callback instance .*; "
        r"write EarlyStopping\(\.\.\.\)",
    ),
    "callbacks=EarlyStopping()": (
        lambda: call_fit(callbacks=EarlyStopping("loss")),
        TypeError,
        r"callbacks must be a list of Callback instances, got <minidl\.callbacks\.EarlyStopping",
    ),
}


@pytest.mark.parametrize("case", list(ARGUMENTS))
def test_bad_argument_names_itself_and_what_it_accepts(case):
    make, error, message = ARGUMENTS[case]
    with pytest.raises(error, match=message):
        make()


def test_lists_are_converted_like_arrays():
    m_list, X, y = report_setting()
    m_array, _, _ = report_setting()
    from_list = train(m_list, X.tolist(), y.tolist(), validation_data=(X.tolist(), y.tolist()))
    from_array = train(m_array, X, y, validation_data=(X, y))
    assert from_list.history == from_array.history
    assert np.array_equal(predict(m_list, X.tolist()), predict(m_array, X))
    with pytest.raises(ValueError, match="X cannot be made into a NumPy array"):
        predict(m_list, [[0.0] * 20, [0.0] * 19])
