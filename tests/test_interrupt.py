"""Interrupted training leaves complete files behind, and damaged files are refused, never half-loaded.

The subprocess tests start a real training script with ``ModelCheckpoint`` and ``HistoryCheckpoint``,
read its progress lines until a few epochs are done (no sleeping: the script says when), stop it
with a signal, and check what is left on disk.
"""

from __future__ import annotations

import json
import os
import re
import runpy
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from minidl import SGD, Dense, Sequential, SoftmaxCrossEntropy, evaluate, fit
from minidl.callbacks import (
    Callback,
    EarlyStopping,
    HistoryCheckpoint,
    read_checkpoint_info,
    sigterm_as_interrupt,
)
from minidl.train import History

REPO = Path(__file__).resolve().parents[1]

TRAIN_SCRIPT = textwrap.dedent(
    """
    import signal
    import sys

    import numpy as np

    from minidl import SGD, Dense, ReLU, Sequential, SoftmaxCrossEntropy, fit
    from minidl.callbacks import HistoryCheckpoint, ModelCheckpoint, sigterm_as_interrupt

    STEPS_PER_EPOCH = 6


    def data():
        rng = np.random.default_rng(0)
        X = rng.normal(size=(256, 8)).astype(np.float32)
        y = (X[:, :3].sum(axis=1) > 0).astype(np.int64) + (X[:, 3] > 1)
        return X[:192], y[:192], X[192:], y[192:]


    def make_model():
        return Sequential([Dense(8, 16, rng=1), ReLU(), Dense(16, 3, rng=2)])


    if __name__ == "__main__":
        out = sys.argv[1]
        # Ctrl-C raises KeyboardInterrupt even if this process was started with SIGINT ignored
        signal.signal(signal.SIGINT, signal.default_int_handler)
        X, y, X_val, y_val = data()
        model = make_model()
        with sigterm_as_interrupt():
            fit(
                model, X, y, loss=SoftmaxCrossEntropy(), optimizer=SGD(model.parameters(), lr=1e-3),
                epochs=10**6, batch_size=192 // STEPS_PER_EPOCH, validation_data=(X_val, y_val),
                callbacks=[ModelCheckpoint(out + "/best.npz"), HistoryCheckpoint(out + "/history.json")],
                rng=0, verbose=2,
            )
    """
)


def run_until_epoch(tmp_path: Path, epoch: int, signum: int) -> subprocess.CompletedProcess:
    """Start the training script, wait for its progress line of ``epoch``, send ``signum``."""
    script = tmp_path / "train_script.py"
    script.write_text(TRAIN_SCRIPT)
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    seen = []
    try:
        for line in proc.stderr:  # progress lines: "epoch       3/1000000  0.0s  loss ..."
            seen.append(line)
            match = re.match(r"epoch\s+(\d+)/", line)
            if match and int(match.group(1)) >= epoch:
                break
        else:
            pytest.fail("training script ended early:\n" + "".join(seen))
        assert (out / "best.npz").exists()  # the checkpoint existed before the signal
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, "".join(seen) + stderr)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=lambda s: s.name)
def test_interrupted_training_leaves_a_loadable_checkpoint_and_history(tmp_path, signum):
    done = run_until_epoch(tmp_path, 3, signum)
    assert done.returncode != 0
    out = tmp_path / "out"
    script = runpy.run_path(str(tmp_path / "train_script.py"), run_name="helpers")
    X, y, X_val, y_val = script["data"]()

    # the checkpoint: the weights of the best epoch, with its score and epoch inside
    info = read_checkpoint_info(out / "best.npz")
    assert info["monitor"] == "val_loss" and info["best_epoch"] >= 1
    model = script["make_model"]()
    untrained = model.state_dict()
    model.load(out / "best.npz")
    assert not all(np.array_equal(untrained[k], v) for k, v in model.state_dict().items())
    score = evaluate(model, X_val, y_val, SoftmaxCrossEntropy())["loss"]
    assert score == pytest.approx(info["best_score"], rel=1e-6)

    # the history: parses, every list as long as the epochs it covers
    history = History.from_dict(json.loads((out / "history.json").read_text()))
    n = len(history.epoch)
    assert n >= 3 + 1
    assert history.epoch == list(range(n))
    assert all(len(v) == n for v in history.history.values())
    assert len(history.epoch_time) == n - 1
    steps = script["STEPS_PER_EPOCH"]
    assert (n - 1) * steps <= len(history.step_loss) <= n * steps
    val_loss = history.history["val_loss"]

    if signum == signal.SIGKILL:  # no chance to clean up: the files are one epoch apart at most
        assert info["best_epoch"] <= n
        if info["best_epoch"] < n:
            assert val_loss[info["best_epoch"]] == info["best_score"]
        return
    assert "KeyboardInterrupt" in done.stderr
    who = "SIGTERM" if signum == signal.SIGTERM else "user"
    match = re.fullmatch(
        rf"interrupted by {who} \(KeyboardInterrupt\) during epoch (\d+)", history.stop_reason
    )
    assert match, history.stop_reason
    assert history.stopped_epoch == int(match.group(1)) in (n - 1, n)
    assert history.best_epoch == info["best_epoch"]
    assert val_loss[info["best_epoch"]] == info["best_score"]
    # the best epoch, unless the signal came while the last epoch's better weights were being saved:
    # that save is abandoned whole, and the file keeps the best epoch before it
    assert info["best_score"] in (min(val_loss[1:]), min(val_loss[1:-1]))
    assert sorted(os.listdir(out)) == ["best.npz", "history.json"]  # no temporary files left


# ---- Ctrl-C inside fit, in process ---------------------------------------------------------------


class InterruptAt(Callback):
    """Raise KeyboardInterrupt (as Ctrl-C would) at the end of epoch ``epoch``; record on_train_end."""

    def __init__(self, epoch: int) -> None:
        self.epoch, self.ended = epoch, False

    def on_epoch_end(self, epoch, logs):
        if epoch == self.epoch:
            raise KeyboardInterrupt

    def on_train_end(self, logs):
        self.ended = True


def test_keyboard_interrupt_runs_on_train_end_then_is_re_raised(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    model = Sequential([Dense(3, 2, rng=0)]).eval()
    stopper, spy = EarlyStopping("loss", patience=100), InterruptAt(4)
    with pytest.raises(KeyboardInterrupt):
        fit(
            model,
            X,
            y,
            loss=SoftmaxCrossEntropy(),
            optimizer=SGD(model.parameters(), lr=0.5),
            epochs=10,
            callbacks=[stopper, spy, HistoryCheckpoint(tmp_path / "h.json")],
            verbose=0,
        )
    assert spy.ended
    assert not model.layers[0].training  # the caller's eval mode is restored
    history = spy.history
    assert history.stop_reason == "interrupted by user (KeyboardInterrupt) during epoch 4"
    assert history.stopped_epoch == 4 and not history.diverged
    assert stopper.best_epoch == 4  # loss fell every epoch; the restored weights are the last ones
    assert json.loads((tmp_path / "h.json").read_text())["stop_reason"] == history.stop_reason


def test_sigterm_as_interrupt_installs_and_restores_the_handler():
    before = signal.getsignal(signal.SIGTERM)
    with sigterm_as_interrupt():
        handler = signal.getsignal(signal.SIGTERM)
        assert callable(handler) and handler is not before
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
            handler(signal.SIGTERM, None)  # what the interpreter would call on SIGTERM
    assert signal.getsignal(signal.SIGTERM) is before


def test_sigterm_as_interrupt_outside_the_main_thread_does_nothing():
    before, errors = signal.getsignal(signal.SIGTERM), []

    def worker():
        try:
            with sigterm_as_interrupt():
                pass
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert errors == []
    assert signal.getsignal(signal.SIGTERM) is before


# ---- damaged checkpoint files --------------------------------------------------------------------


def make_model() -> Sequential:
    return Sequential([Dense(20, 16, rng=0), Dense(16, 3, rng=1)])


def truncate_half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def truncate_tail(data: bytes) -> bytes:
    return data[:-10]


def flip_middle_byte(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]


def garbage(data: bytes) -> bytes:
    return np.random.default_rng(0).integers(0, 256, len(data), dtype=np.uint8).tobytes()


def empty(data: bytes) -> bytes:
    return b""


@pytest.mark.parametrize("damage", [truncate_half, truncate_tail, flip_middle_byte, garbage, empty])
def test_damaged_checkpoint_is_refused_and_the_model_is_unchanged(tmp_path, damage):
    path = tmp_path / "best.npz"
    make_model().save(path, best_score=0.5, best_epoch=3)
    path.write_bytes(damage(path.read_bytes()))
    model = Sequential([Dense(20, 16, rng=5), Dense(16, 3, rng=6)])
    before = model.state_dict()
    with pytest.raises(ValueError, match=re.escape(str(path))):
        model.load(path)
    assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="damaged or not an .npz"):
        read_checkpoint_info(path)


def test_pickled_content_is_refused(tmp_path):
    path = tmp_path / "pickled.npz"
    np.savez(path, **{"0.W": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(ValueError, match=re.escape(str(path))):
        make_model().load(path)


def test_missing_checkpoint_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.npz"):
        make_model().load(tmp_path / "nowhere.npz")
