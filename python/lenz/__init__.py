"""Lenz from Python: CNN models, their costs, training and pictures, on NumPy arrays.

    import lenz
    model = lenz.Model("models/fashion.lenz")
    model.summary(batch=64)                 # what it costs, as `lenz summary --json` (a table in notebooks)
    (x, y), (x_test, y_test) = lenz.datasets.fashion_mnist()
    history = model.fit(x, y, epochs=1, validation=(x_test, y_test))
    probabilities = model.predict(x_test[:10])

Images are arrays of shape (N, height, width, channels): uint8 pixels (0-255), or float32 pixels / 255
(the scale the ONNX export takes). Labels are integers from 0. Errors are lenz.Error (a ValueError)
with the command line's one-line messages.
"""

import difflib
import inspect
import json
import os
import tempfile

from . import _core, datasets
from ._core import Error

Error.__module__ = "lenz"  # tracebacks name it lenz.Error, as users spell it

__all__ = ["Error", "Model", "Summary", "datasets", "load", "set_threads", "set_winograd", "threads", "visualize"]


def threads():
    """How many threads the engine uses (default: every core the process may run on)."""
    return _core.threads()


def set_threads(n):
    """Sets the engine's threads; 0 or less: every core."""
    _core.set_threads(int(n))


def set_winograd(use):
    """Winograd's algorithm for 3x3 convolutions at inference, for the whole process: "on" (the
    default: F(2x2,3x3) on layers of 256 channels or more each side), "wide" (F(4x4,3x3) too, and on
    smaller layers: faster, rounds more) or "off"; as `--winograd`. Models made afterwards plan for it."""
    _core.set_winograd(str(use))


class Summary(dict):
    """What a model costs: the keys of `lenz summary --json`. print() shows the command line's table;
    a notebook shows it as HTML, with each figure's derivation behind a toggle."""

    def __init__(self, data, text, html):
        super().__init__(data)
        self.text = text
        self._html = html

    def __str__(self):
        return self.text

    def _repr_html_(self):
        return self._html


class Model:
    """A network: its layers and weights, with the class names and input normalisation it was trained with.

    lenz.Model(path) reads a model file (.lenz, with fresh weights from `seed`), a checkpoint
    (.safetensors) or an ONNX model (.onnx), each with its own weights.
    """

    def __init__(self, path, seed=1):
        self._core = _core.Model.load(os.fspath(path), int(seed))
        self.history = []

    @classmethod
    def from_text(cls, text, seed=1):
        """A model from the text of a .lenz file ("input 28x28x1\\nconv 32 3 relu\\n..."), fresh weights from `seed`."""
        return cls._wrap(_core.Model.from_text(text, int(seed)))

    @classmethod
    def _wrap(cls, core):
        model = cls.__new__(cls)
        model._core = core
        model.history = []
        return model

    @property
    def input_shape(self):
        """(height, width, channels) of one image."""
        return self._core.input_shape

    @property
    def classes(self):
        """How many classes the model tells apart (its last layer's outputs)."""
        return self._core.outputs

    @property
    def class_names(self):
        return self._core.class_names

    @class_names.setter
    def class_names(self, names):
        self._core.class_names = list(names)

    @property
    def text(self):
        """The model in the .lenz text format."""
        return self._core.text

    def __repr__(self):
        h, w, c = self.input_shape
        return f"lenz.Model({self._core.name!r}: input {h}x{w}x{c}, {self.classes} classes)"

    def summary(self, batch=1, optimizer="adam", dtype="float32"):
        """Parameters, multiplications and memory (textbook and as the engine plans it) for a training
        batch of `batch` with `optimizer`; a dict with the keys of `lenz summary --json`."""
        data, text, html = self._core.summary(int(batch), optimizer, dtype)
        return Summary(json.loads(data), text, html)

    def predict(self, x, batch=64):
        """Class probabilities, (N, classes) float32, for images x (N, H, W, C), computed `batch` at a time;
        for a segmentation model (its output a map at its input's size), (N, H, W, classes), each
        pixel's. A C-contiguous array is read in place."""
        return self._core.predict(x, int(batch), False)

    def segment(self, x, batch=64):
        """A segmentation model's class maps for images x (N, H, W, C): (N, H, W) uint8, the most
        probable class of every pixel."""
        return self._core.predict(x, int(batch), True)

    def fit(
        self,
        x,
        y=None,
        *,
        validation=None,
        class_names=None,
        out=None,
        report=True,
        progress=None,
        verbose=False,
        **options,
    ):
        """Trains on images x (N, H, W, C) with labels y (N,), or masks y (N, H, W) of a class per pixel
        (255 ignored) for a segmentation model, or on a data set as `lenz train --data` takes
        it ("fashion-mnist", "mnist", a folder), with the options of `lenz train` under the same names,
        listed at the end (weight_decay=1e-4 for --weight-decay 1e-4; None: the default).

        class_names=[...] names the classes of arrays (one name a class, label order), as predict,
        the report and a saved checkpoint then show them; a data set by name brings its own.
        limit_train=N and limit_test=N take a seeded sample of N images that keeps every class in
        proportion, as `lenz train --limit-train` does.

        validation=(x_test, y_test) is evaluated after each epoch. out=DIR keeps the run's checkpoints
        and metrics.jsonl there, and report.html after each epoch when there is a test set (report=False
        leaves it out); by default they go to a temporary folder, removed after. progress, if
        given, is called after every step with a dict (epoch, batch, batches, step, loss, accuracy, ...);
        returning False stops training there. Ctrl-C stops it after the current step, raising
        KeyboardInterrupt; the model keeps that step's weights. verbose=True prints a line per epoch.
        Returns the history: a dict per epoch, with the keys of metrics.jsonl."""
        for keyword in options:
            if keyword not in _TRAIN_OPTIONS:
                near = difflib.get_close_matches(keyword, list(_TRAIN_OPTIONS), n=1)
                hint = f" (did you mean {near[0]}?)" if near else ""
                raise TypeError(f"fit() got an unexpected keyword argument '{keyword}'{hint}")
        if isinstance(x, os.PathLike):
            x = os.fspath(x)
        if out is not None:
            history = self._core.fit(
                x, y, validation, options, class_names, progress, os.fspath(out), verbose, report
            )
        else:
            with tempfile.TemporaryDirectory(prefix="lenz-fit-") as folder:
                history = self._core.fit(x, y, validation, options, class_names, progress, folder, verbose, False)
        self.history += history
        return history

    def evaluate(self, x, y=None, batch=256):
        """Accuracy, loss, per-class accuracy and the confusion matrix on images x with labels y (or
        masks: then over pixels, with pixel_accuracy, mean_iou and per_class_iou), or on the test set of
        a data set by name; the keys of `lenz eval --json`."""
        if isinstance(x, os.PathLike):
            x = os.fspath(x)
        return self._core.evaluate(x, y, int(batch))

    def report(self, path, x, y=None):
        """Writes the HTML report `lenz eval --report` writes, on images x with labels y (or a data set's
        test set by name): accuracy, confusion matrix, mistakes, feature maps, the summary, and the
        curves of this model's fits so far."""
        if isinstance(x, os.PathLike):
            x = os.fspath(x)
        self._core.report(os.fspath(path), x, y)

    def quantize(self, x, images=512, seed=1):
        """Post-training quantisation, as `lenz quantize`: calibrates the range of every value on
        `images` images of x ((N, H, W, C) arrays, or a data set by name, whose training images are
        drawn with `seed`) and rounds the weights of convolutions and dense layers to int8 per output
        channel. predict and evaluate then run in int8, and save writes a quantised checkpoint."""
        if isinstance(x, os.PathLike):
            x = os.fspath(x)
        self._core.quantize(x, int(images), int(seed))

    @property
    def quantized(self):
        """Whether the model was quantised (it then runs in int8)."""
        return self._core.quantized

    def save(self, path):
        """Writes a checkpoint (.safetensors) that `lenz predict`, `lenz eval` and lenz.load read."""
        self._core.save(os.fspath(path))

    def export_onnx(self, path):
        """Writes the model as ONNX (opset 13), as `lenz export` does: its input is (N, C, H, W) pixels / 255."""
        self._core.export_onnx(os.fspath(path))


# fit's options are lenz train's, from one table (lenz/train_options.h): names, defaults and help.
_TRAIN_OPTIONS = {option["keyword"]: option for option in _core.train_options()}


def _describe_fit_options():
    """fit's signature and help list its options as if written out, for help() and editors."""
    signature = inspect.signature(Model.fit)
    parameters = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    lines = ["", "", "Options (those of lenz train):"]
    for keyword, option in _TRAIN_OPTIONS.items():
        parameters.append(inspect.Parameter(keyword, inspect.Parameter.KEYWORD_ONLY, default=option["default"]))
        lines.append(f"    {keyword}={option['default']!r}: {option['help']}")
    Model.fit.__signature__ = signature.replace(parameters=parameters)
    Model.fit.__doc__ += "\n".join(lines)


_describe_fit_options()


def load(path):
    """A trained model: a checkpoint (.safetensors) or an ONNX model (.onnx)."""
    path = os.fspath(path)
    if os.path.splitext(path)[1] not in (".safetensors", ".onnx"):
        raise Error(f"{path}: expected a trained model (.safetensors or .onnx); lenz.Model(path) reads model files")
    return Model._wrap(_core.Model.load_trained(path))


def visualize(model, image, out=None):
    """The pictures `lenz visualize` draws for one image (a path, or a uint8 array (H, W) or (H, W, C)):
    a dict of RGB arrays (H, W, 3), "input", "probabilities", "filters", one per conv and pooling
    layer ("01-conv-26x26x32", ...) and "overview". out=DIR also writes each as DIR/NAME.png."""
    if isinstance(model, (str, os.PathLike)):
        model = load(model)
    if isinstance(image, os.PathLike):
        image = os.fspath(image)
    return dict(model._core.visualize(image, "" if out is None else os.fspath(out)))
