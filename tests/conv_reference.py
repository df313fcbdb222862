"""Deliberately slow, loop-by-loop convolution and max-pooling, used only to test minidl.conv.

Each function is the textbook definition written out per example, per output position and per
channel, with no im2col and no stride tricks, so it is easy to check by eye. The backward
functions apply the chain rule one output at a time: every output ``Y[n, o, y, x]`` received
``G[n, o, y, x]`` and hands it to everything that produced it. Use tiny float64 arrays.
"""

from __future__ import annotations

import numpy as np


def _pad(X: np.ndarray, PH: int, PW: int) -> np.ndarray:
    N, C, H, W = X.shape
    Xp = np.zeros((N, C, H + 2 * PH, W + 2 * PW), dtype=np.float64)
    Xp[:, :, PH : PH + H, PW : PW + W] = X
    return Xp


def conv2d_forward(X, W, b, stride=(1, 1), padding=(0, 0)) -> np.ndarray:
    """``Y[n, o, y, x] = b[o] + sum_c sum_{i,j} W[o, c, i, j] Xp[n, c, SH*y + i, SW*x + j]``."""
    (SH, SW), (PH, PW) = stride, padding
    N, C, H, Wd = X.shape
    C_out, _, KH, KW = W.shape
    Xp = _pad(X, PH, PW)
    H_out, W_out = (H + 2 * PH - KH) // SH + 1, (Wd + 2 * PW - KW) // SW + 1
    Y = np.zeros((N, C_out, H_out, W_out))
    for n in range(N):
        for o in range(C_out):
            for y in range(H_out):
                for x in range(W_out):
                    total = b[o]
                    for c in range(C):
                        patch = Xp[n, c, SH * y : SH * y + KH, SW * x : SW * x + KW]
                        total += np.sum(W[o, c] * patch)
                    Y[n, o, y, x] = total
    return Y


def conv2d_backward(X, W, G, stride=(1, 1), padding=(0, 0)):
    """``(dX, dW, db)`` for ``G = dL/dY``, one output position at a time."""
    (SH, SW), (PH, PW) = stride, padding
    N, C, H, Wd = X.shape
    C_out, _, KH, KW = W.shape
    Xp = _pad(X, PH, PW)
    dXp, dW, db = np.zeros_like(Xp), np.zeros(W.shape), np.zeros(C_out)
    _, _, H_out, W_out = G.shape
    for n in range(N):
        for o in range(C_out):
            for y in range(H_out):
                for x in range(W_out):
                    g = G[n, o, y, x]
                    db[o] += g
                    for c in range(C):
                        rows = slice(SH * y, SH * y + KH)
                        cols = slice(SW * x, SW * x + KW)
                        dW[o, c] += g * Xp[n, c, rows, cols]
                        dXp[n, c, rows, cols] += g * W[o, c]
    return dXp[:, :, PH : PH + H, PW : PW + Wd], dW, db


def maxpool2d_forward(X, pool=(2, 2), stride=(2, 2)):
    """``(Y, argmax)``: the window maxima and, per window, the flat index of its winner inside
    the window (``np.argmax``: the first maximum in row-major order)."""
    (PH, PW), (SH, SW) = pool, stride
    N, C, H, W = X.shape
    H_out, W_out = (H - PH) // SH + 1, (W - PW) // SW + 1
    Y = np.zeros((N, C, H_out, W_out))
    arg = np.zeros((N, C, H_out, W_out), dtype=int)
    for n in range(N):
        for c in range(C):
            for y in range(H_out):
                for x in range(W_out):
                    window = X[n, c, SH * y : SH * y + PH, SW * x : SW * x + PW]
                    arg[n, c, y, x] = np.argmax(window)
                    Y[n, c, y, x] = window.flat[arg[n, c, y, x]]
    return Y, arg


def maxpool2d_backward(X, G, pool=(2, 2), stride=(2, 2)) -> np.ndarray:
    """``dX``: each window's gradient goes to its first maximum; overlapping windows add up."""
    (_, PW), (SH, SW) = pool, stride
    _, arg = maxpool2d_forward(X, pool, stride)
    dX = np.zeros(X.shape)
    N, C, H_out, W_out = G.shape
    for n in range(N):
        for c in range(C):
            for y in range(H_out):
                for x in range(W_out):
                    i, j = divmod(arg[n, c, y, x], PW)
                    dX[n, c, SH * y + i, SW * x + j] += G[n, c, y, x]
    return dX
