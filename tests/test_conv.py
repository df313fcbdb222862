"""Conv2D, MaxPool2D, im2col and col2im against the slow loop reference in conv_reference.py.

The gradients themselves are also checked against finite differences by the registry in
test_gradients.py; here the vectorised code must equal the textbook loops (float64) over many
shapes, and the details around it must hold: tie-breaking, overlapping windows, output sizes,
errors and dtypes.
"""

from __future__ import annotations

import doctest

import conv_reference as ref
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minidl.conv
from minidl.conv import Conv2D, MaxPool2D, col2im, conv_output_size, im2col
from minidl.gradcheck import check_gradients

EXAMPLES = settings(max_examples=60, deadline=None)


@st.composite
def conv_configs(draw):
    """Small conv problems: batch 1-3, channels 1-3, kernels 1-3 (non-square too), stride 1-2,
    padding 0-1, image sides up to 7 (odd ones included) but never smaller than the kernel."""
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 1)), draw(st.integers(0, 1)))
    H = draw(st.integers(max(1, kernel[0] - 2 * padding[0]), 7))
    W = draw(st.integers(max(1, kernel[1] - 2 * padding[1]), 7))
    n, c_in, c_out = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return (n, c_in, H, W), c_out, kernel, stride, padding, draw(st.integers(0, 2**32 - 1))


@st.composite
def pool_configs(draw):
    """Pools 1-3 (non-square too) with strides 1-3: overlapping, tiling and gapped windows."""
    pool = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    H, W = draw(st.integers(pool[0], 8)), draw(st.integers(pool[1], 8))
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return (n, c, H, W), pool, stride, draw(st.booleans()), draw(st.integers(0, 2**32 - 1))


def stored_batch_innermost(A):
    """The module's memory layout: an (N, C, H, W) view whose memory runs (C, H, W, N), the last
    three axes possibly cropped out of padded storage."""
    C_H_W_N = A.transpose(1, 2, 3, 0)
    return C_H_W_N.strides[-1] == A.itemsize and all(
        C_H_W_N.strides[k] >= C_H_W_N.strides[k + 1] * C_H_W_N.shape[k + 1]
        for k in range(3)
        if C_H_W_N.shape[k] > 1
    )


def make_conv(c_in, c_out, kernel, stride, padding, rng):
    layer = Conv2D(c_in, c_out, kernel, stride=stride, padding=padding, rng=rng, dtype=np.float64)
    layer.b.value[:] = rng.standard_normal(c_out)  # a non-zero bias, so forward tests it
    return layer


@EXAMPLES
@given(conv_configs())
def test_conv_matches_loop_reference(config):
    shape, c_out, kernel, stride, padding, seed = config
    rng = np.random.default_rng(seed)
    layer = make_conv(shape[1], c_out, kernel, stride, padding, rng)
    X = rng.standard_normal(shape)
    W, b = layer.W.value, layer.b.value

    Y = layer.forward(X)
    np.testing.assert_allclose(Y, ref.conv2d_forward(X, W, b, stride, padding), rtol=1e-12, atol=1e-12)

    G = rng.standard_normal(Y.shape)
    dX = layer.backward(G)
    dX_ref, dW_ref, db_ref = ref.conv2d_backward(X, W, G, stride, padding)
    np.testing.assert_allclose(dX, dX_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.W.grad, dW_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.b.grad, db_ref, rtol=1e-12, atol=1e-12)
    assert stored_batch_innermost(Y) and stored_batch_innermost(dX)


@EXAMPLES
@given(conv_configs())
def test_col2im_is_the_adjoint_of_im2col(config):
    """<im2col(X), D> == <X, col2im(D)> for all X, D: the identity backprop relies on."""
    shape, _, kernel, stride, padding, seed = config
    rng = np.random.default_rng(seed)
    X = rng.standard_normal(shape)
    cols = im2col(X, kernel, stride, padding)
    H_out = conv_output_size(shape[2], kernel[0], stride[0], padding[0])
    W_out = conv_output_size(shape[3], kernel[1], stride[1], padding[1])
    assert cols.shape == (shape[1] * kernel[0] * kernel[1], shape[0] * H_out * W_out)
    D = rng.standard_normal(cols.shape)
    back = col2im(D, shape, kernel, stride, padding)
    assert back.shape == shape
    np.testing.assert_allclose(np.sum(cols * D), np.sum(X * back), rtol=1e-10)


def test_im2col_columns_are_patches_in_row_major_order():
    X = np.arange(2 * 2 * 3 * 3, dtype=np.float64).reshape(2, 2, 3, 3)
    cols = im2col(X, 2)
    assert cols.shape == (2 * 2 * 2, 2 * 2 * 2)
    # column (y=0, x=1, n=1), columns run over (y, x, n): channel 0 then channel 1, each patch row by row
    np.testing.assert_array_equal(cols[:, (0 * 2 + 1) * 2 + 1], [19, 20, 22, 23, 28, 29, 31, 32])
    padded = im2col(X, 3, padding=1)
    np.testing.assert_array_equal(padded[:9, 0], [0, 0, 0, 0, 0, 1, 0, 3, 4])  # top-left, padded


def test_conv_is_cross_correlation_with_pytorch_layout():
    """Computed by hand: no kernel flip, W indexed (out, in, row, col)."""
    layer = Conv2D(1, 2, 2, dtype=np.float64)
    layer.W.value[0, 0] = [[1, 2], [3, 4]]
    layer.W.value[1, 0] = [[0, 0], [0, 1]]  # picks the bottom-right pixel of each patch
    layer.b.value[:] = [0.5, 0]
    X = np.arange(9, dtype=np.float64).reshape(1, 1, 3, 3)
    Y = layer.forward(X)
    np.testing.assert_array_equal(Y[0, 0], [[0 + 2 + 9 + 16 + 0.5, 1 + 4 + 12 + 20 + 0.5], [57.5, 67.5]])
    np.testing.assert_array_equal(Y[0, 1], [[4, 5], [7, 8]])


def test_input_gradient_is_full_convolution_with_flipped_kernel():
    """Stride 1, one channel: dX = G zero-padded by K-1, correlated with the flipped kernel."""
    rng = np.random.default_rng(0)
    layer = Conv2D(1, 1, (2, 3), dtype=np.float64, rng=rng)
    X = rng.standard_normal((1, 1, 5, 6))
    G = rng.standard_normal(layer.forward(X).shape)
    dX = layer.backward(G)
    full = Conv2D(1, 1, (2, 3), padding=(1, 2), dtype=np.float64)
    full.W.value[...] = layer.W.value[:, :, ::-1, ::-1]
    np.testing.assert_allclose(dX, full.forward(G), rtol=1e-12)


@pytest.mark.parametrize(
    ("c_in", "c_out", "kernel", "stride", "padding", "correlate"),
    [
        (3, 2, 3, 1, 1, True),  # fewer output channels, same size: the correlation (b)
        (2, 2, (2, 3), 1, (1, 1), True),  # non-square kernel, output larger than the input
        (2, 3, 3, 1, 1, False),  # more output channels: col2im (a), as in the CNN's second layer
        (3, 2, 3, 2, 1, False),  # strided: col2im
        (3, 2, 1, 1, 1, False),  # padding wider than the kernel reaches: col2im
    ],
)
def test_both_input_gradient_ways_match_the_reference_and_finite_differences(
    c_in, c_out, kernel, stride, padding, correlate
):
    """backward's dX either by col2im (a) or as the flipped-kernel correlation (b), whichever it
    picks for the shape: both equal the loop reference and the numerical gradient."""
    rng = np.random.default_rng(4)
    layer = make_conv(c_in, c_out, kernel, stride, padding, rng)
    X = rng.standard_normal((2, c_in, 5, 6))
    G = rng.standard_normal(layer.forward(X).shape)
    assert layer._correlate_for_dX() is correlate
    dX = layer.backward(G)
    dX_ref = ref.conv2d_backward(X, layer.W.value, G, layer.stride, layer.padding)[0]
    np.testing.assert_allclose(dX, dX_ref, rtol=1e-12, atol=1e-12)
    errors = check_gradients(layer, X, G=G)
    assert max(errors.values()) < 1e-6, errors


def test_im2col_fills_out_in_place_and_checks_its_shape():
    X = np.random.default_rng(5).standard_normal((2, 3, 5, 5))
    out = np.full((3 * 9 + 1, 2 * 25), 7.0)
    returned = im2col(X, 3, padding=1, out=out[:-1])
    assert np.shares_memory(returned, out)
    np.testing.assert_array_equal(out[:-1], im2col(X, 3, padding=1))
    assert (out[-1] == 7.0).all()  # the row after the patches is left alone
    with pytest.raises(ValueError, match="out must be a C-contiguous array of shape"):
        im2col(X, 3, padding=1, out=out)


def test_layers_return_views_with_the_batch_innermost_and_keep_it_through_a_network():
    """The storage order survives Conv2D -> MaxPool2D -> Conv2D and backward, with no copy of Y."""
    rng = np.random.default_rng(6)
    conv1, pool, conv2 = Conv2D(1, 4, 3, padding=1, rng=rng), MaxPool2D(2), Conv2D(4, 6, 3, rng=rng)
    X = rng.standard_normal((5, 1, 8, 8)).astype(np.float32)  # an ordinary C-ordered batch
    A = conv2.forward(pool.forward(conv1.forward(X)))
    assert A.shape == (5, 6, 2, 2) and A.dtype == np.float32
    assert stored_batch_innermost(A) and not A.flags.c_contiguous
    G = conv2.backward(rng.standard_normal(A.shape).astype(np.float32))
    assert G.shape == (5, 4, 4, 4) and stored_batch_innermost(G)
    dA = pool.backward(G)
    assert dA.shape == (5, 4, 8, 8) and dA.dtype == np.float32 and stored_batch_innermost(dA)
    G_ordinary = np.ascontiguousarray(G)  # C-ordered, as Flatten.backward hands it on
    np.testing.assert_array_equal(pool.backward(G_ordinary), dA)


def test_conv_input_grad_false_skips_dX_but_fills_parameter_gradients():
    rng = np.random.default_rng(1)
    layer = Conv2D(2, 3, 3, padding=1, rng=rng, dtype=np.float64)
    X = rng.standard_normal((2, 2, 5, 5))
    G = rng.standard_normal(layer.forward(X).shape)
    layer.backward(G)
    dW, db = layer.W.grad.copy(), layer.b.grad.copy()
    assert layer.backward(G, input_grad=False) is None
    np.testing.assert_array_equal(layer.W.grad, dW)
    np.testing.assert_array_equal(layer.b.grad, db)


@EXAMPLES
@given(pool_configs())
def test_maxpool_matches_loop_reference(config):
    """With ties (small integers) or without, the gradient goes where the reference sends it."""
    shape, pool, stride, with_ties, seed = config
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 3, shape).astype(np.float64) if with_ties else rng.standard_normal(shape)
    layer = MaxPool2D(pool, stride)
    ref_stride = pool if stride is None else stride
    Y = layer.forward(X)
    Y_ref, _ = ref.maxpool2d_forward(X, pool, ref_stride)
    np.testing.assert_array_equal(Y, Y_ref)
    G = rng.standard_normal(Y.shape)
    np.testing.assert_allclose(layer.backward(G), ref.maxpool2d_backward(X, G, pool, ref_stride), rtol=1e-12)


@pytest.mark.parametrize(("pool", "stride"), [(2, None), (3, 2), ((2, 3), (1, 2))])
def test_maxpool_ties_go_to_the_first_element_of_each_window(pool, stride):
    X = np.full((2, 3, 7, 8), 0.25)
    layer = MaxPool2D(pool, stride)
    Y = layer.forward(X)
    G = np.random.default_rng(2).standard_normal(Y.shape)
    dX = layer.backward(G)
    SH, SW = layer.stride
    H_out, W_out = Y.shape[2:]
    expected = np.zeros_like(X)
    expected[:, :, : SH * H_out : SH, : SW * W_out : SW] = G  # top-left corners; none shared here
    np.testing.assert_array_equal(dX, expected)
    np.testing.assert_array_equal(layer.backward(G), dX)  # deterministic


def test_overlapping_windows_add_their_gradients():
    """A 3x3 image whose centre is the maximum of all four 2x2 windows (stride 1)."""
    X = np.zeros((1, 1, 3, 3))
    X[0, 0, 1, 1] = 5.0
    X[0, 0, 0, 0] = 5.0  # ties with the centre in the top-left window, and comes first there
    layer = MaxPool2D(2, stride=1)
    np.testing.assert_array_equal(layer.forward(X)[0, 0], [[5, 5], [5, 5]])
    G = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    np.testing.assert_array_equal(layer.backward(G)[0, 0], [[1, 0, 0], [0, 2 + 3 + 4, 0], [0, 0, 0]])


@settings(max_examples=30, deadline=None)
@given(conv_configs())
def test_output_shapes_follow_the_formula(config):
    (n, c_in, H, W), c_out, (KH, KW), (SH, SW), (PH, PW), _ = config
    layer = Conv2D(c_in, c_out, (KH, KW), stride=(SH, SW), padding=(PH, PW), rng=0)
    expected = (n, c_out, (H + 2 * PH - KH) // SH + 1, (W + 2 * PW - KW) // SW + 1)
    assert layer.output_shape((n, c_in, H, W)) == expected
    assert layer.forward(np.zeros((n, c_in, H, W), dtype=np.float32)).shape == expected
    if H >= KH and W >= KW:
        pool = MaxPool2D((KH, KW), (SH, SW))
        pooled = (n, c_in, (H - KH) // SH + 1, (W - KW) // SW + 1)
        assert pool.output_shape((n, c_in, H, W)) == pooled
        assert pool.forward(np.zeros((n, c_in, H, W))).shape == pooled


def test_mnist_shapes():
    X = np.zeros((4, 1, 28, 28), dtype=np.float32)
    Y = Conv2D(1, 32, 3, padding=1, rng=0).forward(X)
    assert Y.shape == (4, 32, 28, 28)
    assert MaxPool2D(2).forward(Y).shape == (4, 32, 14, 14)
    assert Conv2D(1, 8, 5, stride=2, rng=0).forward(X).shape == (4, 8, 12, 12)
    assert MaxPool2D(3, stride=2).forward(Y).shape == (4, 32, 13, 13)


def test_float32_layer_stays_float32():
    rng = np.random.default_rng(3)
    layer = Conv2D(2, 4, 3, stride=2, padding=1, rng=rng)
    assert layer.W.value.dtype == layer.b.value.dtype == np.float32
    for X in (rng.standard_normal((3, 2, 9, 9)).astype(np.float32), rng.standard_normal((3, 2, 9, 9))):
        Y = layer.forward(X)  # a float64 batch is computed in the layer's float32 too
        assert Y.dtype == np.float32
        dX = layer.backward(np.ones(Y.shape, dtype=np.float32))
        assert dX.dtype == np.float32
        assert layer.W.grad.dtype == layer.b.grad.dtype == np.float32
    assert layer.forward(rng.integers(0, 256, (1, 2, 9, 9), dtype=np.uint8)).dtype == np.float32
    pool = MaxPool2D(2)
    P = pool.forward(rng.standard_normal((3, 2, 8, 8)).astype(np.float32))
    assert P.dtype == np.float32
    assert pool.backward(np.ones(P.shape, dtype=np.float32)).dtype == np.float32


def test_weights_are_initialised_with_the_conv_fan_in():
    layer = Conv2D(8, 16, 3, rng=0)  # fan-in 8 * 3 * 3 = 72
    assert layer.W.value.shape == (16, 8, 3, 3) and layer.b.value.shape == (16,)
    assert abs(layer.W.value.std() * np.sqrt(72) - 1) < 0.1
    assert not layer.b.value.any()
    assert [p.name for p in layer.parameters()] == ["W", "b"]
    np.testing.assert_array_equal(Conv2D(8, 16, 3, rng=0).W.value, layer.W.value)  # same seed


def test_repr_names_the_configuration():
    assert repr(Conv2D(1, 32, 3, padding=1)) == "Conv2D(1, 32, kernel_size=3, padding=1)"
    assert repr(Conv2D(3, 8, (3, 5), stride=2)) == "Conv2D(3, 8, kernel_size=(3, 5), stride=2)"
    assert repr(MaxPool2D(2)) == "MaxPool2D(2)"
    assert repr(MaxPool2D(3, stride=2)) == "MaxPool2D(3, stride=2)"


@pytest.mark.parametrize(
    ("layer", "shape", "match"),
    [
        (Conv2D(3, 4, 3), (2, 28, 28), r"expects input of shape \(N, 3, H, W\), got \(2, 28, 28\)"),
        (Conv2D(3, 4, 3), (2, 1, 8, 8), r"expects input of shape \(N, 3, H, W\), got \(2, 1, 8, 8\)"),
        (Conv2D(1, 4, 3), (2, 784), r"expects input of shape \(N, 1, H, W\), got \(2, 784\)"),
        (Conv2D(1, 4, 5, padding=1), (2, 1, 2, 9), r"5x5 window is larger than the padded input 4x11"),
        (Conv2D(1, 4, (1, 3)), (2, 1, 4, 2), r"1x3 window is larger than the input 4x2"),
        (MaxPool2D(2), (2, 28, 28), r"expects input of shape \(N, C, H, W\), got \(2, 28, 28\)"),
        (MaxPool2D(3), (1, 1, 2, 5), r"3x3 window is larger than the input 2x5"),
    ],
)
def test_bad_inputs_are_explained(layer, shape, match):
    with pytest.raises(ValueError, match=match):
        layer.forward(np.zeros(shape))


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Conv2D(0, 4, 3), "channel counts must be positive"),
        (lambda: Conv2D(1, 4, 0), "kernel_size must be an int >= 1"),
        (lambda: Conv2D(1, 4, (3,)), "kernel_size must be an int >= 1 or a pair"),
        (lambda: Conv2D(1, 4, 3, stride=0), "stride must be an int >= 1"),
        (lambda: Conv2D(1, 4, 3, padding=-1), "padding must be an int >= 0"),
        (lambda: MaxPool2D(2, stride=(1, 0)), "stride must be an int >= 1"),
        (lambda: MaxPool2D(2.5), "pool_size must be an int >= 1"),
    ],
)
def test_bad_arguments_are_explained(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("layer", [Conv2D(1, 2, 3), MaxPool2D(2)])
def test_backward_before_forward_is_an_error(layer):
    with pytest.raises(RuntimeError, match=r"backward\(\) called before forward\(\)"):
        layer.backward(np.zeros((1, 2, 2, 2)))


def test_col2im_rejects_columns_of_the_wrong_shape():
    with pytest.raises(ValueError, match="do not fit images"):
        col2im(np.zeros((9, 10)), (1, 1, 4, 4), 3)


def test_docstring_examples_hold():
    result = doctest.testmod(minidl.conv)
    assert result.attempted >= 8 and result.failed == 0
