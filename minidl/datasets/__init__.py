"""Datasets: the real Fashion-MNIST files, found, checked and decoded (see fashion_mnist.py).

>>> from minidl.datasets import load_fashion_mnist, CLASS_NAMES
>>> (X_train, y_train), (X_test, y_test) = load_fashion_mnist()  # doctest: +SKIP
>>> X_train.shape, CLASS_NAMES[y_train[0]]  # doctest: +SKIP
((60000, 28, 28), 'Ankle boot')
"""

from .fashion_mnist import CLASS_NAMES, DatasetError, cache_dir, load_fashion_mnist
from .idx import IDXError, read_idx

__all__ = [
    "CLASS_NAMES",
    "DatasetError",
    "IDXError",
    "cache_dir",
    "load_fashion_mnist",
    "read_idx",
]
