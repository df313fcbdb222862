"""A small training on the real Fashion-MNIST files learns: well above the 10% of chance."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import pytest

from minidl import SGD, Dense, ReLU, Sequential, SoftmaxCrossEntropy, evaluate, fit, scale_pixels
from minidl.datasets import cache_dir, load_fashion_mnist
from minidl.model_selection import stratified_subsample


def test_the_suite_keeps_the_data_cache_out_of_the_users_home():
    """conftest.py points XDG_CACHE_HOME at a temporary folder for the session: the loader's
    .npy copies of the real files never land in ~/.cache/minidl."""
    assert cache_dir().is_relative_to(Path(tempfile.gettempdir()))
    assert not cache_dir().is_relative_to(Path.home() / ".cache")


@pytest.mark.slow
def test_tiny_real_training_learns(fashion_mnist_dir):
    (images, labels), (images_test, labels_test) = load_fashion_mnist()
    idx = stratified_subsample(labels, 3000, rng=0)
    X, y = scale_pixels(images[idx]), labels[idx].astype(np.int64)
    X_test, y_test = scale_pixels(images_test[:2000]), labels_test[:2000].astype(np.int64)
    model = Sequential([Dense(784, 64, rng=0), ReLU(), Dense(64, 10, rng=1)])
    history = fit(
        model, X, y, loss=SoftmaxCrossEntropy(), optimizer=SGD(model.parameters(), lr=0.02, momentum=0.9),
        epochs=5, batch_size=32, rng=0, verbose=0,
    )  # fmt: skip
    assert abs(history.history["loss"][0] - math.log(10)) < 0.3  # starts near ln 10
    assert history.history["loss"][-1] < 0.6 * history.history["loss"][0]
    assert evaluate(model, X_test, y_test, SoftmaxCrossEntropy())["accuracy"] > 0.7


@pytest.mark.slow
def test_same_seed_same_result_on_real_data(fashion_mnist_dir):
    (images, labels), _ = load_fashion_mnist()
    X, y = scale_pixels(images[:2000]), labels[:2000].astype(np.int64)

    def train():
        model = Sequential([Dense(784, 10, rng=5)])
        h = fit(model, X, y, loss=SoftmaxCrossEntropy(), optimizer=SGD(model.parameters(), lr=0.1),
                epochs=2, batch_size=50, rng=7, verbose=0)  # fmt: skip
        return model.state_dict(), h.history

    (w1, h1), (w2, h2) = train(), train()
    assert h1 == h2
    for name in w1:
        np.testing.assert_array_equal(w1[name], w2[name])
