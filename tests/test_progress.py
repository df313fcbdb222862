"""The one progress line (minidl._progress) that training, sweeps and downloads share."""

from __future__ import annotations

import io
import sys
import types

import numpy as np
import pytest

from minidl import SGD, Dense, Sequential, SoftmaxCrossEntropy, _progress, fit
from minidl._progress import StatusLine, is_live
from minidl.callbacks import default_verbosity


class FakeKernelStream(io.StringIO):
    """Stands in for ipykernel's OutStream: not a tty, defined in an ``ipykernel`` module."""

    def isatty(self) -> bool:
        return False


FakeKernelStream.__module__ = "ipykernel.iostream"


class Clock:
    """A clock that moves only when told, in place of time.monotonic (no sleeping)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(_progress.time, "monotonic", clock)
    return clock


def test_a_notebook_stream_is_live_a_file_is_not(monkeypatch):
    kernel = FakeKernelStream()
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    assert not is_live(kernel)  # no kernel running: just some stream
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    assert is_live(kernel) and default_verbosity(kernel) == 1
    assert not is_live(io.StringIO()) and default_verbosity(io.StringIO()) == 2  # a log, in a kernel too


def test_live_line_redraws_at_most_ten_times_a_second(clock):
    stream = io.StringIO()
    line = StatusLine(stream, live=True)
    drawn = 0
    for step in range(64):  # 64 updates 1/64 s apart (one second): a redraw every 7th
        if line.due():
            line.update(f"step {step}")
            drawn += 1
        clock.now += 1 / 64
    assert drawn == 10 and stream.getvalue().count("\r") == 10
    assert line.due(force=True)
    line.update("the last one")
    line.line("done")  # replaces the live line, padded over the longer text before it
    assert stream.getvalue().endswith("\rthe last one\rdone        \n")


def test_a_log_gets_whole_plain_ascii_lines_only():
    stream = io.StringIO()
    line = StatusLine(stream, live=False)
    assert not line.due(force=True)
    line.update("never shown")
    line.line("epoch 1  loss 0.5 \u2192 0.4")
    line.close()
    assert stream.getvalue() == "epoch 1  loss 0.5 ? 0.4\n"
    assert stream.getvalue().isascii()


def test_training_in_a_notebook_redraws_one_line_not_hundreds(monkeypatch, clock):
    """fit's default verbosity in a notebook: the live line, redrawn only when 0.1 s has passed."""
    kernel = FakeKernelStream()
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    monkeypatch.setattr(sys, "stderr", kernel)
    rng = np.random.default_rng(0)
    X, y = rng.random((400, 4), dtype=np.float32), rng.integers(0, 3, 400)
    model = Sequential([Dense(4, 3, rng=0)])
    fit(model, X, y, loss=SoftmaxCrossEntropy(), optimizer=SGD(model.parameters(), lr=0.1),
        epochs=2, batch_size=4, rng=0)  # fmt: skip
    text = kernel.getvalue()
    # 100 batches per epoch and the clock stopped: only the very first batch and each epoch's last
    # (forced) are drawn, then the finished epoch line replaces the live one
    assert text.count("\r") == 1 + 2 * 2
    assert text.count("\n") == 1 + 2  # before training, then one line per epoch
