"""Figures: every function writes a readable PNG atomically and leaves pyplot's state alone."""

from __future__ import annotations

import os

import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

from minidl import plots

NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat"]


def fake_runs(n_seeds=3, lengths=None, seed=0):
    """Keras-style histories; entry 0 is the value before the first update."""
    rng = np.random.default_rng(seed)
    lengths = lengths or [6] * n_seeds
    runs = []
    for length in lengths:
        e = np.arange(length)
        loss = 0.4 + 1.9 * np.exp(-e / 2) + rng.normal(0, 0.02, length)
        acc = 0.85 - 0.75 * np.exp(-e / 2) + rng.normal(0, 0.01, length)
        runs.append(
            {
                "loss": loss.tolist(),
                "val_loss": (loss + 0.05).tolist(),
                "accuracy": acc.tolist(),
                "val_accuracy": (acc - 0.02).tolist(),
            }
        )
    return runs


def images(n=12, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 28, 28), dtype=np.uint8)


def cm_counts():
    rng = np.random.default_rng(0)
    return rng.integers(0, 20, (5, 5)) + np.diag([80, 90, 70, 60, 85])


# One call per public figure function; each takes the output path.
CALLS = {
    "learning_curves": lambda p: plots.learning_curves(fake_runs(), path=p),
    "learning_curves_grid": lambda p: plots.learning_curves_grid(fake_runs(), path=p),
    "weight_images": lambda p: plots.weight_images(
        np.random.default_rng(0).normal(size=(784, 5)), NAMES, path=p
    ),
    "confusion_matrix_plot": lambda p: plots.confusion_matrix_plot(cm_counts(), NAMES, path=p),
    "confusion_matrix_plot_true": lambda p: plots.confusion_matrix_plot(
        cm_counts(), NAMES, normalize="true", path=p
    ),
    "confusion_matrices": lambda p: plots.confusion_matrices(cm_counts(), NAMES, path=p),
    "image_grid": lambda p: plots.image_grid(images(), np.arange(12) % 5, class_names=NAMES, ncols=6, path=p),
    "class_examples": lambda p: plots.class_examples(
        images(15), np.arange(15) % 5, NAMES, per_class=2, rng=0, path=p
    ),
    "bar_compare": lambda p: plots.bar_compare(
        NAMES,
        {"a": [0.9, 0.8, 0.7, 0.6, 0.5], "b": [0.5, 0.6, 0.7, 0.8, 0.9]},
        ylabel="precision",
        path=p,
    ),
    "roc_curves": lambda p: plots.roc_curves(
        np.arange(40) % 2, {"score": np.linspace(0, 1, 40)}, {"at 0.5": np.linspace(0, 1, 40) > 0.5}, path=p
    ),
    "line_plot": lambda p: plots.line_plot(
        [16, 64, 256],
        {"val": np.array([[0.8, 0.85, 0.86], [0.82, 0.84, 0.88]])},
        xlabel="hidden units",
        ylabel="accuracy",
        logx=True,
        path=p,
    ),
}


@pytest.fixture(autouse=True)
def no_pyplot_figures():
    """Nothing in minidl.plots may open a pyplot figure (they would pile up in a long session)."""
    plt.close("all")
    yield
    assert plt.get_fignums() == []


@pytest.mark.parametrize("name", sorted(CALLS))
def test_writes_a_readable_png_atomically(tmp_path, name):
    path = tmp_path / f"{name}.png"
    fig = CALLS[name](path)
    assert isinstance(fig, Figure)
    assert path.stat().st_size > 1000
    pixels = matplotlib.image.imread(path)
    height, width = pixels.shape[:2]
    assert 200 <= height <= 3000 and 300 <= width <= 3000, (height, width)
    assert pixels.std() > 0.01  # not a blank canvas
    assert os.listdir(tmp_path) == [path.name]  # no temporary file left behind


def test_without_path_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fig = plots.learning_curves(fake_runs())
    assert isinstance(fig, Figure) and os.listdir(tmp_path) == []


def test_save_creates_the_directory(tmp_path):
    path = tmp_path / "run" / "figures" / "cm.png"
    plots.confusion_matrix_plot(cm_counts(), NAMES, path=path)
    assert path.stat().st_size > 0


def test_mean_std_hand_case():
    runs = [{"loss": [1.0, 2.0, 6.0]}, {"loss": [3.0, 2.0, 0.0]}, {"loss": [2.0, 5.0]}]
    mean, std, n = plots.mean_std(runs, "loss")
    np.testing.assert_allclose(mean, [2.0, 3.0, 3.0])
    # population std (ddof=0): epoch 0 sqrt(((1-2)^2 + (3-2)^2 + 0) / 3), epoch 2 over 2 runs
    np.testing.assert_allclose(std, [np.sqrt(2 / 3), np.sqrt(2.0), 3.0])
    assert n.tolist() == [3, 3, 2]


def test_mean_std_leaves_out_non_finite_values():
    mean, std, n = plots.mean_std([{"loss": [1.0, np.nan]}, {"loss": [3.0, 4.0]}], "loss")
    np.testing.assert_allclose(mean, [2.0, 4.0])
    np.testing.assert_allclose(std, [1.0, 0.0])
    assert n.tolist() == [2, 1]


def test_mean_std_missing_key_lists_the_keys_there_are():
    with pytest.raises(KeyError, match="val_accuracy.*'loss', 'val_loss'"):
        plots.mean_std([{"loss": [1.0], "val_loss": [1.0]}], "val_accuracy")


def test_log_block_means_keep_the_mean_and_spread_evenly_on_a_log_axis():
    x, means = plots.log_block_means(list(np.arange(1000.0)), n=50)
    assert len(x) == len(means) <= 50 and x[0] == 0 and np.all(np.diff(x) > 0)
    np.testing.assert_allclose(means, x)  # values[i] = i: each block's mean sits at its centre
    assert np.diff(x)[-1] > 10 * np.diff(x)[0]  # blocks grow: dense at the start, sparse at the end
    assert plots.log_block_means([2.0, 4.0], n=200) == ([0.0, 1.0], [2.0, 4.0])  # short: every value


def test_learning_curves_with_runs_of_unequal_length():
    runs = fake_runs(lengths=[4, 7, 5])  # early stopping at different epochs
    fig = plots.learning_curves(runs, keys=("loss",))
    ax = fig.axes[0]
    mean_line = max(ax.get_lines(), key=lambda line: line.get_linewidth())
    assert len(mean_line.get_xdata()) == 7  # aggregated over the seeds still present
    np.testing.assert_allclose(mean_line.get_ydata(), plots.mean_std(runs, "loss")[0])
    thin = [line for line in ax.get_lines() if line is not mean_line]
    assert sorted(len(line.get_xdata()) for line in thin) == [4, 5, 7]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[0] == "train loss (mean ± std over 3 seeds, fewer from epoch 4)"


def test_learning_curves_band_is_mean_plus_minus_std():
    runs = fake_runs(n_seeds=4)
    fig = plots.learning_curves(runs, keys=("val_accuracy",), show_runs=False)
    ax = fig.axes[0]
    mean, std, _ = plots.mean_std(runs, "val_accuracy")
    (band,) = ax.collections
    ys = band.get_paths()[0].vertices[:, 1]
    np.testing.assert_allclose([ys.min(), ys.max()], [(mean - std).min(), (mean + std).max()])
    assert 0.2 <= band.get_alpha() <= 0.4
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "accuracy"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["validation accuracy (mean ± std over 4 seeds)"]


def test_learning_curves_grid_skips_missing_validation():
    runs = [{"loss": [2.3, 1.0], "accuracy": [0.1, 0.6]} for _ in range(2)]
    fig = plots.learning_curves_grid(runs)
    loss_ax, acc_ax = fig.axes[:2]
    assert [t.get_text() for t in loss_ax.get_legend().get_texts()][0].startswith("train loss")
    assert acc_ax.get_ylabel() == "accuracy"


def test_weight_images_share_one_symmetric_scale():
    W = np.random.default_rng(1).normal(size=(784, 5))
    W[3, 2] = -7.5  # the largest magnitude is negative: the scale must still be symmetric
    fig = plots.weight_images(W, NAMES)
    panels = [im for ax in fig.axes for im in ax.get_images()]
    assert len(panels) == 5
    for im in panels:
        assert im.get_clim() == (-7.5, 7.5)
        assert im.get_cmap().name in ("RdBu_r", "seismic")
    np.testing.assert_array_equal(panels[2].get_array(), W[:, 2].reshape(28, 28))
    titled = [ax for ax in fig.axes if ax.get_images()]
    assert [ax.get_title() for ax in titled] == NAMES
    assert all(len(ax.get_xticks()) == 0 and len(ax.get_yticks()) == 0 for ax in titled)
    assert len(fig.axes) - len(titled) == 1  # one shared colorbar (plus no stray axes)


def test_weight_images_rejects_transposed_W():
    with pytest.raises(ValueError, match=r"W\.T"):
        plots.weight_images(np.zeros((5, 784)), NAMES)


def test_confusion_matrix_annotations_and_contrast():
    cm = np.array([[3, 1], [0, 0]])
    fig = plots.confusion_matrix_plot(cm, ["cat", "dog"], normalize="true")
    ax = fig.axes[0]
    cells = {(t.get_position(), t.get_text()): t.get_color() for t in ax.texts}
    assert {text for _, text in cells} == {"0.75", "0.25", "0.00"}
    assert cells[((0, 0), "0.75")] == "white"  # dark cell
    assert cells[((1, 1), "0.00")] == "black"  # an empty row stays 0, light cell
    assert ax.get_xlabel() == "predicted" and ax.get_ylabel() == "true"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cat", "dog"]
    assert ax.get_xticklabels()[0].get_rotation() == 45

    counts = plots.confusion_matrix_plot(cm, ["cat", "dog"]).axes[0]
    assert sorted(t.get_text() for t in counts.texts) == ["0", "0", "1", "3"]
    assert "75.0%" in counts.get_title()  # accuracy from the counts


def test_image_grid_accepts_flat_images_and_titles():
    flat = images(3).reshape(3, 784)
    fig = plots.image_grid(flat, titles=["true: Shirt / pred: T-shirt/top", "a", "b"])
    ax = fig.axes[0]
    assert ax.get_images()[0].get_array().shape == (28, 28)
    assert ax.get_title() == "true: Shirt\npred: T-shirt/top"
    fig = plots.image_grid(flat, [2, 0, 1], class_names=NAMES)
    assert [a.get_title() for a in fig.axes[:3]] == ["Pullover", "T-shirt/top", "Trouser"]


def test_class_examples_uses_its_own_rng():
    X, y = images(40), np.arange(40) % 5
    state = np.random.get_state()
    expected_next = np.random.random()  # the next global draw if nothing else draws
    np.random.set_state(state)
    first = plots.class_examples(X, y, NAMES, per_class=3, rng=7)
    again = plots.class_examples(X, y, NAMES, per_class=3, rng=7)
    assert np.random.random() == expected_next  # global state untouched

    def shown(fig):
        return [im.get_array().tobytes() for ax in fig.axes for im in ax.get_images()]

    assert shown(first) == shown(again) and len(shown(first)) == 15
    rows = [ax.get_ylabel() for ax in first.axes if ax.get_ylabel()]
    assert rows == NAMES
    label_of = {X[i].tobytes(): y[i] for i in range(len(X))}
    for i, ax in enumerate(first.axes):  # row k (3 panels a row) shows images of class k
        assert [label_of[im.get_array().tobytes()] for im in ax.get_images()] == [i // 3]


def test_bar_compare_labels_every_bar():
    fig = plots.bar_compare(["x", "y"], {"m1": [0.5, 0.25], "m2": [1.0, 0.75]}, ylabel="f1")
    ax = fig.axes[0]
    assert sorted(t.get_text() for t in ax.texts) == ["0.25", "0.50", "0.75", "1.00"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["m1", "m2"]
    with pytest.raises(ValueError, match="m1"):
        plots.bar_compare(["x", "y"], {"m1": [0.5]}, ylabel="f1")


def test_line_plot_series_forms():
    xs = [0.001, 0.01, 0.1]
    runs = np.array([[0.5, 0.7, 0.6], [0.7, 0.9, 0.4]])
    fig = plots.line_plot(
        xs,
        {"seeds": runs, "given": ([0.1, 0.2, 0.3], [0.0, 0.1, 0.0]), "plain": [1, 2, 3]},
        xlabel="learning rate",
        ylabel="accuracy",
        logx=True,
    )
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    seeds_line = ax.get_lines()[0]
    np.testing.assert_allclose(seeds_line.get_ydata(), [0.6, 0.8, 0.5])
    assert len(ax.collections) == 2  # bands for the two series that have a std
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["seeds (mean ± std over 2 seeds)", "given (mean ± std)", "plain"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.001", "0.01", "0.1"]


def test_mark_x_names_the_line_on_the_roomier_side():
    ax = plots.new_figure(4, 3).add_subplot()
    ax.set_xlim(0, 10)
    plots.mark_x(ax, 8, "best")
    plots.mark_x(ax, 2, "start")
    assert [line.get_xdata()[0] for line in ax.lines] == [8, 2]
    assert [(t.get_text(), t.get_ha()) for t in ax.texts] == [(" best ", "right"), (" start ", "left")]


def test_note_narrow_axis_only_when_the_axis_is_narrow():
    fig = plots.new_figure(6, 3)
    wide, narrow = fig.subplots(1, 2)
    for ax, (low, high) in ((wide, (0.0, 1.0)), (narrow, (0.7, 0.9))):
        ax.set(ylim=(low, high), ylabel="accuracy")
        plots.note_narrow_axis(ax)
    assert wide.get_ylabel() == "accuracy"
    assert narrow.get_ylabel() == "accuracy\n(axis from 0.70 to 0.90 only)"


def test_roc_curves_operating_points_and_zoom():
    y = np.repeat([0, 1], 100)
    score = np.where(y == 1, 1.0, -1.0) + np.linspace(-0.5, 0.5, 200)
    answers = np.r_[np.zeros(99), 1, 0, np.ones(99)]  # 1 false positive in 100, 1 positive missed
    fig = plots.roc_curves(y, {"net": score}, {"at 0": score > 0, "arg-max": answers}, zoom=True, title="ROC")
    ax = fig.axes[0]
    curve, threshold, argmax = ax.get_lines()
    assert (threshold.get_xdata()[0], threshold.get_ydata()[0]) == (0.0, 1.0)  # the scores separate
    assert (argmax.get_xdata()[0], argmax.get_ydata()[0]) == (0.01, 0.99)
    assert (threshold.get_marker(), argmax.get_marker()) == ("o", "s")  # a point without its curve
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["net (AUC 1.00000)", "at 0", "arg-max"]
    assert ax.get_xlim() == (0, 0.04) and ax.get_ylim() == (0.96, 1.002)
    assert ax.get_title() == "ROC, top-left corner only: x 0 to 0.04, y 0.96 to 1"
    with pytest.raises(ValueError, match=r"points\['short'\] has shape"):
        plots.roc_curves(y, {"net": score}, {"short": answers[:10]})
    with pytest.raises(ValueError, match="give points"):
        plots.roc_curves(y, {"net": score}, zoom=True)
