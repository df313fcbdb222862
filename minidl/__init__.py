"""minidl: a from-scratch NumPy deep-learning micro-framework whose source is meant to be read.

Every forward and backward pass is written by hand, with its derivation in the docstring, and
checked against finite differences by the test suite.
"""

from minidl import (
    callbacks,
    conv,
    data,
    datasets,
    gradcheck,
    init,
    layers,
    losses,
    metrics,
    model_selection,
    optim,
)
from minidl._rng import seed_streams
from minidl.callbacks import (
    Callback,
    EarlyStopping,
    ExponentialDecay,
    HistoryCheckpoint,
    ModelCheckpoint,
    ProgressBar,
    ReduceLROnPlateau,
    TerminateOnNaN,
)
from minidl.data import Standardizer, batches, one_hot, scale_pixels
from minidl.layers import Dense, Dropout, Flatten, Layer, ReLU, Sigmoid, Softmax, Tanh
from minidl.losses import MSE, CrossEntropy, SigmoidBinaryCrossEntropy, SoftmaxCrossEntropy
from minidl.model import Sequential
from minidl.optim import SGD, Adam
from minidl.parameter import Parameter
from minidl.train import History, evaluate, fit, predict

__version__ = "0.1.0"

__all__ = [
    "MSE",
    "SGD",
    "Adam",
    "Callback",
    "CrossEntropy",
    "EarlyStopping",
    "ExponentialDecay",
    "HistoryCheckpoint",
    "ModelCheckpoint",
    "Dense",
    "Dropout",
    "Flatten",
    "History",
    "Layer",
    "Parameter",
    "ProgressBar",
    "ReLU",
    "ReduceLROnPlateau",
    "Sequential",
    "Sigmoid",
    "SigmoidBinaryCrossEntropy",
    "Softmax",
    "SoftmaxCrossEntropy",
    "Standardizer",
    "Tanh",
    "TerminateOnNaN",
    "batches",
    "callbacks",
    "conv",
    "data",
    "datasets",
    "evaluate",
    "fit",
    "gradcheck",
    "init",
    "layers",
    "losses",
    "metrics",
    "model_selection",
    "one_hot",
    "optim",
    "predict",
    "scale_pixels",
    "seed_streams",
]
