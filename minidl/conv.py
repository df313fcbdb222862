"""Convolution and max-pooling on image batches ``(N, C, H, W)``, vectorised with im2col.

A convolution slides a small filter over the image and takes a dot product at every position.
Written as loops that is six nested ``for``s; written with **im2col** it is one matrix product:
copy every patch the filter will see into a column of a matrix, then multiply by the filters laid
out as rows. One image, one channel, a 2 x 2 kernel, stride 1, no padding::

    X[n, c] (4 x 4)           cols: one row per kernel entry (c, i, j),
                                    one column per output position (y, x)
    a  b  c  d
    e  f  g  h                          (0,0)   (0,1)   (0,2)   (1,0) ...
    i  j  k  l                (c,0,0)      a       b       c       e
    m  n  o  p                (c,0,1)      b       c       d       f
                              (c,1,0)      e       f       g       i
    patch at (y, x) = (0, 0)  (c,1,1)      f       g       h       j
       a b   -> column [a b e f]
       e f

    Y_mat = W_mat @ cols   with W_mat = W.reshape(C_out, C * KH * KW): row o is filter o unrolled,
    so Y_mat[o, (y, x)] = <filter o, patch (y, x)>, the convolution at that position.

With a batch, the columns of the N images for the same position sit side by side: columns run
over ``(y, x, n)``, the batch innermost. Every output size follows one formula (``P`` zeros of
padding on each side, stride ``S``)::

    H_out = (H + 2P - KH) // S + 1          W_out = (W + 2P - KW) // S + 1

Like every deep-learning framework (and PyTorch's ``Conv2d``), "convolution" here is really
cross-correlation: the kernel is not flipped. The flip appears in the backward pass instead.

The patch matrix is built without Python loops: ``np.lib.stride_tricks.as_strided`` gives a
read-only *view* of the padded input with shape ``(C, KH, KW, H_out, W_out, N)`` (no data moves),
and a single copy turns it into the contiguous matrix BLAS wants. Its inverse, ``col2im``, has
to *add* overlapping patches back together; it loops over the ``KH * KW`` kernel offsets (9 for a
3 x 3 kernel) and adds one whole slice per offset, the usual way to write it in NumPy.

Memory layout. The layers take and return ordinary ``(N, C, H, W)`` arrays, but store them with
the batch innermost: what ``Conv2D`` and ``MaxPool2D`` return is a ``(C, H, W, N)`` array seen
through ``transpose(3, 0, 1, 2)``, a *view* (only the strides, the bytes per step along each
axis, differ from a C-ordered array; no data moves). Every NumPy operation accepts such arrays,
elementwise ones (``np.maximum(X, 0)``) keep their order, and ``np.ascontiguousarray(Y)`` gives
the usual order when something needs it. Why: NumPy pays a fixed cost (~10 ns) for every run of
adjacent numbers it walks through, and a 14 x 14 image row is a run of only 14. With the batch
innermost, every row of the patch matrix, every slice that ``col2im`` adds and every window
offset that max-pooling reads is made of runs of ``N`` (or ``W * N``) adjacent numbers; the
product ``W_mat @ cols`` comes out already in ``(C, H, W, N)`` order (no transpose to NCHW), and
``Flatten`` followed by ``Dense`` needs no copy (BLAS reads the transposed matrix as it is).
Measured on the CNN of ``experiments.cnn`` (batch 128, one thread, CPU ms), batch outermost ->
innermost with nothing else changed: the second convolution's im2col 2.6 -> 1.3 and col2im
5.5 -> 2.7, the first max-pool's backward 5.8 -> 3.4, a whole training step 67.6 -> 55.4
(``benchmarks/README.md`` has the tables).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from minidl import init as initializers
from minidl._rng import RngLike, as_generator
from minidl.layers import Layer
from minidl.parameter import Parameter

__all__ = ["Conv2D", "MaxPool2D", "col2im", "conv_output_size", "im2col"]

Pair = int | tuple[int, int]


def _pair(value: Pair, name: str, minimum: int = 1) -> tuple[int, int]:
    """``3 -> (3, 3)``; ``(3, 2)`` stays; anything else, or a value below ``minimum``, is an error."""
    if isinstance(value, int | np.integer):
        value = (value, value)
    pair = tuple(value) if isinstance(value, tuple | list) else ()
    if len(pair) != 2 or not all(isinstance(v, int | np.integer) and v >= minimum for v in pair):
        raise ValueError(f"{name} must be an int >= {minimum} or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


def _short(pair: tuple[int, int]) -> int | tuple[int, int]:
    """``(3, 3) -> 3`` for a compact repr; ``(3, 2)`` stays."""
    return pair[0] if pair[0] == pair[1] else pair


def _geometry(kernel_size: Pair, stride: Pair, padding: Pair) -> tuple[tuple[int, int], ...]:
    """Validated ``(kernel, stride, padding)`` pairs."""
    return _pair(kernel_size, "kernel_size"), _pair(stride, "stride"), _pair(padding, "padding", 0)


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """``(size + 2 * padding - kernel) // stride + 1``: how many positions a window fits in.

    >>> conv_output_size(28, 3, padding=1), conv_output_size(28, 2, stride=2), conv_output_size(5, 3, 2)
    (28, 14, 2)
    """
    return (size + 2 * padding - kernel) // stride + 1


def _windows(Xp: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int]) -> np.ndarray:
    """Read-only view ``(C, KH, KW, H_out, W_out, N)`` of a stored batch ``Xp (C, H, W, N)``, no copy.

    ``view[c, i, j, y, x, n] = Xp[c, S_h * y + i, S_w * x + j, n]``: stepping ``y`` jumps ``S_h``
    rows, stepping ``i`` one row, so only the strides (bytes per step) differ from ``Xp``'s.
    """
    C, H, W, N = Xp.shape
    (KH, KW), (SH, SW) = kernel, stride
    H_out, W_out = (H - KH) // SH + 1, (W - KW) // SW + 1
    sC, sH, sW, sN = Xp.strides
    return as_strided(
        Xp,
        shape=(C, KH, KW, H_out, W_out, N),
        strides=(sC, sH, sW, SH * sH, SW * sW, sN),
        writeable=False,
    )


def _stored(X: np.ndarray, padding: tuple[int, int] = (0, 0), dtype=None) -> np.ndarray:
    """``X (N, C, H, W)`` as a C-contiguous ``(C, H + 2P, W + 2P, N)`` array (the module's storage
    order), with ``P`` zeros around each image, in ``dtype`` (default ``X``'s).

    No copy when there is nothing to do: no padding, the right dtype, and ``X`` already a view of
    such storage (the output of a layer of this module).
    """
    PH, PW = padding
    N, C, H, W = X.shape
    dtype = X.dtype if dtype is None else np.dtype(dtype)
    X_chwn = X.transpose(1, 2, 3, 0)  # (C, H, W, N), a view
    if PH == PW == 0 and X_chwn.flags.c_contiguous and X.dtype == dtype:
        return X_chwn
    Xp = (np.zeros if PH or PW else np.empty)((C, H + 2 * PH, W + 2 * PW, N), dtype=dtype)
    Xp[:, PH : PH + H, PW : PW + W] = X_chwn  # the one copy (casting to dtype on the way)
    return Xp


def _as_images(A: np.ndarray) -> np.ndarray:
    """A stored batch ``(C, H, W, N)`` seen as the usual ``(N, C, H, W)``: a transposed view."""
    return A.transpose(3, 0, 1, 2)


def im2col(
    X: np.ndarray,
    kernel_size: Pair,
    stride: Pair = 1,
    padding: Pair = 0,
    *,
    dtype=None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Unroll every ``KH x KW`` patch of a batch into a column (see the picture at the top).

    Shapes: ``X (N, C, H, W)`` -> ``cols (C * KH * KW, H_out * W_out * N)`` with
    ``cols[(c, i, j), (y, x, n)] = Xp[n, c, S * y + i, S * x + j]``, ``Xp`` being ``X`` zero-padded
    by ``P`` on each side; rows run over ``(c, i, j)`` and columns over ``(y, x, n)`` in row-major
    order (the batch innermost, see "Memory layout" above), so ``W.reshape(C_out, -1) @ cols`` is
    the convolution. The result is a fresh contiguous array in ``dtype`` (default: ``X``'s), or
    ``out`` (a C-contiguous array of that shape, its dtype wins) filled in place; made with at most
    one storage copy (padding, casting, reordering) and one unrolling copy.

    >>> X = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> im2col(X, 2)[:, 0]  # the top-left patch [[0, 1], [4, 5]]
    array([0., 1., 4., 5.])
    >>> im2col(X, 3, padding=1).shape  # 9 kernel entries x 16 positions
    (9, 16)
    """
    kernel, stride, padding = _geometry(kernel_size, stride, padding)
    Xp = _stored(X, padding, dtype if out is None else out.dtype)  # (C, Hp, Wp, N)
    if Xp.shape[1] < kernel[0] or Xp.shape[2] < kernel[1]:
        raise ValueError(f"kernel {kernel} is larger than the padded input {Xp.shape[1:3]}")
    V = _windows(Xp, kernel, stride)  # (C, KH, KW, H_out, W_out, N), a view
    C, KH, KW, H_out, W_out, N = V.shape
    shape = (C * KH * KW, H_out * W_out * N)
    if out is None:
        out = np.empty(shape, dtype=Xp.dtype)
    elif out.shape != shape or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous array of shape {shape}, got {out.shape}")
    np.copyto(out.reshape(V.shape), V)  # the unrolling copy, in runs of N (W_out * N if S == 1)
    return out


def col2im(
    cols: np.ndarray,
    X_shape: tuple[int, int, int, int],
    kernel_size: Pair,
    stride: Pair = 1,
    padding: Pair = 0,
) -> np.ndarray:
    """Fold columns back into images, **adding** entries that came from the same pixel.

    Shapes: ``cols (C * KH * KW, H_out * W_out * N)`` -> ``(N, C, H, W)`` with ``X_shape`` the
    unpadded ``(N, C, H, W)``; the result is a view of ``(C, H, W, N)`` storage (see "Memory
    layout" above). It is the adjoint (transpose) of ``im2col``:
    ``sum(im2col(X) * cols) == sum(X * col2im(cols, X.shape, ...))``, which is exactly what
    backpropagation through ``im2col`` needs. A pixel covered by several overlapping patches
    receives the sum of their entries; entries that landed in the padding are dropped.

    The loop runs over the ``KH * KW`` kernel offsets ``(i, j)``, not over pixels or examples:
    for a fixed offset, the patches of different positions read *different* pixels (a strided
    slice of the padded image), so one vectorised ``+=`` per offset is race-free.

    >>> X = np.ones((1, 1, 3, 3))
    >>> col2im(im2col(X, 2), X.shape, 2)[0, 0]  # how many 2 x 2 patches cover each pixel
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    """
    (KH, KW), (SH, SW), (PH, PW) = _geometry(kernel_size, stride, padding)
    N, C, H, W = X_shape
    H_out, W_out = conv_output_size(H, KH, SH, PH), conv_output_size(W, KW, SW, PW)
    if cols.shape != (C * KH * KW, H_out * W_out * N):
        raise ValueError(f"cols of shape {cols.shape} do not fit images {X_shape} with a {KH}x{KW} kernel")
    D = cols.reshape(C, KH, KW, H_out, W_out, N)
    dXp = np.zeros((C, H + 2 * PH, W + 2 * PW, N), dtype=cols.dtype)
    for i in range(KH):
        for j in range(KW):
            # Offset (i, j) of the patch at (y, x) is pixel (S*y + i, S*x + j): a strided slice.
            dXp[:, i : i + SH * H_out : SH, j : j + SW * W_out : SW] += D[:, i, j]
    return _as_images(dXp[:, PH : PH + H, PW : PW + W])  # the padding's entries are dropped


class Conv2D(Layer):
    """2-D convolution (cross-correlation, as in PyTorch) of an image batch with ``C_out`` filters.

    ``Y[n, o, y, x] = b[o] + sum_{c, i, j} W[o, c, i, j] * Xp[n, c, S*y + i, S*x + j]``, with ``Xp``
    the input zero-padded by ``P`` pixels on each side.

    Shapes: ``X (N, C_in, H, W)``, ``W (C_out, C_in, KH, KW)``, ``b (C_out,)``,
    ``Y (N, C_out, H_out, W_out)``, ``H_out = (H + 2P - KH) // S + 1`` (same for widths).
    ``kernel_size``, ``stride`` and ``padding`` take an int or an ``(height, width)`` pair.
    The weights start from ``init`` with fan-in ``C_in * KH * KW``; the bias starts at zero.
    The layer computes in its own ``dtype``: the input is cast while it is padded and unrolled.
    ``Y`` is stored with the batch innermost (see "Memory layout" in the module's docstring).

    >>> layer = Conv2D(1, 4, 3, padding=1, rng=0)
    >>> layer.forward(np.zeros((2, 1, 28, 28), dtype=np.float32)).shape
    (2, 4, 28, 28)
    >>> Conv2D(3, 8, (3, 5), stride=2, rng=0).forward(np.zeros((1, 3, 9, 9))).shape
    (1, 8, 4, 3)
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel_size: Pair,
        *,
        stride: Pair = 1,
        padding: Pair = 0,
        init: str | initializers.Initializer = "lecun_normal",
        rng: RngLike = None,
        dtype=np.float32,
    ) -> None:
        if not (
            isinstance(c_in, int | np.integer)
            and isinstance(c_out, int | np.integer)
            and c_in > 0
            and c_out > 0
        ):
            raise ValueError(
                f"Conv2D channel counts must be positive ints, got c_in={c_in!r}, c_out={c_out!r}"
            )
        rng = as_generator(rng)
        self.c_in, self.c_out = int(c_in), int(c_out)
        self.kernel_size, self.stride, self.padding = _geometry(kernel_size, stride, padding)
        self.dtype = np.dtype(dtype)
        shape = (self.c_out, self.c_in, *self.kernel_size)
        self.W = Parameter(initializers.get(init)(shape, rng, self.dtype), "W")
        self.b = Parameter(np.zeros(self.c_out, dtype=self.dtype), "b")
        self._cols = None
        self._X_shape = None

    def output_shape(self, X_shape: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        """``(N, C_out, H_out, W_out)`` for an input of shape ``(N, C_in, H, W)``."""
        N, _, H, W = X_shape
        (KH, KW), (SH, SW), (PH, PW) = self.kernel_size, self.stride, self.padding
        return N, self.c_out, conv_output_size(H, KH, SH, PH), conv_output_size(W, KW, SW, PW)

    def forward(self, X: np.ndarray) -> np.ndarray:
        _check_images(self, X, self.c_in, self.kernel_size, self.padding)
        N, C_out, H_out, W_out = self.output_shape(X.shape)
        K = self.c_in * self.kernel_size[0] * self.kernel_size[1]  # kernel entries per filter
        self._cols = None  # let the previous batch's patches go before making new ones (peak memory)
        # cols (K + 1, H_out*W_out*N): one column per output position, one row per kernel entry,
        # and a last row of ones for the bias to multiply (see backward)
        cols = np.empty((K + 1, H_out * W_out * N), dtype=self.dtype)
        im2col(X, self.kernel_size, self.stride, self.padding, out=cols[:K])
        cols[K] = 1
        self._cols, self._X_shape = cols, X.shape  # cached: dW and db need the patches, dX the shape
        W_b = np.concatenate([self.W.value.reshape(C_out, K), self.b.value[:, None]], axis=1)
        Y = W_b @ cols  # (1) [W_mat b] @ [cols; 1] = W_mat @ cols + b, (C_out, H_out*W_out*N)
        return _as_images(Y.reshape(C_out, H_out, W_out, N))  # (N, C_out, H_out, W_out), no copy

    def backward(self, G: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        """Gradients of the convolution, derived through its im2col matrix form.

        Forward (1): ``Y[n, o, y, x] = sum_{c,i,j} W[o, c, i, j] Xp[n, c, S*y + i, S*x + j] + b[o]``,
        in matrix form ``Y_mat = W_mat @ cols + b = [W_mat b] @ [cols; 1]`` with
        ``W_mat = W.reshape(C_out, C*KH*KW)``, ``cols = im2col(X)`` of shape
        ``(C*KH*KW, H_out*W_out*N)``, ``[cols; 1]`` the same with a row of ones below (the bias is
        one more weight, on an input that is always 1) and ``Y_mat[o, (y, x, n)] = Y[n, o, y, x]``.

        Shapes: ``G = dL/dY (N, C_out, H_out, W_out)``, laid out as ``G_mat (C_out, H_out*W_out*N)``
        (a view: ``G`` comes back stored like ``Y``). Cache: ``[cols; 1]`` (needed for dW and db;
        keeping the unrolled patches saves redoing im2col) and the input shape (to fold dX back).

        Index form, by the chain rule ``dL/dθ = sum_{n,o,y,x} G[n, o, y, x] dY[n, o, y, x]/dθ``:
          dW[o, c, i, j]  = sum_{n,y,x} G[n, o, y, x] Xp[n, c, S*y + i, S*x + j]           (2)
          db[o]           = sum_{n,y,x} G[n, o, y, x]                                      (3)
          dXp[n, c, u, v] = sum over o, (y, i), (x, j) with S*y + i = u and S*x + j = v
                            of G[n, o, y, x] W[o, c, i, j]                                 (4)
          dX              = dXp without its P-pixel border                                 (5)
        (2) slides the output gradient over the input and takes dot products: dW is the
        *correlation of the input with the output gradient*, a convolution in its own right.
        In (4), with stride 1, put ``y = u - i``: ``dXp[n, c, u, v] = sum_{o,i,j} G[n, o, u-i, v-j]
        W[o, c, i, j]`` (G taken as 0 outside its range), a *full* convolution of G (every
        overlap, even partial) with the kernel; written as a correlation, like the forward pass,
        the kernel appears flipped: with ``i' = KH-1-i``, ``j' = KW-1-j`` and (5),
          dX[n, c, u, v] = sum_{o,i',j'} Gp[n, o, u + i', v + j'] W[o, c, KH-1-i', KW-1-j']    (6)
        where ``Gp`` is G zero-padded by ``KH-1-P`` rows and ``KW-1-P`` columns on each side: the
        forward pass (1) again, on G, with the flipped kernel, input and output channels swapped.

        Matrix form: (2) and (3) are one product, ``[dW_mat db] = G_mat @ [cols; 1].T`` (patches
        weighted by the gradient they received; the ones row sums G over positions, which is
        db; the row of ones spares a pass over Y to add b and one over G to sum db: the training
        step of the CNN is 1.3% (AVX2 BLAS kernels) and 3-6% (AVX-512) faster than with separate
        ``Y += b`` and ``G_mat.sum(axis=1)``). It is computed transposed, ``[cols; 1] @ G_mat.T``,
        the same numbers: OpenBLAS's AVX-512 kernels, its own choice on this CPU, run that
        orientation faster (6.3 against 8.1 ms for the CNN's second layer at batch 128, one
        thread: the step 1.5-3.7% faster); its AVX2 kernels take 9.4 ms either way.
        For (4)-(5) there are two ways, and both are here:
          (a) scatter: ``dcols = W_mat.T @ G_mat`` (each patch's gradient), then
              ``dX = col2im(dcols)``, which adds every patch entry back onto the pixel it was
              copied from: the flipped-kernel full convolution without flipping anything;
          (b) correlate, (6), stride 1 only: ``dX_mat = W_flip @ im2col(G, padding=K-1-P)``,
              ``W_flip = W[:, :, ::-1, ::-1].transpose(1, 0, 2, 3).reshape(C, C_out*KH*KW)``;
              no scatter, but G's patch matrix has ``C_out*KH*KW`` rows of ``H*W*N``.
        Each is paced by the numbers it moves: (a) writes and re-reads ``dcols``,
        ``C*KH*KW x H_out*W_out*N`` numbers, adding them back in ``KH*KW`` passes; (b) writes and
        re-reads G's patch matrix. So (b) is used when the stride is 1, the padding smaller than
        the kernel and G's patch matrix not larger than ``dcols``; (a) otherwise (strides > 1,
        more output than input channels). Measured, backward at batch 128, one thread, 3 x 3
        kernels on 14 x 14 inputs unless said, ms for (a) vs (b) with OpenBLAS's AVX2 | AVX-512
        kernels:
          Conv2D(32, 64, padding=1), the CNN's second layer   22.4 vs 25.0 | 15.2 vs 20.0
          Conv2D(32, 64), no padding                           15.8 vs 23.4 | 11.0 vs 18.4
          Conv2D(32, 32, padding=1)                            15.2 vs 12.3 | 11.0 vs  9.8
          Conv2D(64, 32, padding=1)                            34.4 vs 21.9 | 25.3 vs 14.7
          Conv2D(64, 64, padding=1)                            46.5 vs 41.8 | 31.5 vs 29.4
          Conv2D(16, 16, 5, padding=2), 28 x 28 input          52.8 vs 50.9 | 56.3 vs 47.3
        (b) for the CNN's second layer would make its whole training step 8-16% slower.

        Intuition: the same filter is applied at every position of every image, so its gradient
        (and the bias's) adds up over the batch *and* over positions; a pixel fed up to KH*KW
        outputs, so its gradient collects from all of them.
        ``dX`` is skipped (returns None) with ``input_grad=False``.
        """
        cols = self._cached(self._cols)
        C_out, K = self.c_out, cols.shape[0] - 1
        # G_mat (C_out, H_out*W_out*N), the layout of Y_mat: a view when G is stored like Y
        G_mat = G.transpose(1, 2, 3, 0).reshape(C_out, -1).astype(self.dtype, copy=False)
        dW_db = cols @ G_mat.T  # (2), (3) [dW_mat db] transposed, (K + 1, C_out)
        self.W.grad.reshape(C_out, K)[...] = dW_db[:K].T  # (2)
        self.b.grad[...] = dW_db[K]  # (3)
        if not input_grad:
            return None
        N, C, H, W = self._X_shape
        if self._correlate_for_dX():  # (b)
            (KH, KW), (PH, PW) = self.kernel_size, self.padding
            _, _, H_out, W_out = self.output_shape(self._X_shape)
            G_images = _as_images(G_mat.reshape(C_out, H_out, W_out, N))
            G_cols = im2col(G_images, self.kernel_size, padding=(KH - 1 - PH, KW - 1 - PW))  # Gp
            W_flip = self.W.value[:, :, ::-1, ::-1].transpose(1, 0, 2, 3).reshape(C, -1)
            return _as_images((W_flip @ G_cols).reshape(C, H, W, N))  # (6) (N, C, H, W), no copy
        dcols = self.W.value.reshape(C_out, K).T @ G_mat  # (a) (4) (C*KH*KW, H_out*W_out*N)
        return col2im(dcols, self._X_shape, self.kernel_size, self.stride, self.padding)  # (4), (5)

    def _correlate_for_dX(self) -> bool:
        """Whether backward computes dX as the correlation (6), way (b), rather than by col2im."""
        (KH, KW), (PH, PW) = self.kernel_size, self.padding
        if self.stride != (1, 1) or PH > KH - 1 or PW > KW - 1:
            return False
        N, C, H, W = self._X_shape
        _, C_out, H_out, W_out = self.output_shape(self._X_shape)
        return C_out * H * W <= C * H_out * W_out  # G's patch matrix is no larger than dcols

    def parameters(self) -> list[Parameter]:
        return [self.W, self.b]

    def __repr__(self) -> str:
        extra = "" if self.stride == (1, 1) else f", stride={_short(self.stride)}"
        extra += "" if self.padding == (0, 0) else f", padding={_short(self.padding)}"
        return f"Conv2D({self.c_in}, {self.c_out}, kernel_size={_short(self.kernel_size)}{extra})"


def _check_images(
    layer: Layer, X: np.ndarray, channels: int | None, kernel: tuple[int, int], padding: tuple[int, int]
) -> None:
    """Explain a wrong input: not ``(N, C, H, W)``, the wrong channel count, or smaller than the kernel."""
    c = "C" if channels is None else channels
    if X.ndim != 4 or (channels is not None and X.shape[1] != channels):
        hint = " (add a channel axis, e.g. X[:, None] for grey images)" if X.ndim == 3 else ""
        raise ValueError(f"{layer!r} expects input of shape (N, {c}, H, W), got {X.shape}{hint}")
    H, W = X.shape[2] + 2 * padding[0], X.shape[3] + 2 * padding[1]
    if H < kernel[0] or W < kernel[1]:
        where = f"input {H}x{W}"
        if padding != (0, 0):
            where = f"padded {where} ({X.shape[2]}x{X.shape[3]} with padding {padding})"
        raise ValueError(f"{layer!r}: the {kernel[0]}x{kernel[1]} window is larger than the {where}")


def _in_order_of(A: np.ndarray, like: np.ndarray) -> np.ndarray:
    """``A`` stored in the same memory order as ``like`` (same shape): ``A`` itself when it already
    is, else one reordering copy."""
    if np.array_equal(np.argsort(A.strides, kind="stable"), np.argsort(like.strides, kind="stable")):
        return A
    out = np.empty_like(like, dtype=A.dtype)
    out[...] = A
    return out


class MaxPool2D(Layer):
    """Max-pooling: the largest value of each ``PH x PW`` window, moved ``stride`` pixels at a time.

    ``Y[n, c, y, x] = max_{i < PH, j < PW} X[n, c, S_h*y + i, S_w*x + j]``; channels are pooled
    independently and there is no padding, so ``H_out = (H - PH) // S_h + 1`` (rows or columns
    that no window reaches are ignored, as in PyTorch). ``stride`` defaults to ``pool_size``
    (non-overlapping windows); a smaller stride makes windows overlap.

    Shapes: ``X (N, C, H, W)`` -> ``Y (N, C, H_out, W_out)``, ``Y`` stored in ``X``'s memory order.

    The forward pass loops over the ``PH * PW`` offsets inside a window: the offset-``(i, j)``
    elements of all windows form one strided slice of ``X``, and a running ``np.maximum`` over
    these slices is the max of every window at once. On the way it notes, per window, the offset
    of the first maximum (one byte per window), all that backward needs.

    Variants measured on the first max-pool of the CNN of ``experiments.cnn`` (batch 128, one
    thread, stored batch innermost). With non-overlapping windows ``X`` reshapes, without a copy,
    to ``X6 (N, C, H/PH, PH, W/PW, PW)`` and ``Y = X6.max(axis=(3, 5))``: 3.7 ms against 0.56 ms
    for the loop over offsets (NumPy reduces over axes of length 2 at a loop-overhead pace), so
    the loop serves tiled and overlapping windows alike; ``X6[:, :, :, i, :, j]`` is exactly the
    offset slice the loop takes. Finding the arg-max in backward instead (where ``X`` equals
    ``Y``, offset by offset) makes the forward cheaper but reads all of ``X`` again: the training
    step was 1.8-2.7% (AVX2 BLAS kernels) and 1.3-4.1% (AVX-512) slower that way.

    >>> pool = MaxPool2D(2)
    >>> pool.forward(np.arange(16.0).reshape(1, 1, 4, 4))[0, 0]
    array([[ 5.,  7.],
           [13., 15.]])
    """

    def __init__(self, pool_size: Pair, stride: Pair | None = None) -> None:
        self.pool_size = _pair(pool_size, "pool_size")
        self.stride = self.pool_size if stride is None else _pair(stride, "stride")
        self._X = None
        self._arg = None

    def output_shape(self, X_shape: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        """``(N, C, H_out, W_out)`` for an input of shape ``(N, C, H, W)``."""
        N, C, H, W = X_shape
        (PH, PW), (SH, SW) = self.pool_size, self.stride
        return N, C, conv_output_size(H, PH, SH), conv_output_size(W, PW, SW)

    def _offsets(self, A: np.ndarray, out_hw: tuple[int, int]):
        """Yield, for each offset ``(i, j)`` inside a window in row-major order, the element at that
        offset of every window: the strided view ``A[:, :, i::S_h, j::S_w]`` of shape
        ``(N, C, H_out, W_out)``."""
        (PH, PW), (SH, SW), (H_out, W_out) = self.pool_size, self.stride, out_hw
        for i in range(PH):
            for j in range(PW):
                yield A[:, :, i : i + SH * (H_out - 1) + 1 : SH, j : j + SW * (W_out - 1) + 1 : SW]

    def forward(self, X: np.ndarray) -> np.ndarray:
        _check_images(self, X, None, self.pool_size, (0, 0))
        _, _, H_out, W_out = self.output_shape(X.shape)
        offsets = self._offsets(X, (H_out, W_out))
        Y = next(offsets).copy(order="K")  # offset (0, 0); "K": in X's memory order
        arg = np.zeros_like(Y, dtype=np.min_scalar_type(self.pool_size[0] * self.pool_size[1] - 1))
        beats = np.empty_like(Y, dtype=bool)
        for k, V in enumerate(offsets, start=1):
            np.greater(V, Y, out=beats)  # (2) strictly: on a tie the earlier offset stays the arg-max
            np.maximum(Y, V, out=Y)  # (1)
            np.maximum(arg, beats * arg.dtype.type(k), out=arg)  # (2) arg = k where V beat all before
        self._X, self._arg = X, arg  # X by reference (layers never modify inputs): its shape and order
        return Y

    def backward(self, G: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        """Route each window's gradient to the element that was its maximum.

        Forward (1): ``Y[n, c, y, x] = max_{i,j} X[n, c, S_h*y + i, S_w*x + j]``, and (2) the
        offset ``k* = (i*, j*)`` of the first maximum of each window, in row-major window order.
        Shapes: ``G = dL/dY (N, C, H_out, W_out)``, ``dX (N, C, H, W)``. Cache: ``k*`` per window
        (one byte each, found by the forward max for free) and ``X`` by reference (no copy).

        Index form. Away from ties the max *selects* one element: a small change of any other
        element of the window leaves ``Y[n, c, y, x]`` unchanged, and a change of the winner passes
        through one for one:
          dY[n, c, y, x] / dX[n, c, u, v] = 1 if (u, v) == (S_h*y + i*, S_w*x + j*) else 0    (3)
          dX[n, c, u, v] = sum over windows (y, x) whose arg-max is (u, v) of G[n, c, y, x]   (4)
        Matrix form: for each window offset ``k = (i, j)``,
        ``dX[:, :, i::S_h, j::S_w] += G * (k* == k)``, a loop over the ``PH * PW`` offsets, each a
        whole-batch operation.

        Ties: where several elements share the maximum, the max is not differentiable and any
        split of ``G`` among them is a valid subgradient. Here ALL of it goes to ONE element, the
        first in row-major window order (smallest ``i``, then smallest ``j``), like PyTorch; the
        result is deterministic. Overlapping windows (stride < pool size): one pixel can win
        several windows and then receives the sum of their gradients, which is what the ``+=``
        in (4) does.

        Intuition: max-pooling is a router; the gradient flows back only along the path the
        signal took, through the winner of each window.
        """
        X, arg = self._cached(self._X), self._arg
        if not input_grad:
            return None  # no parameters: dX is all there is to compute
        G = _in_order_of(G, arg)  # elementwise work on two differently stored arrays is slow
        overlapping = any(s < p for s, p in zip(self.stride, self.pool_size, strict=True))
        (PH, PW), (_, _, H, W) = self.pool_size, X.shape
        tiled = self.stride == self.pool_size and H % PH == 0 and W % PW == 0  # no gaps, no overlaps
        # Tiled, the loop below writes every pixel of dX once, so dX needs no zeros first.
        dX = (np.empty_like if tiled else np.zeros_like)(X, dtype=np.result_type(X.dtype, G.dtype))
        for k, dV in enumerate(self._offsets(dX, arg.shape[2:])):  # offset k of every window in dX
            if overlapping:
                dV += G * (arg == k)  # (4) a pixel may win several windows: add up
            else:
                np.multiply(G, arg == k, out=dV)  # (4) each pixel is in one window: plain write
        return dX

    def __repr__(self) -> str:
        stride = "" if self.stride == self.pool_size else f", stride={_short(self.stride)}"
        return f"MaxPool2D({_short(self.pool_size)}{stride})"
