"""Data sets as NumPy arrays: images (N, H, W, C) uint8 and labels (N,) int64, read as `lenz train --data` reads them."""

import os

from . import _core

__all__ = ["fashion_mnist", "load", "mnist"]


def load(spec, *, size=None, channels=None, val_split=0.0, seed=1):
    """A data set by name or folder, as `lenz train --data` takes it: "fashion-mnist" (Debian package
    dataset-fashion-mnist), "mnist", a folder with the four IDX files, or an image folder (one
    sub-folder per class, with train/ and test/, or a `val_split` held out). Image folders are converted
    to size=(height, width) and `channels` (default: the first training image's).
    Returns a dict: x_train, y_train, x_test, y_test, class_names, description."""
    height, width = size if size is not None else (0, 0)
    return _core.load_data(os.fspath(spec), float(val_split), int(seed), int(height), int(width), int(channels or 0))


def fashion_mnist():
    """Fashion-MNIST as (x_train, y_train), (x_test, y_test): 60,000 and 10,000 images of 28x28x1."""
    d = load("fashion-mnist")
    return (d["x_train"], d["y_train"]), (d["x_test"], d["y_test"])


def mnist():
    """MNIST as (x_train, y_train), (x_test, y_test), when installed (see `lenz train --data mnist`)."""
    d = load("mnist")
    return (d["x_train"], d["y_train"]), (d["x_test"], d["y_test"])
