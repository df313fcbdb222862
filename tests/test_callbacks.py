"""Callbacks on scripted metric sequences: no training, the hooks are called by hand as ``fit`` would.

``run_script`` plays a list of scores, one per epoch, and before each epoch's hooks fills every
weight of a tiny model with the epoch number, so "which epoch's weights are these?" has a
one-glance answer.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from minidl import SGD, Dense, Sequential, SoftmaxCrossEntropy, evaluate, fit
from minidl.callbacks import (
    Callback,
    EarlyStopping,
    EpochAverage,
    ExponentialDecay,
    HistoryCheckpoint,
    ModelCheckpoint,
    ReduceLROnPlateau,
    StopAfterUpdates,
    infer_mode,
    read_checkpoint_info,
)
from minidl.model import load_npz
from minidl.train import History

NAN = float("nan")


def tiny_model() -> Sequential:
    return Sequential([Dense(3, 2, rng=0)])


def mark(model: Sequential, epoch: int) -> None:
    """Make the weights say which epoch they come from."""
    for p in model.parameters():
        p.value[...] = epoch


def epoch_of(model: Sequential) -> float:
    values = np.concatenate([p.value.ravel() for p in model.parameters()])
    assert np.all(values == values[0]), "weights of several epochs mixed"
    return float(values[0])


def run_script(callbacks, scores, monitor="val_loss", before=10.0, model=None):
    """Drive ``callbacks`` like ``fit``: ``before`` is the epoch-0 score, ``scores[i]`` the score
    after epoch ``i + 1``. Stops when a callback asks to. Returns ``(model, history)``."""
    callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
    model = model if model is not None else tiny_model()
    history = History()
    for cb in callbacks:
        cb.set_context(model, history)
    logs = {"loss": 1.0, monitor: before}
    history.append(0, logs)
    for cb in callbacks:
        cb.on_train_begin(logs)
    for epoch, score in enumerate(scores, start=1):
        for cb in callbacks:
            cb.on_epoch_begin(epoch)
        mark(model, epoch)
        logs = {"loss": 1.0, monitor: float(score)}
        history.append(epoch, logs)
        for cb in callbacks:
            cb.on_epoch_end(epoch, logs)
        if history.stop_training:
            break
    for cb in callbacks:
        cb.on_train_end(logs)
    return model, history


# ---- EarlyStopping ---------------------------------------------------------------------------

RISING_AFTER_2 = [1.0, 0.9, 0.95, 0.96, 0.97, 0.98, 0.99]


@pytest.mark.parametrize(("patience", "stopped"), [(0, 3), (1, 3), (2, 4), (3, 5), (5, 7), (6, None)])
def test_patience_counts_epochs_without_improvement(patience, stopped):
    cb = EarlyStopping(patience=patience)
    _, history = run_script(cb, RISING_AFTER_2)
    assert cb.stopped_epoch == stopped
    assert history.stopped_epoch == stopped
    assert history.epoch[-1] == (stopped or len(RISING_AFTER_2))
    assert (cb.best, cb.best_epoch, history.best_epoch) == (0.9, 2, 2)


def test_stop_reason_names_monitor_epochs_and_best():
    _, history = run_script(EarlyStopping(patience=2), RISING_AFTER_2)
    assert (
        history.stop_reason
        == "early stopping: val_loss did not improve for 2 epochs (best 0.9000 at epoch 2)"
    )
    assert not history.diverged


def test_an_improvement_resets_the_count():
    cb = EarlyStopping(patience=3)
    run_script(cb, [1.0, 1.1, 1.2, 0.5, 0.6, 0.7, 0.8, 0.9])
    assert (cb.stopped_epoch, cb.best_epoch) == (7, 4)


def test_an_equal_score_is_not_an_improvement():
    cb = EarlyStopping(patience=1)
    run_script(cb, [1.0, 1.0, 0.5])
    assert (cb.stopped_epoch, cb.best_epoch) == (2, 1)


def test_min_delta_in_min_mode():
    scores = [1.0, 0.95, 0.91, 0.85]
    cb = EarlyStopping(patience=2, min_delta=0.1)
    _, history = run_script(cb, scores)
    assert (cb.stopped_epoch, cb.best_epoch) == (3, 1)
    assert "did not improve by more than 0.1 for 2 epochs (best 1.0000 at epoch 1)" in history.stop_reason
    plain = EarlyStopping(patience=2)
    run_script(plain, scores)
    assert (plain.stopped_epoch, plain.best_epoch) == (None, 4)


def test_min_delta_in_max_mode_and_its_sign_is_ignored():
    scores = [0.5, 0.55, 0.58, 0.7]
    for delta in (0.1, -0.1):
        cb = EarlyStopping("val_accuracy", patience=2, min_delta=delta)
        run_script(cb, scores, monitor="val_accuracy", before=0.0)
        assert (cb.stopped_epoch, cb.best_epoch, cb.best) == (3, 1, 0.5)


@pytest.mark.parametrize(
    ("monitor", "mode"),
    [("val_loss", "min"), ("loss", "min"), ("val_accuracy", "max"), ("accuracy", "max"), ("val_auc", "max")],
)
def test_mode_follows_from_the_name(monitor, mode):
    assert infer_mode(monitor) == mode
    assert EarlyStopping(monitor).mode == mode
    assert ModelCheckpoint("unused.npz", monitor).mode == mode


def test_accuracy_is_maximised():
    cb = EarlyStopping("val_accuracy", patience=1)
    run_script(cb, [0.5, 0.7, 0.6], monitor="val_accuracy", before=0.0)
    assert (cb.stopped_epoch, cb.best_epoch, cb.best) == (3, 2, 0.7)


def test_explicit_mode_is_followed():
    scores = [1.0, 2.0, 1.5]
    inferred, explicit = EarlyStopping(patience=1), EarlyStopping("val_score", mode="max", patience=1)
    run_script(inferred, scores)
    run_script(explicit, scores, monitor="val_score")
    assert (inferred.stopped_epoch, inferred.best_epoch) == (2, 1)
    assert (explicit.stopped_epoch, explicit.best_epoch) == (3, 2)


def test_unguessable_name_or_bad_mode_is_an_error():
    with pytest.raises(ValueError, match="mode='min' or mode='max'"):
        EarlyStopping("val_margin")
    assert EarlyStopping("val_margin", mode="max").mode == "max"
    with pytest.raises(ValueError, match="'min', 'max' or None"):
        EarlyStopping(mode="minimum")
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=-1)


@pytest.mark.parametrize("make", [lambda: EarlyStopping(), lambda: ModelCheckpoint("unused.npz")])
def test_unknown_monitor_lists_the_keys_the_history_has(make):
    cb = make()
    cb.set_context(tiny_model(), History())
    with pytest.raises(ValueError, match="monitor 'val_loss'") as err:
        cb.on_train_begin({"loss": 1.0, "accuracy": 0.5})
    assert "it has loss, accuracy" in str(err.value)
    assert "validation_data" in str(err.value)
    with pytest.raises(ValueError, match="it has loss, val_los"):
        cb.on_epoch_end(1, {"loss": 1.0, "val_los": 0.5})


def test_unknown_monitor_stops_fit_before_any_update():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 3)).astype(np.float32), rng.integers(0, 2, 20)
    model = tiny_model()
    before = model.state_dict()
    with pytest.raises(ValueError, match="it has loss, accuracy"):
        fit(
            model,
            X,
            y,
            loss=SoftmaxCrossEntropy(),
            optimizer=SGD(model.parameters(), lr=0.1),
            epochs=3,
            callbacks=[EarlyStopping("val_loss")],
            verbose=0,
        )
    assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())


SCORES = [0.8, 0.5, 0.3, 0.4, 0.6]


def test_restore_best_weights_restores_the_best_epoch_when_stopped():
    cb = EarlyStopping(patience=2)
    model, history = run_script(cb, SCORES)
    assert (cb.stopped_epoch, history.best_epoch) == (5, 3)
    assert epoch_of(model) == 3  # a copy was kept: later epochs did not overwrite it


def test_restore_best_weights_also_when_epochs_run_out():
    model, history = run_script(EarlyStopping(patience=10), SCORES)
    assert history.stop_reason is None
    assert epoch_of(model) == 3


def test_without_restore_the_last_weights_stay():
    cb = EarlyStopping(patience=2, restore_best_weights=False)
    model, _ = run_script(cb, SCORES)
    assert cb.best_weights is None
    assert epoch_of(model) == 5


def test_epoch_0_is_never_the_best():
    model, history = run_script(EarlyStopping(patience=1), [0.5, 0.6], before=0.1)
    assert history.best_epoch == 1
    assert epoch_of(model) == 1
    assert "best 0.5000 at epoch 1" in history.stop_reason


def test_non_finite_scores_never_improve():
    cb = EarlyStopping(patience=2)
    run_script(cb, [1.0, NAN, math.inf, 0.5])
    assert (cb.stopped_epoch, cb.best_epoch) == (3, 1)
    cb = EarlyStopping(patience=5)
    run_script(cb, [NAN, 1.0])
    assert (cb.best, cb.best_epoch) == (1.0, 2)


def test_baseline_must_be_beaten_within_patience():
    cb = EarlyStopping(patience=3, baseline=0.55)
    _, history = run_script(cb, [0.9, 0.8, 0.7, 0.6, 0.5])
    assert (cb.stopped_epoch, cb.best_epoch) == (3, 3)
    assert history.stop_reason == (
        "early stopping: val_loss did not beat the baseline 0.5500 in 3 epochs (best 0.7000 at epoch 3)"
    )
    beaten = EarlyStopping(patience=3, baseline=0.85)
    run_script(beaten, [0.9, 0.8, 0.7, 0.6, 0.5])
    assert (beaten.stopped_epoch, beaten.best_epoch) == (None, 5)


def test_start_from_epoch_skips_the_warm_up():
    cb = EarlyStopping(patience=2, start_from_epoch=3)
    model, _ = run_script(cb, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    assert (cb.stopped_epoch, cb.best_epoch) == (6, 4)
    assert epoch_of(model) == 4


def test_an_instance_can_serve_two_runs():
    cb = EarlyStopping(patience=1)
    run_script(cb, [0.1, 0.2])
    run_script(cb, [1.0, 0.9, 0.8, 0.85])
    assert (cb.stopped_epoch, cb.best_epoch, cb.best) == (4, 3, 0.8)


def test_a_stop_asked_by_an_earlier_callback_keeps_its_reason():
    class StopAtTwo(Callback):
        def on_epoch_end(self, epoch, logs):
            if epoch == 2:
                self.history.stop("first reason", epoch=2)

    cb = EarlyStopping(patience=1)
    _, history = run_script([StopAtTwo(), cb], [0.5, 0.6])
    assert history.stop_reason == "first reason"


# ---- ModelCheckpoint ---------------------------------------------------------------------------


def weights_epoch(path) -> float:
    model = tiny_model()
    model.load(path)
    return epoch_of(model)


def test_saves_only_on_improvement(tmp_path):
    cb = ModelCheckpoint(tmp_path / "ckpt_{epoch}.npz")
    _, history = run_script(cb, [1.0, 0.8, 0.9, 0.7, 0.75])
    assert sorted(os.listdir(tmp_path)) == ["ckpt_01.npz", "ckpt_02.npz", "ckpt_04.npz"]
    for epoch in (1, 2, 4):
        assert weights_epoch(tmp_path / f"ckpt_{epoch:02d}.npz") == epoch
    assert (cb.best, cb.best_epoch, history.best_epoch) == (0.7, 4, 4)
    assert cb.last_saved == str(tmp_path / "ckpt_04.npz")


def test_save_best_only_false_saves_every_epoch(tmp_path):
    cb = ModelCheckpoint(tmp_path / "e{epoch}.npz", save_best_only=False)
    run_script(cb, [1.0, 0.8, 0.9])
    assert sorted(os.listdir(tmp_path)) == ["e01.npz", "e02.npz", "e03.npz"]
    info = read_checkpoint_info(tmp_path / "e03.npz")
    assert (info["epoch"], info["best_epoch"], info["best_score"]) == (3, 2, 0.8)
    assert weights_epoch(tmp_path / "e03.npz") == 3


def test_one_file_holds_the_best_and_knows_its_score(tmp_path):
    path = tmp_path / "best.npz"
    run_script(ModelCheckpoint(path), [1.0, 0.8, 0.9, 0.7, 0.75])
    assert os.listdir(tmp_path) == ["best.npz"]  # no temporary files left behind
    assert weights_epoch(path) == 4
    info = read_checkpoint_info(path)
    assert info == {"monitor": "val_loss", "mode": "min", "epoch": 4, "best_score": 0.7, "best_epoch": 4}
    extra = tiny_model().load(path)
    assert sorted(extra) == ["best_epoch", "best_score", "epoch", "mode", "monitor"]


def test_max_mode_checkpoint_info(tmp_path):
    path = tmp_path / "best.npz"
    run_script(ModelCheckpoint(path, "val_accuracy"), [0.5, 0.75, 0.6], monitor="val_accuracy", before=0)
    assert read_checkpoint_info(path) == {
        "monitor": "val_accuracy",
        "mode": "max",
        "epoch": 2,
        "best_score": 0.75,
        "best_epoch": 2,
    }


@pytest.mark.parametrize(
    ("pattern", "epoch", "name"),
    [
        ("w{epoch}.npz", 3, "w03.npz"),
        ("w{epoch}.npz", 12, "w12.npz"),
        ("w{epoch}.npz", 123, "w123.npz"),
        ("w{epoch:03d}.npz", 7, "w007.npz"),
        ("w{epoch}-{val_loss:.2f}-{loss:.1f}.npz", 5, "w05-0.32-1.0.npz"),
    ],
)
def test_file_name_formatting(pattern, epoch, name):
    cb = ModelCheckpoint(pattern)
    assert cb.filename(epoch, {"loss": 1.0, "val_loss": 0.3183}) == name


def test_unknown_name_in_path_fails_before_training(tmp_path):
    cb = ModelCheckpoint(tmp_path / "{epoch}-{val_acc:.2f}.npz")
    cb.set_context(tiny_model(), History())
    with pytest.raises(ValueError, match="names epoch, loss, val_loss"):
        cb.on_train_begin({"loss": 1.0, "val_loss": 2.0})


def test_initial_value_threshold_resumes_a_run(tmp_path):
    first = tmp_path / "first.npz"
    run_script(ModelCheckpoint(first), [1.0, 0.7, 0.8])
    info = read_checkpoint_info(first)
    resumed = ModelCheckpoint(tmp_path / "second_{epoch}.npz", initial_value_threshold=info["best_score"])
    run_script(resumed, [0.9, 0.75, 0.6, 0.65])
    assert sorted(os.listdir(tmp_path)) == ["first.npz", "second_03.npz"]


def test_checkpoint_holds_plain_arrays_only(tmp_path):
    path = tmp_path / "best.npz"
    run_script(ModelCheckpoint(path), [1.0])
    with np.load(path, allow_pickle=False) as data:
        kinds = {k: data[k].dtype.kind for k in data.files}
    assert "O" not in kinds.values()
    assert kinds["__monitor__"] == "U"


def test_checkpoint_into_another_architecture_names_parameter_and_shapes(tmp_path):
    path = tmp_path / "best.npz"
    run_script(ModelCheckpoint(path), [1.0])
    other = Sequential([Dense(3, 4, rng=0)])
    before = other.state_dict()
    with pytest.raises(ValueError, match=r"0\.W: model has \(3, 4\) float32, state has \(3, 2\) float32"):
        other.load(path)
    assert all(np.array_equal(before[k], v) for k, v in other.state_dict().items())


def test_read_checkpoint_info_of_a_plain_save_is_an_error(tmp_path):
    path = tmp_path / "plain.npz"
    tiny_model().save(path)
    with pytest.raises(ValueError, match="not written by ModelCheckpoint"):
        read_checkpoint_info(path)


def test_failed_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "best.npz"
    cb = ModelCheckpoint(path)
    model, history = run_script(cb, [1.0, 0.5])

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    mark(model, 3)
    with pytest.raises(OSError, match="disk full"):
        cb.on_epoch_end(3, {"loss": 1.0, "val_loss": 0.1})
    assert os.listdir(tmp_path) == ["best.npz"]
    assert weights_epoch(path) == 2
    assert (cb.best, cb.best_epoch, history.best_epoch) == (0.5, 2, 2)


# ---- HistoryCheckpoint --------------------------------------------------------------------


def test_history_file_follows_every_epoch(tmp_path):
    path = tmp_path / "history.json"
    lengths = []

    class ReadBack(Callback):
        def on_epoch_end(self, epoch, logs):
            lengths.append(len(json.loads(path.read_text())["history"]["val_loss"]))

    _, history = run_script([HistoryCheckpoint(path), ReadBack(), EarlyStopping(patience=1)], [0.5, 0.4, 0.6])
    assert lengths == [2, 3, 4]
    saved = History.from_dict(json.loads(path.read_text()))
    assert saved.to_dict() == history.to_dict()
    assert saved.stop_reason.startswith("early stopping") and saved.best_epoch == 2
    assert os.listdir(tmp_path) == ["history.json"]


# ---- all together, on a real fit -------------------------------------------------------------


def test_early_stopping_and_checkpoint_agree_on_the_best_epoch(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(48, 3)).astype(np.float32)
    y = (X[:, 0] + 0.5 * rng.normal(size=48) > 0).astype(np.int64)
    model = tiny_model()
    stopper, ckpt = EarlyStopping(patience=2), ModelCheckpoint(tmp_path / "best.npz")
    history = fit(
        model,
        X[:32],
        y[:32],
        loss=SoftmaxCrossEntropy(),
        optimizer=SGD(model.parameters(), lr=2.0),
        epochs=25,
        batch_size=4,
        validation_data=(X[32:], y[32:]),
        callbacks=[stopper, ckpt, HistoryCheckpoint(tmp_path / "history.json")],
        rng=0,
        verbose=0,
    )
    best = history.best_epoch
    val_loss = history.history["val_loss"]
    assert (
        best
        == stopper.best_epoch
        == ckpt.best_epoch
        == read_checkpoint_info(tmp_path / "best.npz")["best_epoch"]
    )
    assert val_loss[best] == min(val_loss[1:])
    # the restored model is the checkpointed one, and scores what the history says
    saved = load_npz(tmp_path / "best.npz")
    assert all(np.array_equal(saved[k], v) for k, v in model.state_dict().items())
    assert evaluate(model, X[32:], y[32:], SoftmaxCrossEntropy())["loss"] == val_loss[best]
    assert json.loads((tmp_path / "history.json").read_text())["best_epoch"] == best


def test_stop_after_updates_makes_exactly_that_many_mid_epoch():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(10, 3)).astype(np.float32), rng.integers(0, 2, 10)
    model = tiny_model()
    opt = SGD(model.parameters(), lr=0.1)
    made, step = [], opt.step
    opt.step = lambda: (made.append(1), step())  # count the updates
    history = fit(model, X, y, loss=SoftmaxCrossEntropy(), optimizer=opt, epochs=5, batch_size=3,
                  callbacks=[StopAfterUpdates(6)], rng=0, verbose=0)  # fmt: skip
    assert len(made) == 6 and len(history.step_loss) == 7  # 4 batches per epoch: stopped in epoch 2
    assert history.epoch == [0, 1, 2] and history.stop_reason == "6 updates made"
    with pytest.raises(ValueError, match="positive integer"):
        StopAfterUpdates(0)


# ---- learning-rate schedules --------------------------------------------------------------------
def test_exponential_decay_sets_the_rate_before_each_epoch():
    opt = SGD(Dense(2, 2, rng=0).parameters(), lr=0.1)
    decay = ExponentialDecay(opt, gamma=0.5)
    for epoch in (1, 2, 3):
        decay.on_epoch_begin(epoch)
    assert decay.lrs == pytest.approx([0.1, 0.05, 0.025]) and opt.lr == pytest.approx(0.025)
    with pytest.raises(ValueError, match="gamma"):
        ExponentialDecay(opt, gamma=1.5)


def test_reduce_lr_on_plateau_on_a_scripted_sequence():
    opt = SGD(Dense(2, 2, rng=0).parameters(), lr=0.1)
    cb = ReduceLROnPlateau(opt, monitor="val_loss", factor=0.5, patience=2, min_lr=0.02)
    cb.on_train_begin({"val_loss": 2.0})
    for epoch, value in enumerate([1.0, 0.9, 0.95, 0.92, 0.91, 0.99, 0.8, 0.85, 0.86, 0.87, 0.88], start=1):
        cb.on_epoch_end(epoch, {"val_loss": value})
    # plateaus end at epochs 4 (0.1 -> 0.05), 6 (-> 0.025), 9 (-> 0.02, the floor); then no lower
    assert cb.reductions == [(4, 0.05), (6, 0.025), (9, 0.02)]
    assert opt.lr == 0.02
    with pytest.raises(ValueError, match="val_accuracy"):
        ReduceLROnPlateau(opt, monitor="val_accuracy").on_train_begin({"loss": 1.0, "val_loss": 1.0})


def test_epoch_clock_times_every_whole_epoch():
    import numpy as np

    from minidl import SGD, Dense, Sequential, SoftmaxCrossEntropy, fit
    from minidl.callbacks import EpochClock

    rng = np.random.default_rng(0)
    X, y = rng.random((64, 5)).astype(np.float32), np.arange(64) % 3
    model = Sequential([Dense(5, 3, rng=0)])
    clock = EpochClock()
    history = fit(model, X, y, loss=SoftmaxCrossEntropy(), optimizer=SGD(model.parameters(), lr=0.1),
                  epochs=3, batch_size=8, callbacks=[clock], rng=0, verbose=0)  # fmt: skip
    assert len(clock.wall) == len(clock.cpu) == 3
    assert all(w > 0 and c >= 0 for w, c in zip(clock.wall, clock.cpu, strict=True))
    # a whole epoch (updates and scoring) takes at least as long as its updates alone
    assert all(w >= t for w, t in zip(clock.wall, history.epoch_time, strict=True))


# ---- weight averaging ---------------------------------------------------------------------------
def test_epoch_average_is_the_mean_of_the_weights_each_update_started_from():
    model, average = tiny_model(), EpochAverage()
    average.set_context(model, History())
    average.on_train_begin({})
    for epoch, values in enumerate(([1.0, 3.0], [2.0, 4.0, 9.0]), start=1):
        average.on_epoch_begin(epoch)
        for step, value in enumerate(values):
            mark(model, value)  # the weights this update starts from
            average.on_batch_end(step, {"loss": 1.0})
        average.on_epoch_end(epoch, {"loss": 1.0})
    assert [a["0.W"].tolist() for a in average.averages] == [[[2.0] * 2] * 3, [[5.0] * 2] * 3]
    assert average.averages[1]["0.b"].dtype == np.float32 and average.averages[1].keys() == {"0.W", "0.b"}


def test_epoch_average_in_fit_sees_each_update_before_it_is_applied():
    class Recorder(Callback):
        def on_train_begin(self, logs):
            self.seen = []

        def on_batch_end(self, step, logs):
            self.seen.append(self.model.layers[0].W.value.copy())

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(12, 3)).astype(np.float32), rng.integers(0, 2, 12)
    model = tiny_model()
    average, seen = EpochAverage(), Recorder()
    fit(model, X, y, loss=SoftmaxCrossEntropy(), optimizer=SGD(model.parameters(), lr=0.5), epochs=2,
        batch_size=4, callbacks=[average, seen], rng=1, verbose=0)  # fmt: skip
    assert len(average.averages) == 2  # 3 updates per epoch: the second epoch's are seen[3:]
    np.testing.assert_allclose(average.averages[1]["0.W"], np.mean(seen.seen[3:], axis=0), rtol=1e-6)
    assert not np.allclose(average.averages[1]["0.W"], model.layers[0].W.value)
