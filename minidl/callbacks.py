"""Callbacks: code that ``fit`` calls at fixed moments of training, to watch it or to stop it.

Hooks, in order: ``on_train_begin(logs)`` (logs hold the metrics before the first update),
``on_epoch_begin(epoch)``, ``on_batch_end(step, logs)`` after each update's loss is known,
``on_epoch_end(epoch, logs)`` with the epoch's metrics, ``on_train_end(logs)``. Epochs count from
1; epoch 0 means "before training". A callback stops training by calling
``self.history.stop(reason)``; ``fit`` finishes the current step or epoch and returns.
"""

from __future__ import annotations

import math
import sys
import time
from typing import TextIO


class Callback:
    """Base class; every hook does nothing. ``fit`` sets ``self.model`` and ``self.history``."""

    model = None
    history = None

    def set_context(self, model, history) -> None:
        self.model, self.history = model, history

    def on_train_begin(self, logs: dict) -> None:
        pass

    def on_epoch_begin(self, epoch: int) -> None:
        pass

    def on_batch_end(self, step: int, logs: dict) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        pass

    def on_train_end(self, logs: dict) -> None:
        pass


class TerminateOnNaN(Callback):
    """Stop as soon as a loss is NaN or infinite, naming the epoch and step. ``fit`` adds one.

    A diverging run is not a crash: the history up to that point is kept and returned, and
    ``history.stop_reason`` says what happened.
    """

    def on_batch_end(self, step: int, logs: dict) -> None:
        if not math.isfinite(logs["loss"]):
            self.history.stop(
                f"loss became {logs['loss']} at epoch {logs['epoch']}, step {step + 1}: training "
                "diverged. Try a smaller learning rate.",
                epoch=logs["epoch"],
                diverged=True,
            )

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        bad = [k for k, v in logs.items() if isinstance(v, float) and not math.isfinite(v)]
        if bad:
            self.history.stop(
                f"{', '.join(bad)} became non-finite at the end of epoch {epoch}: training "
                "diverged. Try a smaller learning rate.",
                epoch=epoch,
                diverged=True,
            )


def _format_logs(logs: dict) -> str:
    return "  ".join(f"{k} {v:.4f}" for k, v in logs.items() if isinstance(v, float))


class ProgressBar(Callback):
    """Training progress on stderr.

    ``mode=1`` (live): one line redrawn in place with ``\\r``, at most ten times a second, with a
    bar, the running loss and an ETA that ignores the slow first batch; each finished epoch then
    leaves one line. ``mode=2``: exactly one flushed line per epoch and nothing else (no ``\\r``),
    for logs and pipes. ``fit(verbose=None)`` picks 1 on a terminal or in Jupyter, else 2.
    """

    def __init__(
        self,
        mode: int = 2,
        epochs: int | None = None,
        stream: TextIO | None = None,
        min_interval: float = 0.1,
    ) -> None:
        self.mode, self.epochs = mode, epochs
        self.stream = stream if stream is not None else sys.stderr
        self.min_interval = min_interval

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def _epoch_label(self, epoch: int) -> str:
        width = len(str(self.epochs)) if self.epochs else 1
        total = f"/{self.epochs}" if self.epochs else ""
        return f"epoch {epoch:>{width}}{total}"

    def on_train_begin(self, logs: dict) -> None:
        self._write(f"{self._epoch_label(0)}  {_format_logs(logs)}  (before training)\n")

    def on_epoch_begin(self, epoch: int) -> None:
        self._t0 = time.perf_counter()
        self._t_first = None
        self._last_draw = 0.0
        self._running = 0.0

    def on_batch_end(self, step: int, logs: dict) -> None:
        if self.mode != 1:
            return
        now = time.perf_counter()
        self._running += (logs["loss"] - self._running) / (step + 1)
        if step == 0:
            self._t_first = now  # the first batch is slow (warm-up); time the rest
        n = logs["n_batches"]
        if now - self._last_draw < self.min_interval and step + 1 < n:
            return
        self._last_draw = now
        done = step + 1
        eta = ""
        if step > 0:
            per_batch = (now - self._t_first) / step
            eta = f"  ETA {per_batch * (n - done):.0f}s"
        filled = int(20 * done / n)
        bar = "=" * filled + (">" if filled < 20 else "") + "." * max(0, 19 - filled)
        self._write(
            f"\r{self._epoch_label(logs['epoch'])} [{bar}] {done}/{n}  loss {self._running:.4f}{eta}   "
        )

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        seconds = time.perf_counter() - self._t0
        line = f"{self._epoch_label(epoch)}  {seconds:.1f}s  {_format_logs(logs)}"
        self._write(("\r" + line + " " * 20 + "\n") if self.mode == 1 else line + "\n")

    def on_train_end(self, logs: dict) -> None:
        reason = self.history.stop_reason if self.history is not None else None
        if reason:
            self._write(f"stopped: {reason}\n")


def default_verbosity(stream: TextIO | None = None) -> int:
    """1 (live line) on a terminal or in Jupyter, 2 (a line per epoch) otherwise."""
    stream = stream if stream is not None else sys.stderr
    in_jupyter = "ipykernel" in sys.modules
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    return 1 if (tty or in_jupyter) else 2
