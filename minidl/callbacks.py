"""Callbacks: code that ``fit`` calls at fixed moments of training, to watch it or to stop it.

Hooks, in order: ``on_train_begin(logs)`` (logs hold the metrics before the first update),
``on_epoch_begin(epoch)``, ``on_batch_end(step, logs)`` after each update's loss is known,
``on_epoch_end(epoch, logs)`` with the epoch's metrics, ``on_train_end(logs)``. Epochs count from
1; epoch 0 means "before training". A callback stops training by calling
``self.history.stop(reason)``; ``fit`` finishes the current step or epoch and returns.

``on_train_end`` also runs when training is interrupted by Ctrl-C (``KeyboardInterrupt``), before
``fit`` re-raises it: that is where ``EarlyStopping`` restores the best weights and
``HistoryCheckpoint`` writes the final history. ``sigterm_as_interrupt()`` makes a ``kill``
(SIGTERM) behave the same way.

What is here: ``TerminateOnNaN`` (added by ``fit``), ``StopAfterUpdates``, ``EarlyStopping``,
``ModelCheckpoint`` with ``read_checkpoint_info``, ``HistoryCheckpoint``, the ``ProgressBar``,
``sigterm_as_interrupt``, ``EpochClock``, the learning-rate schedules ``ExponentialDecay`` and
``ReduceLROnPlateau``, and ``EpochAverage`` (the weights averaged over each epoch).
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import TextIO

import numpy as np

from minidl._io import write_text_atomic
from minidl._progress import StatusLine, is_live
from minidl.model import load_npz


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


class StopAfterUpdates(Callback):
    """Stop after ``updates`` updates in all, wherever that falls in an epoch (``max_steps`` elsewhere):
    the next batch's loss is computed, its update never made, and the epoch's metrics are taken as usual.

    Trainings on data sets of different sizes then make the same number of updates.
    """

    def __init__(self, updates: int) -> None:
        if isinstance(updates, bool) or not isinstance(updates, int | np.integer) or updates < 1:
            raise ValueError(f"updates must be a positive integer, got {updates!r}")
        self.updates = updates

    def on_batch_end(self, step: int, logs: dict) -> None:
        if len(self.history.step_loss) > self.updates:
            self.history.stop(f"{self.updates} updates made")


# ---- watching one metric: EarlyStopping and ModelCheckpoint ---------------------------------

_LOWER_IS_BETTER = ("loss", "error", "mse", "mae")
_HIGHER_IS_BETTER = ("accuracy", "acc", "auc", "f1", "precision", "recall")


def infer_mode(monitor: str) -> str:
    """``"min"`` for a name ending in ``loss`` (or ``error``, ``mse``, ``mae``), ``"max"`` for one
    ending in ``accuracy`` (or ``acc``, ``auc``, ``f1``, ``precision``, ``recall``).

    >>> infer_mode("val_loss"), infer_mode("val_accuracy")
    ('min', 'max')

    A name starting with ``neg_`` (scikit-learn's negated scores, ``neg_log_loss``) is not guessed.
    """
    name = monitor.lower()
    negated = name.removeprefix("val_").startswith("neg_")  # a negated loss goes up, despite its suffix
    if name.endswith(_LOWER_IS_BETTER) and not negated:
        return "min"
    if name.endswith(_HIGHER_IS_BETTER) and not negated:
        return "max"
    raise ValueError(f"cannot tell whether {monitor!r} should go down or up: pass mode='min' or mode='max'")


def _check_mode_fits_name(owner: str, monitor: str, mode: str) -> None:
    """An explicit ``mode`` must agree with a name that says which way is better (``val_loss`` with
    ``mode="max"`` would keep the worst epoch); a name that says nothing takes any mode."""
    try:
        implied = infer_mode(monitor)
    except ValueError:
        return
    if mode != implied:
        better = "lower" if implied == "min" else "higher"
        raise ValueError(
            f"{owner}: mode={mode!r} contradicts monitor {monitor!r}, whose name says {better} is "
            f"better (mode={implied!r}); leave mode=None to follow the name"
        )


class MonitorCallback(Callback):
    """A callback that follows one metric of the history (``monitor``) and knows which way is better.

    ``mode="min"``: lower is better, ``"max"``: higher is better, ``None``: read from the name
    (``infer_mode``). A new value is an improvement when it beats the reference by **more** than
    ``min_delta``: ``current < best - min_delta`` in min mode, ``current > best + min_delta`` in
    max mode. NaN and infinities never count as improvements.
    """

    def __init__(self, monitor: str, mode: str | None = None, min_delta: float = 0.0) -> None:
        if mode is None:
            mode = infer_mode(monitor)
        elif mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min', 'max' or None (inferred from the name), got {mode!r}")
        else:
            _check_mode_fits_name(type(self).__name__, monitor, mode)
        self.monitor, self.mode, self.min_delta = monitor, mode, abs(min_delta)

    def is_improvement(self, current: float, reference: float | None) -> bool:
        """Is ``current`` better than ``reference`` (None: nothing to beat yet) by more than min_delta?"""
        if not math.isfinite(current):
            return False
        if reference is None:
            return True
        if self.mode == "min":
            return current < reference - self.min_delta
        return current > reference + self.min_delta

    def monitored_value(self, logs: dict) -> float:
        """``logs[monitor]``, or an error listing the metrics that do exist (Keras only warns)."""
        if self.monitor not in logs:
            keys = [k for k, v in logs.items() if isinstance(v, float)]
            hint = ""
            if self.monitor.startswith("val_") and not any(k.startswith("val_") for k in keys):
                hint = " (val_* metrics need fit(..., validation_data=(X_val, y_val)))"
            raise ValueError(
                f"{type(self).__name__}: monitor {self.monitor!r} is not in the history; "
                f"it has {', '.join(keys) or 'nothing'}{hint}"
            )
        return float(logs[self.monitor])


class EarlyStopping(MonitorCallback):
    """Stop training when ``monitor`` has stopped improving, and go back to its best weights.

    Keras's ``EarlyStopping``, with the same arguments:

    * ``patience``: how many epochs in a row without improvement are tolerated. The run stops at
      the epoch that makes ``patience`` of them (``patience=0`` behaves like 1, as in Keras).
    * ``min_delta``: smaller changes than this do not count as improvements.
    * ``baseline``: when given, an improvement resets the patience count only if it also beats
      ``baseline``; so the run stops if ``monitor`` has not beaten ``baseline`` within ``patience``
      epochs. (Keras 3's code never stops while scores still improve, even above the baseline;
      this follows its documentation instead.)
    * ``start_from_epoch``: the first ``start_from_epoch`` epochs are a warm-up, not watched.
    * ``restore_best_weights`` (default True, unlike Keras): at the end of training, whether it
      stopped early, ran all its epochs, diverged or was interrupted, the model gets back the
      weights it had at the end of its best epoch.

    Only trained epochs (1, 2, ...) are candidates for "best", as in Keras: epoch 0, the untrained
    model, is never restored, even if every epoch made ``monitor`` worse. After training,
    ``best``, ``best_epoch`` and ``stopped_epoch`` (None if it did not stop the run) say what
    happened; ``history.best_epoch`` is set too, and the stop reason reads like
    ``early stopping: val_loss did not improve for 5 epochs (best 0.3123 at epoch 12)``.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        mode: str | None = None,
        patience: int = 0,
        min_delta: float = 0.0,
        restore_best_weights: bool = True,
        baseline: float | None = None,
        start_from_epoch: int = 0,
    ) -> None:
        super().__init__(monitor, mode, min_delta)
        if patience < 0 or start_from_epoch < 0:
            raise ValueError(
                f"patience and start_from_epoch must be >= 0, got {patience}, {start_from_epoch}"
            )
        self.patience, self.start_from_epoch = patience, start_from_epoch
        self.restore_best_weights, self.baseline = restore_best_weights, baseline
        self._reset()

    def _reset(self) -> None:
        self.wait = 0  # epochs since the last improvement that also beat the baseline
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.best_weights: dict[str, np.ndarray] | None = None
        self.stopped_epoch: int | None = None

    def on_train_begin(self, logs: dict) -> None:
        self._reset()  # the same instance may serve several fits
        self.monitored_value(logs)  # an unknown monitor fails now, before any training

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        current = self.monitored_value(logs)
        if epoch <= self.start_from_epoch:
            return  # warm-up
        self.wait += 1
        if self.is_improvement(current, self.best):
            self.best, self.best_epoch = current, epoch
            self.history.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.state_dict()  # a copy
            if self.baseline is None or self.is_improvement(current, self.baseline):
                self.wait = 0
        if self.wait >= max(self.patience, 1) and not self.history.stop_training:
            self.stopped_epoch = epoch
            self.history.stop(self._reason(), epoch=epoch)

    def _reason(self) -> str:
        epochs = f"{self.wait} epoch{'s' if self.wait != 1 else ''}"
        best = "no finite value" if self.best is None else f"best {self.best:.4f} at epoch {self.best_epoch}"
        beat_baseline = self.best is not None and self.is_improvement(self.best, self.baseline)
        if self.baseline is not None and not beat_baseline:
            what = f"did not beat the baseline {self.baseline:.4f} in"
        else:
            what = (
                f"did not improve by more than {self.min_delta:g} for"
                if self.min_delta
                else "did not improve for"
            )
        return f"early stopping: {self.monitor} {what} {epochs} ({best})"

    def on_train_end(self, logs: dict) -> None:
        if self.restore_best_weights and self.best_weights is not None:
            self.model.load_state_dict(self.best_weights)


class ModelCheckpoint(MonitorCallback):
    """Save the model's weights during training, by default only when ``monitor`` improves.

    ``path`` may name the epoch and any metric, filled in with ``str.format``:
    ``"ckpt/best.npz"`` keeps one file (the best so far), ``"ckpt/epoch{epoch}.npz"`` one per saved
    epoch, numbered from 1 and zero-padded to two digits like Keras's ``{epoch:02d}``
    (``epoch03.npz``); ``"ckpt/{epoch:03d}-{val_loss:.4f}.npz"`` works too. With
    ``save_best_only=False`` every epoch is saved.

    Files are ``Sequential.save`` archives (``.npz``, no pickle, written atomically: an
    interrupted run leaves the previous complete file, never half of a new one). Next to the
    weights they hold ``monitor``, ``mode``, ``best_score``, ``best_epoch`` and ``epoch``, so a
    restarted run knows what it has to beat: ``read_checkpoint_info(path)``. Load the weights with
    ``model.load(path)`` into a model of the same architecture. To resume, pass the stored score
    as ``initial_value_threshold`` (Keras's name): only a better model then overwrites the file.

    Like ``EarlyStopping``, only trained epochs (1, 2, ...) are saved or count as best.
    After training, ``best``, ``best_epoch`` and ``last_saved`` (the last file written) say what
    happened; ``history.best_epoch`` is set too.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        monitor: str = "val_loss",
        mode: str | None = None,
        save_best_only: bool = True,
        initial_value_threshold: float | None = None,
    ) -> None:
        super().__init__(monitor, mode)
        self.path = os.fspath(path)
        self.save_best_only = save_best_only
        self.initial_value_threshold = initial_value_threshold
        self.best, self.best_epoch, self.last_saved = initial_value_threshold, None, None

    def filename(self, epoch: int, logs: dict) -> str:
        """The file name for ``epoch``: ``path`` with ``{epoch}`` and metric names filled in."""
        pattern = self.path.replace("{epoch}", "{epoch:02d}")
        try:
            return pattern.format(epoch=epoch, **logs)
        except (KeyError, IndexError, ValueError) as err:
            names = ", ".join(["epoch", *(k for k, v in logs.items() if isinstance(v, float))])
            raise ValueError(
                f"ModelCheckpoint path {self.path!r} cannot be filled in ({type(err).__name__}: {err}); "
                f"it may use {{name}} or {{name:format}} with the names {names}"
            ) from err

    def on_train_begin(self, logs: dict) -> None:
        self.best, self.best_epoch, self.last_saved = self.initial_value_threshold, None, None
        self.monitored_value(logs)  # fail now, not after hours of training, on an unknown name
        self._check_writable(self.filename(0, logs))

    def _check_writable(self, path: str) -> None:
        """Fail before training if the checkpoint's folder cannot be written: create and remove a
        temporary file in it, or in its nearest existing parent (missing folders are made at save)."""
        folder = os.path.dirname(os.path.abspath(path))
        while not os.path.exists(folder):
            folder = os.path.dirname(folder)
        try:
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as err:
            raise OSError(
                f"ModelCheckpoint cannot write {self.path!r}: {folder!r} is not a writable folder "
                f"({err.strerror or err}); choose a path in a folder you can write to"
            ) from err

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        current = self.monitored_value(logs)
        improved = self.is_improvement(current, self.best)
        best, best_epoch = (current, epoch) if improved else (self.best, self.best_epoch)
        if improved or not self.save_best_only:
            self.last_saved = self.save(epoch, logs, best, best_epoch)
        # Recorded only once the file is written: an interrupted save keeps the old file, and the
        # old record that goes with it.
        self.best, self.best_epoch = best, best_epoch
        if improved:
            self.history.best_epoch = epoch

    def save(self, epoch: int, logs: dict, best: float | None, best_epoch: int | None) -> str:
        """Write the weights of ``epoch`` with the best score so far and its epoch; returns the file name."""
        path = self.filename(epoch, logs)
        self.model.save(
            path,
            monitor=self.monitor,
            mode=self.mode,
            best_score=np.nan if best is None else best,
            best_epoch=0 if best_epoch is None else best_epoch,
            epoch=epoch,
        )
        return path


def read_checkpoint_info(path: str | os.PathLike) -> dict:
    """What a ``ModelCheckpoint`` file says about itself, without loading it into a model.

    Returns ``{"monitor": "val_loss", "mode": "min", "best_score": 0.3123, "best_epoch": 12,
    "epoch": 12}``: the monitored metric, the best score and its epoch when the file was written
    (None if no epoch had a finite score yet), and the epoch whose weights the file holds.
    """
    arrays = load_npz(path)
    try:
        score, best_epoch = float(arrays["__best_score__"]), int(arrays["__best_epoch__"])
        info = {"monitor": str(arrays["__monitor__"]), "mode": str(arrays["__mode__"])}
        info["epoch"] = int(arrays["__epoch__"])
    except KeyError as err:
        raise ValueError(f"{os.fspath(path)!r} was not written by ModelCheckpoint (no {err} entry)") from err
    info["best_score"] = score if math.isfinite(score) else None
    info["best_epoch"] = best_epoch if best_epoch > 0 else None
    return info


class HistoryCheckpoint(Callback):
    """Write ``history.to_dict()`` as JSON to ``path`` before training, after every epoch and at
    the end, atomically. A run that is interrupted or killed leaves the history so far on disk,
    complete and loadable with ``History.from_dict(json.load(f))``.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)

    def write(self) -> None:
        write_text_atomic(self.path, self.history.to_json())

    def on_train_begin(self, logs: dict) -> None:
        self.write()

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        self.write()

    def on_train_end(self, logs: dict) -> None:
        self.write()  # with the stop reason and the best epoch


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within this block, SIGTERM (``kill PID``, a batch system ending a job) raises
    ``KeyboardInterrupt`` like Ctrl-C, so ``fit`` records the interruption, runs every callback's
    ``on_train_end`` (best weights restored, final history written) and re-raises.

    Usage: ``with sigterm_as_interrupt(): fit(model, X, y, ...)``.

    The previous handler comes back on exit. Python runs signal handlers in the main thread only,
    so in another thread this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# ---- progress display -------------------------------------------------------------------------


def _format_logs(logs: dict) -> str:
    return "  ".join(f"{k} {v:.4f}" for k, v in logs.items() if isinstance(v, float))


class ProgressBar(Callback):
    """Training progress on stderr, through the shared progress line (``minidl._progress``).

    ``mode=1`` (live): one line redrawn in place with ``\\r``, at most ten times a second, with a
    bar, the running loss and an ETA that ignores the slow first batch; each finished epoch then
    leaves one line. ``mode=2``: exactly one flushed line per epoch and nothing else (no ``\\r``),
    for logs and pipes. ``fit(verbose=None)`` picks 1 on a terminal or in Jupyter, else 2.
    """

    def __init__(self, mode: int = 2, epochs: int | None = None, stream: TextIO | None = None) -> None:
        self.mode, self.epochs = mode, epochs
        self.out = StatusLine(stream, live=mode == 1)

    def _epoch_label(self, epoch: int) -> str:
        width = len(str(self.epochs)) if self.epochs else 1
        total = f"/{self.epochs}" if self.epochs else ""
        return f"epoch {epoch:>{width}}{total}"

    def on_train_begin(self, logs: dict) -> None:
        self.out.line(f"{self._epoch_label(0)}  {_format_logs(logs)}  (before training)")

    def on_epoch_begin(self, epoch: int) -> None:
        self._t0 = time.perf_counter()
        self._t_first = None
        self._running = 0.0

    def on_batch_end(self, step: int, logs: dict) -> None:
        if not self.out.live:
            return
        now = time.perf_counter()
        self._running += (logs["loss"] - self._running) / (step + 1)
        if step == 0:
            self._t_first = now  # the first batch is slow (warm-up); time the rest
        n, done = logs["n_batches"], step + 1
        if not self.out.due(force=done == n):
            return
        eta = f"  ETA {(now - self._t_first) / step * (n - done):.0f}s" if step > 0 else ""
        filled = int(20 * done / n)
        bar = "=" * filled + (">" if filled < 20 else "") + "." * max(0, 19 - filled)
        self.out.update(
            f"{self._epoch_label(logs['epoch'])} [{bar}] {done}/{n}  loss {self._running:.4f}{eta}"
        )

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        seconds = time.perf_counter() - self._t0
        self.out.line(f"{self._epoch_label(epoch)}  {seconds:.1f}s  {_format_logs(logs)}")

    def on_train_end(self, logs: dict) -> None:
        self.out.close()  # stopped mid-epoch (divergence, Ctrl-C): keep the live line, end it
        reason = self.history.stop_reason if self.history is not None else None
        if reason:
            self.out.line(f"stopped: {reason}")


def default_verbosity(stream: TextIO | None = None) -> int:
    """1 (live line) on a terminal or in Jupyter, 2 (a line per epoch) otherwise."""
    return 1 if is_live(stream if stream is not None else sys.stderr) else 2


class EpochClock(Callback):
    """Wall-clock and CPU seconds of every whole epoch, in ``wall`` and ``cpu`` (lists, one per epoch).

    A whole epoch: the updates, scoring the training and validation sets, and the other
    callbacks' work (put this one last to count theirs). ``History.epoch_time`` times the updates
    alone. With one BLAS thread, CPU time is what the epoch would take on an idle core; wall time
    also counts waiting for a busy machine.
    """

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def on_epoch_begin(self, epoch: int) -> None:
        self._started = time.perf_counter(), time.process_time()

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        self.wall.append(time.perf_counter() - self._started[0])
        self.cpu.append(time.process_time() - self._started[1])


class ExponentialDecay(Callback):
    """Set the optimiser's learning rate before each epoch: ``lr_e = lr_1 * gamma ** (e - 1)``.

    Large steps first, to get near a good region fast; smaller steps later, to settle into it
    instead of bouncing around it (the noise of a mini-batch step grows with the learning rate).
    ``lrs`` lists the rate each epoch used.
    """

    def __init__(self, optimizer, gamma: float) -> None:
        if not 0 < gamma <= 1:
            raise ValueError(f"gamma must be in (0, 1], got {gamma}")
        self.optimizer, self.gamma = optimizer, gamma
        self.lr_1 = optimizer.lr
        self.lrs: list[float] = []

    def on_epoch_begin(self, epoch: int) -> None:
        self.optimizer.lr = self.lr_1 * self.gamma ** (epoch - 1)
        self.lrs.append(self.optimizer.lr)


class ReduceLROnPlateau(MonitorCallback):
    """Multiply the optimiser's learning rate by ``factor`` once ``monitor`` has not improved for
    ``patience`` epochs in a row, never below ``min_lr`` (Keras's callback of the same name; the
    optimiser is passed in, since callbacks see the model, not the optimiser).

    Big steps while the score improves, smaller ones once it stalls: the small steps settle into
    a minimum the big ones kept jumping over. ``reductions`` lists ``(epoch, new_lr)``.
    """

    def __init__(
        self,
        optimizer,
        monitor: str = "val_loss",
        factor: float = 0.5,
        patience: int = 2,
        min_lr: float = 1e-6,
        mode: str | None = None,
        min_delta: float = 0.0,
    ) -> None:
        super().__init__(monitor, mode, min_delta)
        if not 0 < factor < 1:
            raise ValueError(f"factor must be in (0, 1), got {factor}")
        self.optimizer, self.factor, self.patience, self.min_lr = optimizer, factor, max(patience, 1), min_lr
        self.best: float | None = None
        self.wait = 0
        self.reductions: list[tuple[int, float]] = []

    def on_train_begin(self, logs: dict) -> None:
        self.best, self.wait, self.reductions = None, 0, []
        self.monitored_value(logs)  # an unknown monitor fails before training starts

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        current = self.monitored_value(logs)
        if self.is_improvement(current, self.best):
            self.best, self.wait = current, 0
            return
        self.wait += 1
        if self.wait >= self.patience and self.optimizer.lr > self.min_lr:
            self.optimizer.lr = max(self.optimizer.lr * self.factor, self.min_lr)
            self.reductions.append((epoch, self.optimizer.lr))
            self.wait = 0


class EpochAverage(Callback):
    """Polyak (tail) averaging: the mean of the weights over each epoch's updates.

    ``averages[e - 1]`` is a state dict (the layout of ``model.state_dict()``) holding, for every
    parameter, the mean of the values it started each update of epoch e from:

        W_avg(e) = (1/n) * sum over t = 1 .. n of W_(t-1)        n = updates in the epoch

    With a step size that stays large, SGD keeps jumping around a minimum instead of settling
    into it; the mean of an epoch's iterates sits nearer the centre of that cloud than any one
    of them (for a convex loss, the loss at the mean is at most the mean of the losses). Score it
    after training with ``model.load_state_dict(cb.averages[-1])``. Sums are kept in float64.
    """

    def on_train_begin(self, logs: dict) -> None:
        self.averages: list[dict[str, np.ndarray]] = []

    def on_epoch_begin(self, epoch: int) -> None:
        self.total = {name: np.zeros(p.value.shape) for name, p in self.model.named_parameters()}
        self.count = 0

    def on_batch_end(self, step: int, logs: dict) -> None:  # before the step's update
        for name, p in self.model.named_parameters():
            self.total[name] += p.value
        self.count += 1

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        dtype = {name: p.value.dtype for name, p in self.model.named_parameters()}
        self.averages.append({name: (t / self.count).astype(dtype[name]) for name, t in self.total.items()})
