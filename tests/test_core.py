"""Layers, losses, initialisers, optimisers, the model container and batching, on small arrays."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from minidl import MSE, SGD, Adam, Dense, ReLU, Sequential, Softmax, SoftmaxCrossEntropy, evaluate
from minidl import init as initializers
from minidl.data import Standardizer, batches, n_batches, one_hot, scale_pixels
from minidl.layers import Dropout, Sigmoid
from minidl.losses import CrossEntropy, SigmoidBinaryCrossEntropy

finite = st.floats(-1e3, 1e3, allow_nan=False, width=64)


# ---- losses ---------------------------------------------------------------------------------
@settings(deadline=None, max_examples=50)
@given(
    Z=arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(2, 6)), elements=finite),
    seed=st.integers(0, 99),
)
def test_fused_loss_equals_softmax_then_cross_entropy(Z, seed):
    y = np.random.default_rng(seed).integers(0, Z.shape[1], Z.shape[0])
    fused = SoftmaxCrossEntropy()
    soft, ce = Softmax(), CrossEntropy(eps=1e-300)
    P = soft.forward(Z)
    # Probabilities can underflow to 0 for extreme logits; compare only where they do not.
    if P[np.arange(len(y)), y].min() > 1e-200:
        assert fused.forward(Z, y) == pytest.approx(ce.forward(P, y), rel=1e-9, abs=1e-12)
        np.testing.assert_allclose(fused.backward(), soft.backward(ce.backward()), rtol=1e-7, atol=1e-12)


def test_softmax_cross_entropy_is_stable_for_extreme_logits():
    Z = np.array([[1e30, 0.0, -1e30], [-3e38, 3e38, 0.0]], dtype=np.float64)
    loss = SoftmaxCrossEntropy()
    value = loss.forward(Z, np.array([0, 0]))
    assert math.isfinite(value) and value == pytest.approx(3e38)
    assert np.isfinite(loss.backward()).all()


@settings(deadline=None, max_examples=50)
@given(Z=arrays(np.float64, (3, 4), elements=st.floats(-50, 50)), shift=st.floats(-1e3, 1e3))
def test_softmax_is_shift_invariant(Z, shift):
    np.testing.assert_allclose(Softmax().forward(Z + shift), Softmax().forward(Z), atol=1e-12)


def test_sigmoid_bce_is_stable_and_matches_definition():
    z = np.array([-800.0, -2.0, 0.0, 3.0, 800.0])
    y = np.array([1, 0, 1, 1, 0])
    loss = SigmoidBinaryCrossEntropy().forward(z, y)
    moderate = np.abs(z) < 100
    s = 1 / (1 + np.exp(-z[moderate]))
    direct = -(y[moderate] * np.log(s) + (1 - y[moderate]) * np.log(1 - s))
    expected = (direct.sum() + 800 + 800) / 5  # each extreme wrong answer costs |z|
    assert loss == pytest.approx(expected)


@pytest.mark.parametrize(
    "mean, std", [(0.0, 0.05), (0.0, 1.0), (0.5, 0.1)], ids=["small", "unit variance", "offset"]
)
def test_initial_loss_is_ln_classes_plus_the_second_order_term(mean, std):
    """SoftmaxCrossEntropy's docstring: with 1/sqrt(n_in) weights the logits have the inputs'
    mean square q, and the loss starts at about ln 10 + (1 - 1/10) q / 2. The offset case has
    variance 0.01 but mean square 0.26: the mean square, not the variance, sets the start."""
    rng = np.random.default_rng(0)
    X = (mean + std * rng.standard_normal((4000, 784))).astype(np.float32)
    y = rng.integers(0, 10, 4000)
    q = float(np.mean(np.square(X, dtype=np.float64)))
    start = np.mean([SoftmaxCrossEntropy().forward(Dense(784, 10, rng=s).forward(X), y) for s in range(8)])
    assert start == pytest.approx(math.log(10) + 0.45 * q, abs=0.04)
    assert start - math.log(10) > 0.45 * q / 2 or q < 0.01  # the term is really there


def test_each_loss_says_how_its_outputs_become_labels():
    Z = np.array([[0.1, 2.0, -1.0], [3.0, 0.0, 0.5]])
    assert SoftmaxCrossEntropy().labels(Z).tolist() == [1, 0]
    assert CrossEntropy().labels(Softmax().forward(Z)).tolist() == [1, 0]
    assert SigmoidBinaryCrossEntropy().labels(np.array([[-0.5], [0.2]])).tolist() == [0, 1]
    assert MSE().labels(Z) is None  # a regression has no accuracy
    model, X = Sequential([Dense(2, 3, rng=0)]), np.ones((4, 2), np.float32)
    assert set(evaluate(model, X, np.zeros((4, 3), np.float32), MSE())) == {"loss"}
    assert set(evaluate(model, X, np.array([0, 1, 2, 0]), SoftmaxCrossEntropy())) == {"loss", "accuracy"}


def test_loss_rejects_bad_labels():
    loss = SoftmaxCrossEntropy()
    Z = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"\[0, 3\]"):
        loss.forward(Z, np.array([0, 4, 1]))
    with pytest.raises(TypeError, match="integers"):
        loss.forward(Z, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="3 predictions but 2 labels"):
        loss.forward(Z, np.array([0, 1]))


# ---- layers ---------------------------------------------------------------------------------
def test_dense_shapes_dtype_and_init_scale():
    layer = Dense(784, 300, rng=0)
    assert layer.W.value.shape == (784, 300) and layer.b.value.shape == (300,)
    assert layer.W.value.dtype == np.float32 and not layer.b.value.any()
    assert layer.W.value.std() == pytest.approx(1 / math.sqrt(784), rel=0.02)
    assert abs(layer.W.value.mean()) < 0.002
    assert [p.name for p in layer.parameters()] == ["W", "b"]


def test_dense_wrong_width_names_expected_and_got():
    with pytest.raises(ValueError, match=r"\(N, 784\), got \(2, 783\)"):
        Dense(784, 10, rng=0).forward(np.zeros((2, 783), np.float32))
    with pytest.raises(ValueError, match="Flatten"):
        Dense(784, 10, rng=0).forward(np.zeros((2, 28, 28), np.float32))


def test_initialisers_scale():
    rng = np.random.default_rng(0)
    assert initializers.he_normal((1000, 500), rng).std() == pytest.approx(math.sqrt(2 / 1000), rel=0.02)
    assert initializers.glorot_normal((1000, 500), rng).std() == pytest.approx(math.sqrt(2 / 1500), rel=0.02)
    assert initializers.lecun_normal((8, 4, 3, 3), rng).std() == pytest.approx(1 / 6, rel=0.1)
    with pytest.raises(ValueError, match="unknown initialiser"):
        Dense(2, 2, init="nope")


def test_dropout_train_and_eval():
    layer = Dropout(0.25, rng=0)
    X = np.ones((1000, 100), np.float32)
    Y = layer.forward(X)
    assert set(np.unique(Y)) <= {0.0, np.float32(1 / 0.75)}
    assert abs((Y == 0).mean() - 0.25) < 0.01 and abs(Y.mean() - 1) < 0.02
    layer.eval()
    assert layer.forward(X) is X


def test_sigmoid_does_not_overflow():
    with np.errstate(over="raise"):
        Y = Sigmoid().forward(np.array([-1000.0, 0.0, 1000.0]))
    np.testing.assert_allclose(Y, [0.0, 0.5, 1.0])


# ---- optimisers -----------------------------------------------------------------------------
def _param(value, grad):
    value = np.asarray(value, dtype=np.float64)
    layer = Dense(*value.shape, rng=0, dtype=np.float64)
    p = layer.W
    p.value[...] = value
    p.grad[...] = grad
    return p


def test_sgd_step_by_hand():
    p = _param([[1.0, -2.0]], [[0.5, 0.25]])
    SGD([p], lr=0.1).step()
    np.testing.assert_allclose(p.value, [[0.95, -2.025]])


def test_sgd_momentum_and_weight_decay_by_hand():
    p = _param([[1.0]], [[1.0]])
    opt = SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01)
    opt.step()  # g = 1 + 0.01 = 1.01; v = 1.01; w = 1 - 0.101 = 0.899
    np.testing.assert_allclose(p.value, [[0.899]])
    opt.step()  # g = 1 + 0.00899 = 1.00899; v = 0.909 + 1.00899 = 1.91799; w = 0.899 - 0.191799
    np.testing.assert_allclose(p.value, [[0.707201]])


def test_adam_steps_by_hand():
    p = _param([[1.0]], [[2.0]])
    opt = Adam([p], lr=0.1)
    opt.step()  # m_hat = 2, v_hat = 4: step = 0.1 * 2 / (2 + 1e-8)
    np.testing.assert_allclose(p.value, [[0.9]], atol=1e-9)
    p.grad[...] = 0.0
    opt.step()  # m = 0.18, v = 0.003996; m_hat = 0.18/0.19, v_hat = 0.003996/0.001999
    expected = 0.9 - 0.1 * (0.18 / 0.19) / (math.sqrt(0.003996 / 0.001999) + 1e-8)
    np.testing.assert_allclose(p.value, [[expected]], rtol=1e-9)


def test_optimiser_rejects_bad_settings():
    with pytest.raises(ValueError, match="learning rate"):
        SGD(Dense(2, 2, rng=0).parameters(), lr=0.0)
    with pytest.raises(ValueError, match="empty"):
        SGD([], lr=0.1)


# ---- model container ------------------------------------------------------------------------
def make_mlp(seed=0, dtype=np.float32):
    return Sequential([Dense(6, 5, rng=seed, dtype=dtype), ReLU(), Dense(5, 3, rng=seed + 1, dtype=dtype)])


def test_named_parameters_and_state_dict_round_trip(tmp_path):
    a, b = make_mlp(0), make_mlp(7)
    assert list(a.state_dict()) == ["0.W", "0.b", "2.W", "2.b"]
    b.load_state_dict(a.state_dict())
    X = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)
    np.testing.assert_array_equal(a.forward(X), b.forward(X))
    path = tmp_path / "weights.npz"
    make_mlp(3).save(path, best_score=np.float64(0.5))
    extra = a.load(path)
    assert float(extra["best_score"]) == 0.5
    np.testing.assert_array_equal(a.forward(X), make_mlp(3).forward(X))
    assert [p.name for p in tmp_path.iterdir()] == ["weights.npz"]  # no temporary file left


def test_load_state_dict_lists_every_problem_and_copies_nothing():
    model = make_mlp(0)
    before = model.state_dict()
    state = make_mlp(1).state_dict()
    state["2.W"] = np.zeros((5, 4), np.float32)
    del state["0.b"]
    state["9.W"] = np.zeros(1)
    with pytest.raises(ValueError) as err:
        model.load_state_dict(state)
    message = str(err.value)
    assert "missing: 0.b" in message and "unexpected: 9.W" in message
    assert "2.W: model has (5, 3) float32, state has (5, 4) float32" in message
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


def test_summary_table():
    text = make_mlp().summary()
    assert "Dense(6, 5)" in text and "(None, 3)" in text
    assert "Total parameters: 53" in text  # 6*5+5 + 5*3+3


def test_sequential_rejects_non_layers():
    with pytest.raises(TypeError, match="layer 1"):
        Sequential([Dense(2, 2), "relu"])


# ---- batching and data helpers ----------------------------------------------------------------
def test_full_batch_is_the_data_itself():
    X, y = np.zeros((10, 3)), np.arange(10)
    [(Xb, yb)] = list(batches(X, y, None, rng=0))
    assert Xb is X and yb is y


@given(n=st.integers(1, 50), batch_size=st.integers(1, 60), seed=st.integers(0, 9))
def test_minibatches_cover_each_example_once(n, batch_size, seed):
    X, y = np.arange(n * 2).reshape(n, 2), np.arange(n)
    parts = list(batches(X, y, batch_size, rng=seed))
    assert len(parts) == n_batches(n, batch_size)
    seen = np.concatenate([yb for _, yb in parts])
    assert sorted(seen.tolist()) == list(range(n))
    for Xb, yb in parts:
        np.testing.assert_array_equal(Xb[:, 0], 2 * yb)


def test_each_epoch_draws_a_fresh_order():
    X, y = np.zeros((100, 1)), np.arange(100)
    rng = np.random.default_rng(0)
    first = np.concatenate([yb for _, yb in batches(X, y, 10, rng)])
    second = np.concatenate([yb for _, yb in batches(X, y, 10, rng)])
    assert not np.array_equal(first, second)


def test_one_hot_scale_and_standardize():
    np.testing.assert_array_equal(one_hot(np.array([1, 0]), 3), [[0, 1, 0], [1, 0, 0]])
    X = scale_pixels(np.full((2, 28, 28), 255, np.uint8))
    assert X.shape == (2, 784) and X.dtype == np.float32 and X.max() == 1.0
    data = np.array([[0.0, 1.0], [0.0, 3.0]], np.float32)
    Z = Standardizer().fit_transform(data)
    np.testing.assert_allclose(Z, [[0, -1], [0, 1]])


def test_summary_leaves_the_forward_cache_alone():
    model = make_mlp(0)
    X = np.ones((4, 6), np.float32)
    model.forward(X)
    model.summary()
    assert model.backward(np.ones((4, 3), np.float32)).shape == (4, 6)


def test_dense_computes_in_its_own_dtype():
    assert Dense(3, 2, rng=0).forward(np.ones((2, 3))).dtype == np.float32


def test_check_gradients_refuses_a_float32_layer():
    from minidl.gradcheck import check_gradients

    with pytest.raises(TypeError, match="float64"):
        check_gradients(Dense(3, 2, rng=0), np.ones((2, 3)))


@pytest.mark.parametrize(
    "make_optimizer",
    [
        lambda ps: SGD(ps, lr=0.05),
        lambda ps: SGD(ps, lr=0.05, momentum=0.9, weight_decay=1e-4),
        lambda ps: Adam(ps, lr=1e-3, weight_decay=1e-4),
    ],
    ids=["SGD", "SGD(momentum, weight_decay)", "Adam"],
)
def test_a_float32_training_step_stays_float32(make_optimizer):
    """No float64 creeps into a float32 step: not in any layer's input, the loss gradient, the
    gradients, the optimiser's state or the updated weights (it would double memory and time)."""
    rng = np.random.default_rng(0)
    X, y = rng.random((64, 20), dtype=np.float32), rng.integers(0, 10, 64)
    model = Sequential([Dense(20, 16, rng=rng), ReLU(), Dropout(0.2, rng=rng), Dense(16, 10, rng=rng)])
    seen = []
    for layer in model.layers:
        forward = layer.forward
        layer.forward = lambda A, forward=forward: seen.append(A.dtype) or forward(A)
    optimizer = make_optimizer(model.parameters())
    loss = SoftmaxCrossEntropy()
    for _ in range(2):
        loss.forward(model.forward(X), y)
        G = loss.backward()
        seen.append(G.dtype)
        model.backward(G)
        optimizer.step()
    state = [a for name in ("velocity", "m", "v") for a in getattr(optimizer, name, [])]
    seen += [a.dtype for p in model.parameters() for a in (p.value, p.grad)] + [a.dtype for a in state]
    assert set(seen) == {np.dtype(np.float32)}, seen


def test_import_minidl_does_not_import_matplotlib():
    """Only minidl.plots needs matplotlib; the rest of the package imports without it."""
    code = "import sys, minidl, minidl.sweep; print([m for m in sys.modules if m.startswith('matplotlib')])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
