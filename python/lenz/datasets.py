"""Data sets as NumPy arrays: images (N, H, W, C) uint8 and labels (N,) int64 (or masks (N, H, W)
uint8 for a segmentation folder), read as `lenz train --data` reads them."""

import os

from . import _core

__all__ = ["fashion_mnist", "load", "mnist"]


def load(spec, *, size=None, channels=None, val_split=0.0, seed=1, skip_bad_images=False):
    """A data set by name or folder, as `lenz train --data` takes it: "fashion-mnist" (Debian package
    dataset-fashion-mnist), "mnist", a folder with the four IDX files, or an image folder (one
    sub-folder per class, with train/ and test/, or a `val_split` held out) of PNG, JPEG, BMP, TIFF
    or WebP files, or a segmentation folder (classes.txt, images/, masks/; or Pascal VOC's layout),
    whose y_train and y_test are the masks, (N, H, W) uint8: each pixel's class, 255 where ignored. Image folders are converted to size=(height, width) and `channels` (1 or 3); where
    either is not given, the most common among the training images (the description says which).
    skip_bad_images=True leaves out files that cannot be read instead of raising lenz.Error.
    Returns a dict: x_train, y_train, x_test, y_test, class_names, description, bad_images (the
    files left out, "PATH: what is wrong")."""
    height, width = size if size is not None else (0, 0)
    return _core.load_data(os.fspath(spec), float(val_split), int(seed), int(height), int(width),
                           int(channels or 0), bool(skip_bad_images))


def fashion_mnist():
    """Fashion-MNIST as (x_train, y_train), (x_test, y_test): 60,000 and 10,000 images of 28x28x1."""
    d = load("fashion-mnist")
    return (d["x_train"], d["y_train"]), (d["x_test"], d["y_test"])


def mnist():
    """MNIST as (x_train, y_train), (x_test, y_test), when installed (see `lenz train --data mnist`)."""
    d = load("mnist")
    return (d["x_train"], d["y_train"]), (d["x_test"], d["y_test"])
